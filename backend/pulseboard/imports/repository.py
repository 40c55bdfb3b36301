import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from pulseboard.core.repository import Repository
from pulseboard.models import ImportJob, ImportStatus


class ImportJobRepository(Repository[ImportJob]):
    model = ImportJob

    async def list_for_source(self, source_id: uuid.UUID, limit: int) -> Sequence[ImportJob]:
        return await self.list(
            select(ImportJob)
            .where(ImportJob.source_id == source_id)
            .order_by(ImportJob.created_at.desc(), ImportJob.id)
            .limit(limit)
        )

    async def get_in_source(self, source_id: uuid.UUID, import_id: uuid.UUID) -> ImportJob | None:
        return await self.get_one_or_none(
            select(ImportJob).where(ImportJob.source_id == source_id, ImportJob.id == import_id)
        )

    async def record(
        self,
        import_id: uuid.UUID,
        *,
        rows_total: int,
        rows_accepted: int,
        rows_rejected: int,
        errors: list[dict[str, Any]],
        status: ImportStatus = ImportStatus.RUNNING,
        failure: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Write a job's progress so far (one import writes its own row only, so no lock)."""
        await self.session.execute(
            update(ImportJob)
            .where(ImportJob.id == import_id)
            .values(
                rows_total=rows_total,
                rows_accepted=rows_accepted,
                rows_rejected=rows_rejected,
                errors=errors,
                status=status,
                failure=failure,
                finished_at=finished_at,
            )
            .execution_options(synchronize_session=False)
        )
