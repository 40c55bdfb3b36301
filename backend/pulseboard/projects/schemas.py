import re
import uuid
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pulseboard.core.schemas import Name

MAX_DOMAINS = 50
MAX_RETENTION_DAYS = 3650
# A hostname, optionally with a leading "*." for all its subdomains.
HOSTNAME = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_domains(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in values:
        domain = raw.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not HOSTNAME.match(domain):
            raise ValueError(f"{raw!r} is not a hostname such as example.com or *.example.com")
        if domain not in cleaned:
            cleaned.append(domain)
    return cleaned


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"{value!r} is not an IANA timezone such as Europe/Paris")
    return value


class ProjectFields(BaseModel):
    """The validation rules shared by creation and update."""

    @field_validator("domains", check_fields=False)
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_domains(value)

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class ProjectCreate(ProjectFields):
    name: Name
    organization_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the caller's personal organization."
    )
    domains: list[str] = Field(default_factory=list, max_length=MAX_DOMAINS)
    timezone: str = "UTC"
    retention_days: int = Field(default=90, ge=1, le=MAX_RETENTION_DAYS)


class ProjectUpdate(ProjectFields):
    name: Name | None = None
    domains: list[str] | None = Field(default=None, max_length=MAX_DOMAINS)
    timezone: str | None = None
    retention_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    domains: list[str]
    timezone: str
    retention_days: int
    write_key_prefix: str = Field(
        description="The first characters of the write key, to tell keys apart."
    )
    created_at: datetime
    updated_at: datetime


class ProjectWithKey(ProjectRead):
    write_key: str = Field(
        description="Shown only now: it is stored hashed and cannot be read again."
    )
