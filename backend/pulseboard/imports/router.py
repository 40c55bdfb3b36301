import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from starlette.requests import ClientDisconnect

from pulseboard.core.deps import ProjectAdmin, ProjectReader, SessionDep, StateDep
from pulseboard.imports import service
from pulseboard.imports.parsing import FORMATS, Upload, UploadInterrupted
from pulseboard.imports.schemas import ImportRead

router = APIRouter(prefix="/projects/{project_id}/sources/{source_id}/imports", tags=["imports"])

FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself, optionally gzipped (`Content-Encoding: gzip`)",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in FORMATS
        },
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not UTF-8 or not valid gzip, or the upload broke off"},
    403: {"description": "Not an admin of the project, or the source is switched off"},
    409: {"description": "The source is not of kind `import`"},
    413: {"description": "The file (or its gzip content) is over the size limit"},
    415: {"description": "Neither text/csv nor application/x-ndjson, or an unknown encoding"},
    422: {"description": "Not a usable file (a CSV without an `event` column, a row too long)"},
    503: {"description": "Ingest cannot take rows now; re-import (rows with a uuid count once)"},
}


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise UploadInterrupted() from exc


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportRead,
    responses=RESPONSES,
    openapi_extra=FILE_BODY,
)
async def create_import(
    source_id: uuid.UUID,
    request: Request,
    project: ProjectAdmin,
    session: SessionDep,
    state: StateDep,
) -> ImportRead:
    """Import a CSV or NDJSON file sent as the raw body; synchronous: answers 201 with the job once
    the whole file is read.

    The file is streamed, never held whole. CSV: a header row, then one event per row; the
    columns event, distinct_id, session_id, timestamp, page_url, referrer and uuid are the
    event's, any other becomes a property. NDJSON: one event per line, as the ingest API takes
    it. Each row is validated as ingest validates an event, except that a timestamp is required
    and may be up to ten years old. Invalid rows are skipped and counted, the first 100 with
    their line and reason. `GET .../imports/{id}` shows the counts while the import runs. A row
    with a `uuid` is stored once, however often it is imported. If the file breaks off (413,
    400), the answer carries the job as `import`: the rows it counted are stored.
    """
    source = await service.get_import_source(session, project, source_id)
    upload = Upload.of(request.headers, state.settings.ingest_max_import_bytes)
    # The file may take minutes to arrive: hold no connection meanwhile.
    await session.commit()
    return await service.run_import(state, project, source, upload, _body(request))


@router.get("", response_model=list[ImportRead])
async def list_imports(
    source_id: uuid.UUID,
    project: ProjectReader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ImportRead]:
    """The source's imports, newest first."""
    return await service.list_imports(session, project, source_id, limit)


@router.get("/{import_id}", response_model=ImportRead)
async def get_import(
    source_id: uuid.UUID, import_id: uuid.UUID, project: ProjectReader, session: SessionDep
) -> ImportRead:
    """One import, with its counts so far while it runs."""
    return await service.get_import(session, project, source_id, import_id)
