import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pulseboard.core.schemas import Name
from pulseboard.models import SourceKind


class SourceCreate(BaseModel):
    name: Name
    kind: SourceKind = SourceKind.SERVER


class SourceUpdate(BaseModel):
    name: Name | None = None
    enabled: bool | None = None


class SourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    kind: SourceKind
    is_default: bool
    enabled: bool
    write_key_prefix: str
    last_event_at: datetime | None
    events_count: int
    metrics_count: int
    created_at: datetime


class SourceWithKey(SourceRead):
    write_key: str = Field(description="Shown only now: it is stored hashed.")
