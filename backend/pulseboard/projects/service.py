"""Projects and their write keys."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.core.errors import NotFound
from pulseboard.core.security import hash_secret, new_write_key, utcnow, write_key_prefix
from pulseboard.models import Project, User
from pulseboard.orgs import service as orgs_service
from pulseboard.orgs.permissions import Action
from pulseboard.orgs.repository import OrganizationRepository
from pulseboard.projects.repository import ProjectRepository
from pulseboard.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate, ProjectWithKey


async def authorize_project(
    session: AsyncSession, user: User, project_id: uuid.UUID, action: Action
) -> Project:
    """The organization permission check, applied through the project's organization."""
    row = await ProjectRepository(session).get_with_role(project_id, user.id)
    if row is None:
        raise NotFound("Project not found")
    project, role = row
    orgs_service.check_role(role, action)
    return project


async def create_project(session: AsyncSession, user: User, data: ProjectCreate) -> ProjectWithKey:
    organization_id = data.organization_id or await _personal_organization_id(session, user)
    await orgs_service.authorize(session, user, organization_id, Action.MANAGE_PROJECTS)
    key = new_write_key()
    project = await ProjectRepository(session).add(
        Project(
            organization_id=organization_id,
            name=data.name,
            domains=data.domains,
            timezone=data.timezone,
            retention_days=data.retention_days,
            write_key_hash=hash_secret(key),
            write_key_prefix=write_key_prefix(key),
        )
    )
    return _with_key(project, key)


async def list_projects(
    session: AsyncSession, user: User, organization_id: uuid.UUID | None
) -> Sequence[Project]:
    return await ProjectRepository(session).list_visible(user.id, organization_id)


async def update_project(session: AsyncSession, project: Project, data: ProjectUpdate) -> Project:
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(project, field, value)
    project.updated_at = utcnow()
    await session.flush()
    return project


async def delete_project(session: AsyncSession, project: Project) -> None:
    await ProjectRepository(session).delete(project)


async def rotate_key(session: AsyncSession, project: Project) -> ProjectWithKey:
    key = new_write_key()
    project.write_key_hash = hash_secret(key)
    project.write_key_prefix = write_key_prefix(key)
    project.updated_at = utcnow()
    await session.flush()
    return _with_key(project, key)


async def get_by_write_key(session: AsyncSession, key: str) -> Project | None:
    """The project a write key belongs to: one lookup on a unique index."""
    return await ProjectRepository(session).get_by_key_hash(hash_secret(key))


async def _personal_organization_id(session: AsyncSession, user: User) -> uuid.UUID:
    organization = await OrganizationRepository(session).get_personal(user.id)
    if organization is None:
        raise NotFound("You have no personal organization; give organization_id")
    return organization.id


def _with_key(project: Project, key: str) -> ProjectWithKey:
    return ProjectWithKey(**ProjectRead.model_validate(project).model_dump(), write_key=key)
