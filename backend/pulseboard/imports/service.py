"""Imports: a CSV or NDJSON file streamed into an import source, each row validated as the ingest
API validates an event, the valid ones published on the bus in chunks, the job's progress
written as each chunk goes out."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.core.errors import Conflict, NotFound, PulseboardError
from pulseboard.core.security import utcnow
from pulseboard.core.state import AppState
from pulseboard.imports.parsing import Row, Upload, read_rows
from pulseboard.imports.repository import ImportJobRepository
from pulseboard.imports.schemas import ImportRead
from pulseboard.ingest.schemas import CheckedEventIn, EventIn, as_utc

# The ingest API's own row building and publishing, so that the worker cannot tell them apart.
from pulseboard.ingest.service import (
    Client,
    Sender,
    SourceDisabled,
    event_row,
    new_uuids,
    publish,
    timestamp_problem,
)
from pulseboard.models import DataSource, ImportJob, ImportStatus, Project, SourceKind
from pulseboard.models.import_job import MAX_IMPORT_ERRORS
from pulseboard.pipeline.messages import EVENTS
from pulseboard.sources import service as sources_service
from pulseboard.sources.service import IngestTarget

log = logging.getLogger(__name__)

# A chunk is one bus message: at most as many rows as an ingest batch, and about as big.
CHUNK_ROWS = 1000
CHUNK_CHARS = 1_000_000
# History is what an import is for, so only a sane lower bound; the future limit is ingest's.
IMPORT_MAX_AGE = timedelta(days=3653)
MAX_REASON = 300


class NotAnImportSource(Conflict):
    code = "not_an_import_source"


async def get_import_source(
    session: AsyncSession, project: Project, source_id: uuid.UUID
) -> DataSource:
    source = await sources_service.get_source(session, project, source_id)
    if source.kind is not SourceKind.IMPORT:
        raise NotAnImportSource(
            f"Source {source.name!r} is of kind {source.kind.value!r}; files are imported "
            "through a source of kind 'import'"
        )
    if not source.enabled:
        raise SourceDisabled()
    return source


async def list_imports(
    session: AsyncSession, project: Project, source_id: uuid.UUID, limit: int
) -> list[ImportRead]:
    source = await sources_service.get_source(session, project, source_id)
    jobs = await ImportJobRepository(session).list_for_source(source.id, limit)
    return [ImportRead.model_validate(job) for job in jobs]


async def get_import(
    session: AsyncSession, project: Project, source_id: uuid.UUID, import_id: uuid.UUID
) -> ImportRead:
    job = await ImportJobRepository(session).get_in_source(source_id, import_id)
    if job is None or job.project_id != project.id:
        raise NotFound("Import not found")
    return ImportRead.model_validate(job)


async def run_import(
    state: AppState,
    project: Project,
    source: DataSource,
    upload: Upload,
    body: AsyncIterator[bytes],
) -> ImportRead:
    """Read the file to its end and return the finished job; a refusal carries it as `import`."""
    target = IngestTarget.of(source, project)
    salt = await state.salts.salt_for(utcnow().date())
    # No request to read a browser or an address from: anonymous rows share the day's visitor id.
    sender = Sender.of(Client(user_agent=None, ip=None, origin=None), salt, str(project.id))
    job = ImportJob(
        project_id=project.id,
        source_id=source.id,
        format=upload.format,
        status=ImportStatus.RUNNING,
    )
    async with state.sessions() as session, session.begin():
        await ImportJobRepository(session).add(job)
    run = _Run(state, target, job.id, sender)
    limit = state.settings.ingest_max_import_bytes
    try:
        rows = read_rows(body, upload.format, gzipped=upload.gzipped, limit=limit)
        async with contextlib.aclosing(rows):
            while True:
                try:
                    batch = await anext(rows)
                except StopAsyncIteration:
                    break
                except PulseboardError:
                    # The file broke off: the rows read whole before that are good all the same.
                    await run.flush()
                    raise
                await run.add(batch)
        await run.flush()
    except PulseboardError as exc:
        exc.extra["import"] = await run.save(ImportStatus.FAILED, exc.detail)
        raise
    except BaseException as exc:
        if not isinstance(exc, asyncio.CancelledError):
            log.exception("import %s failed", job.id)
        with contextlib.suppress(Exception):
            await asyncio.shield(run.save(ImportStatus.FAILED, "The import stopped on an error"))
        raise
    return await run.save(ImportStatus.DONE)


@dataclass(slots=True)
class _Chunk:
    events: list[tuple[EventIn, datetime]] = field(default_factory=list)
    rows: int = 0
    chars: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.rows >= CHUNK_ROWS or self.chars >= CHUNK_CHARS


class _Run:
    """One import under way: the rows of the chunk in hand and the counts of those sent."""

    def __init__(
        self, state: AppState, target: IngestTarget, job_id: uuid.UUID, sender: Sender
    ) -> None:
        self.state = state
        self.target = target
        self.job_id = job_id
        self.sender = sender
        self.context = {"limits": state.limits}
        self.rows_total = self.rows_accepted = self.rows_rejected = 0
        self.errors: list[dict[str, Any]] = []
        self.chunk = _Chunk()

    async def add(self, rows: list[Row]) -> None:
        now = utcnow()
        for row in rows:
            chunk = self.chunk
            chunk.rows += 1
            chunk.chars += row.chars
            outcome = self._event(row, now) if row.error is None else row.error
            if isinstance(outcome, str):
                chunk.rejected += 1
                if len(self.errors) + len(chunk.errors) < MAX_IMPORT_ERRORS:
                    chunk.errors.append({"row": row.line, "reason": outcome[:MAX_REASON]})
            else:
                chunk.events.append(outcome)
            if chunk.full:
                await self.flush()

    def _event(self, row: Row, now: datetime) -> tuple[EventIn, datetime] | str:
        try:
            event = CheckedEventIn.model_validate(row.values, context=self.context)
        except ValidationError as exc:
            return "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'row'}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
        # Required here: without it a re-import would land on another moment, stored twice.
        if event.timestamp is None:
            return "timestamp: is required in an import"
        try:
            moment = as_utc(event.timestamp)
        except ValueError as exc:
            return f"timestamp: {exc}"
        problem = timestamp_problem(moment, now, IMPORT_MAX_AGE, self.state.limits.max_future)
        return (event, moment) if problem is None else f"timestamp: {problem}"

    async def flush(self) -> None:
        """Publish the chunk in hand, then record it: progress never counts an unsent row."""
        chunk, self.chunk = self.chunk, _Chunk()
        if not chunk.rows:
            return
        if chunk.events:
            ids = new_uuids(len(chunk.events))
            rows = [
                event_row(event, moment, self.sender, generated)
                for (event, moment), generated in zip(chunk.events, ids, strict=True)
            ]
            await publish(self.state, EVENTS, self.target, utcnow(), rows)
        self.rows_total += chunk.rows
        self.rows_accepted += len(chunk.events)
        self.rows_rejected += chunk.rejected
        self.errors.extend(chunk.errors)
        await self.save(ImportStatus.RUNNING)

    async def save(self, status: ImportStatus, failure: str | None = None) -> ImportRead:
        """Write the counts so far in a short transaction of its own, visible to readers now."""
        finished = status is not ImportStatus.RUNNING
        async with self.state.sessions() as session, session.begin():
            jobs = ImportJobRepository(session)
            await jobs.record(
                self.job_id,
                rows_total=self.rows_total,
                rows_accepted=self.rows_accepted,
                rows_rejected=self.rows_rejected,
                errors=self.errors,
                status=status,
                failure=failure[:1000] if failure else None,
                finished_at=utcnow() if finished else None,
            )
            job = await jobs.get(self.job_id)
            assert job is not None
            return ImportRead.model_validate(job)
