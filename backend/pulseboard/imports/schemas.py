import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pulseboard.models import ImportFormat, ImportStatus


class RowError(BaseModel):
    row: int = Field(description="The line of the file where the row starts, counting from 1")
    reason: str


class ImportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    source_id: uuid.UUID
    format: ImportFormat
    status: ImportStatus
    rows_total: int
    rows_accepted: int = Field(
        description="Valid rows handed to storage; a row whose uuid is stored already counts "
        "here but is not stored twice"
    )
    rows_rejected: int
    errors: list[RowError] = Field(description="The first 100 rejected rows, with the reason")
    failure: str | None = Field(
        description="Why the import stopped early; the rows it counted are stored"
    )
    created_at: datetime
    finished_at: datetime | None
