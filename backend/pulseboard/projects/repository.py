import uuid
from collections.abc import Sequence

from sqlalchemy import Select, delete, select

from pulseboard.core.repository import Repository
from pulseboard.models import (
    Event,
    EventId,
    EventRollup,
    Membership,
    MetricPoint,
    MetricRollup,
    Project,
    Role,
    Session,
    SessionRollup,
)


class ProjectRepository(Repository[Project]):
    model = Project

    async def get_with_role(
        self, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Project, Role] | None:
        """The project and the user's role in its organization, in one query; None if no role."""
        statement = (
            select(Project, Membership.role)
            .join(Membership, Membership.organization_id == Project.organization_id)
            .where(Project.id == project_id, Membership.user_id == user_id)
        )
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def list_visible(
        self, user_id: uuid.UUID, organization_id: uuid.UUID | None
    ) -> Sequence[Project]:
        statement = (
            select(Project)
            .join(Membership, Membership.organization_id == Project.organization_id)
            .where(Membership.user_id == user_id)
            .order_by(Project.created_at, Project.id)
        )
        if organization_id is not None:
            statement = statement.where(Project.organization_id == organization_id)
        return await self.list(statement)

    async def delete_with_data(self, project: Project) -> None:
        """Delete the project and its raw and rolled-up data (not linked by foreign keys)."""
        await self._delete_data(select(Project.id).where(Project.id == project.id))
        await self.delete(project)

    async def delete_organization_data(self, organization_id: uuid.UUID) -> None:
        await self._delete_data(
            select(Project.id).where(Project.organization_id == organization_id)
        )

    async def _delete_data(self, project_ids: Select[uuid.UUID]) -> None:
        tables = (Event, EventId, MetricPoint, EventRollup, MetricRollup, Session, SessionRollup)
        for table in tables:
            await self.session.execute(delete(table).where(table.project_id.in_(project_ids)))
