import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, select, update

from pulseboard.core.repository import Repository
from pulseboard.models import DataSource, Project


class DataSourceRepository(Repository[DataSource]):
    model = DataSource

    async def get_by_key_hash(self, key_hash: str) -> tuple[DataSource, Project] | None:
        """The source a write key belongs to, with its project: one lookup on a unique index."""
        statement = (
            select(DataSource, Project)
            .join(Project, Project.id == DataSource.project_id)
            .where(DataSource.write_key_hash == key_hash)
        )
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def get_in_project(
        self, project_id: uuid.UUID, source_id: uuid.UUID
    ) -> DataSource | None:
        return await self.get_one_or_none(
            select(DataSource).where(
                DataSource.project_id == project_id, DataSource.id == source_id
            )
        )

    async def get_default(self, project_id: uuid.UUID) -> DataSource | None:
        return await self.get_one_or_none(
            select(DataSource).where(
                DataSource.project_id == project_id, DataSource.is_default.is_(True)
            )
        )

    async def default_key_prefixes(self, project_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        statement = select(DataSource.project_id, DataSource.write_key_prefix).where(
            DataSource.project_id.in_(project_ids), DataSource.is_default.is_(True)
        )
        return {
            row.project_id: row.write_key_prefix for row in await self.session.execute(statement)
        }

    async def list_for_project(self, project_id: uuid.UUID) -> Sequence[DataSource]:
        return await self.list(
            select(DataSource)
            .where(DataSource.project_id == project_id)
            .order_by(DataSource.is_default.desc(), DataSource.created_at, DataSource.id)
        )

    async def record_ingest(
        self, source_id: uuid.UUID, events: int, metrics: int, last_event_at: datetime
    ) -> None:
        """Add to a source's counters; safe beside concurrent workers (no read-modify-write)."""
        later = case(
            (DataSource.last_event_at.is_(None), last_event_at),
            (DataSource.last_event_at < last_event_at, last_event_at),
            else_=DataSource.last_event_at,
        )
        await self.session.execute(
            update(DataSource)
            .where(DataSource.id == source_id)
            .values(
                events_count=DataSource.events_count + events,
                metrics_count=DataSource.metrics_count + metrics,
                last_event_at=later,
            )
            .execution_options(synchronize_session=False)
        )
