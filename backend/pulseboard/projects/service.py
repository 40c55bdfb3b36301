"""Projects; each has a default data source whose write key is the project's key."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.core.errors import NotFound
from pulseboard.core.schemas import apply_update
from pulseboard.core.security import utcnow, write_key_prefix
from pulseboard.models import Project, User
from pulseboard.orgs import service as orgs_service
from pulseboard.orgs.permissions import Action
from pulseboard.orgs.repository import OrganizationRepository
from pulseboard.projects.repository import ProjectRepository
from pulseboard.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate, ProjectWithKey
from pulseboard.sources import service as sources_service


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
    project = await ProjectRepository(session).add(
        Project(
            organization_id=organization_id,
            name=data.name,
            domains=data.domains,
            timezone=data.timezone,
            retention_days=data.retention_days,
        )
    )
    key = await sources_service.create_default_source(session, project)
    return _with_key(project, key)


async def read_projects(session: AsyncSession, projects: list[Project]) -> list[ProjectRead]:
    prefixes = await sources_service.default_key_prefixes(session, [p.id for p in projects])
    return [_read(project, prefixes.get(project.id, "")) for project in projects]


async def read_project(session: AsyncSession, project: Project) -> ProjectRead:
    return (await read_projects(session, [project]))[0]


async def list_projects(
    session: AsyncSession, user: User, organization_id: uuid.UUID | None
) -> list[ProjectRead]:
    projects = await ProjectRepository(session).list_visible(user.id, organization_id)
    return await read_projects(session, list(projects))


async def update_project(
    session: AsyncSession, project: Project, data: ProjectUpdate
) -> ProjectRead:
    apply_update(project, data)
    project.updated_at = utcnow()
    await session.flush()
    return await read_project(session, project)


async def delete_project(session: AsyncSession, project: Project) -> None:
    await ProjectRepository(session).delete_with_data(project)


async def rotate_key(session: AsyncSession, project: Project) -> ProjectWithKey:
    key = await sources_service.rotate_default_key(session, project)
    project.updated_at = utcnow()
    await session.flush()
    return _with_key(project, key)


async def _personal_organization_id(session: AsyncSession, user: User) -> uuid.UUID:
    organization = await OrganizationRepository(session).get_personal(user.id)
    if organization is None:
        raise NotFound("You have no personal organization; give organization_id")
    return organization.id


def _read(project: Project, key_prefix: str) -> ProjectRead:
    return ProjectRead(
        id=project.id,
        organization_id=project.organization_id,
        name=project.name,
        domains=project.domains,
        timezone=project.timezone,
        retention_days=project.retention_days,
        write_key_prefix=key_prefix,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def _with_key(project: Project, key: str) -> ProjectWithKey:
    return ProjectWithKey(**_read(project, write_key_prefix(key)).model_dump(), write_key=key)
