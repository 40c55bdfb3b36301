import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulseboard.models import SourceKind


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: SourceKind = SourceKind.SERVER

    _check_name = field_validator("name")(_name)


class SourceUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None

    _check_name = field_validator("name")(_name)


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
