import uuid

from fastapi import APIRouter, status

from pulseboard.core.deps import CurrentUser, ProjectAdmin, ProjectReader, SessionDep, StateDep
from pulseboard.ingest.keys import commit_then_forget
from pulseboard.projects import service
from pulseboard.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate, ProjectWithKey

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=ProjectWithKey)
async def create_project(
    data: ProjectCreate, user: CurrentUser, session: SessionDep
) -> ProjectWithKey:
    """Create a project; the response carries its write key, shown this once."""
    return await service.create_project(session, user, data)


@router.get("/", response_model=list[ProjectRead])
async def list_projects(
    user: CurrentUser, session: SessionDep, organization_id: uuid.UUID | None = None
) -> list[ProjectRead]:
    return await service.list_projects(session, user, organization_id)


@router.get("/{project_id}", response_model=ProjectRead)
async def get_project(project: ProjectReader, session: SessionDep) -> ProjectRead:
    return await service.read_project(session, project)


@router.patch("/{project_id}", response_model=ProjectRead)
async def update_project(
    data: ProjectUpdate, project: ProjectAdmin, session: SessionDep, state: StateDep
) -> ProjectRead:
    """Change a project; a new domain allowlist or timezone applies to ingest at once."""
    updated = await service.update_project(session, project, data)
    await commit_then_forget(session, state.key_cache)
    return updated


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project: ProjectAdmin, session: SessionDep, state: StateDep) -> None:
    await service.delete_project(session, project)
    await commit_then_forget(session, state.key_cache)


@router.post("/{project_id}/rotate-key", response_model=ProjectWithKey)
async def rotate_key(project: ProjectAdmin, session: SessionDep, state: StateDep) -> ProjectWithKey:
    """Replace the write key; the old one stops working at once."""
    rotated = await service.rotate_key(session, project)
    await commit_then_forget(session, state.key_cache)
    return rotated
