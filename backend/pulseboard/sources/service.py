"""Data sources: the named ways into a project, each with its own write key."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.core.errors import Conflict, NotFound
from pulseboard.core.schemas import apply_update
from pulseboard.core.security import hash_secret, new_write_key, utcnow, write_key_prefix
from pulseboard.models import DataSource, Project, SourceKind
from pulseboard.sources.repository import DataSourceRepository
from pulseboard.sources.schemas import SourceCreate, SourceRead, SourceUpdate, SourceWithKey


class DefaultSourceRequired(Conflict):
    code = "default_source"
    detail = "The default source carries the project's key and cannot be deleted"


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """What a write key opens: one source of one project."""

    project_id: uuid.UUID
    source_id: uuid.UUID
    enabled: bool
    domains: tuple[str, ...]
    timezone: str

    @classmethod
    def of(cls, source: DataSource, project: Project) -> "IngestTarget":
        return cls(
            project_id=project.id,
            source_id=source.id,
            enabled=source.enabled,
            domains=tuple(project.domains),
            timezone=project.timezone,
        )


async def create_default_source(session: AsyncSession, project: Project) -> str:
    _, key = await _create(session, project.id, "Default", SourceKind.WEB, is_default=True)
    return key


async def create_source(
    session: AsyncSession, project: Project, data: SourceCreate
) -> SourceWithKey:
    source, key = await _create(session, project.id, data.name, data.kind, is_default=False)
    return _with_key(source, key)


async def list_sources(session: AsyncSession, project: Project) -> Sequence[DataSource]:
    return await DataSourceRepository(session).list_for_project(project.id)


async def get_source(session: AsyncSession, project: Project, source_id: uuid.UUID) -> DataSource:
    source = await DataSourceRepository(session).get_in_project(project.id, source_id)
    if source is None:
        raise NotFound("Data source not found")
    return source


async def update_source(
    session: AsyncSession, source: DataSource, data: SourceUpdate
) -> DataSource:
    apply_update(source, data)
    source.updated_at = utcnow()
    await session.flush()
    return source


async def delete_source(session: AsyncSession, source: DataSource) -> None:
    if source.is_default:
        raise DefaultSourceRequired()
    await DataSourceRepository(session).delete(source)


async def rotate_key(session: AsyncSession, source: DataSource) -> str:
    key = new_write_key()
    source.write_key_hash = hash_secret(key)
    source.write_key_prefix = write_key_prefix(key)
    source.updated_at = utcnow()
    await session.flush()
    return key


async def rotate_default_key(session: AsyncSession, project: Project) -> str:
    source = await DataSourceRepository(session).get_default(project.id)
    if source is None:
        raise NotFound("The project has no default source")
    return await rotate_key(session, source)


async def default_key_prefixes(
    session: AsyncSession, project_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return await DataSourceRepository(session).default_key_prefixes(project_ids)


async def resolve_write_key(session: AsyncSession, key: str) -> IngestTarget | None:
    row = await DataSourceRepository(session).get_by_key_hash(hash_secret(key))
    if row is None:
        return None
    return IngestTarget.of(*row)


async def _create(
    session: AsyncSession, project_id: uuid.UUID, name: str, kind: SourceKind, *, is_default: bool
) -> tuple[DataSource, str]:
    key = new_write_key()
    source = await DataSourceRepository(session).add(
        DataSource(
            project_id=project_id,
            name=name,
            kind=kind,
            is_default=is_default,
            enabled=True,
            write_key_hash=hash_secret(key),
            write_key_prefix=write_key_prefix(key),
            events_count=0,
            metrics_count=0,
        )
    )
    return source, key


def _with_key(source: DataSource, key: str) -> SourceWithKey:
    return SourceWithKey(**SourceRead.model_validate(source).model_dump(), write_key=key)
