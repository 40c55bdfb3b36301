import uuid

from fastapi import APIRouter, status

from pulseboard.core.deps import ProjectAdmin, ProjectReader, SessionDep, StateDep
from pulseboard.ingest.keys import commit_then_forget
from pulseboard.sources import service
from pulseboard.sources.schemas import SourceCreate, SourceRead, SourceUpdate, SourceWithKey

router = APIRouter(prefix="/projects/{project_id}/sources", tags=["sources"])


@router.get("/", response_model=list[SourceRead])
async def list_sources(project: ProjectReader, session: SessionDep) -> list[SourceRead]:
    return [SourceRead.model_validate(s) for s in await service.list_sources(session, project)]


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=SourceWithKey)
async def create_source(
    data: SourceCreate, project: ProjectAdmin, session: SessionDep
) -> SourceWithKey:
    """Add a source with its own write key, shown this once."""
    return await service.create_source(session, project, data)


@router.get("/{source_id}", response_model=SourceRead)
async def get_source(
    source_id: uuid.UUID, project: ProjectReader, session: SessionDep
) -> SourceRead:
    return SourceRead.model_validate(await service.get_source(session, project, source_id))


@router.patch("/{source_id}", response_model=SourceRead)
async def update_source(
    source_id: uuid.UUID,
    data: SourceUpdate,
    project: ProjectAdmin,
    session: SessionDep,
    state: StateDep,
) -> SourceRead:
    """Rename a source, or switch it off (its key is then refused) and on."""
    source = await service.get_source(session, project, source_id)
    updated = await service.update_source(session, source, data)
    await commit_then_forget(session, state.key_cache)
    return SourceRead.model_validate(updated)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    source_id: uuid.UUID, project: ProjectAdmin, session: SessionDep, state: StateDep
) -> None:
    await service.delete_source(session, await service.get_source(session, project, source_id))
    await commit_then_forget(session, state.key_cache)


@router.post("/{source_id}/rotate-key", response_model=SourceWithKey)
async def rotate_source_key(
    source_id: uuid.UUID, project: ProjectAdmin, session: SessionDep, state: StateDep
) -> SourceWithKey:
    source = await service.get_source(session, project, source_id)
    key = await service.rotate_key(session, source)
    await commit_then_forget(session, state.key_cache)
    return SourceWithKey(**SourceRead.model_validate(source).model_dump(), write_key=key)
