"""Settings: one class, read from `PULSEBOARD_`-prefixed environment variables."""

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "please-change", "xxx"})
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSEBOARD_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("./data")
    # Unset: a SQLite file under data_dir (the embedded mode).
    database_url: str = ""
    # Unset: bus, pub/sub, cache and rate limits stay in-process.
    redis_url: str | None = None
    secret_key: str = ""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    database_echo: bool = False
    # Behind a proxy that sets X-Forwarded-For; off, the peer address is the client's.
    trust_proxy: bool = False

    # Ingest limits: past any of these a request is refused whole, with the reason.
    ingest_max_body_bytes: int = 1_000_000
    ingest_max_import_bytes: int = 100_000_000  # one uploaded import file, once gunzipped
    ingest_max_batch: int = 1000
    ingest_max_name_length: int = 200
    ingest_max_property_keys: int = 64
    ingest_max_property_depth: int = 3
    ingest_max_property_bytes: int = 8192
    ingest_max_age_days: int = 7
    ingest_max_future_minutes: int = 60
    # How long a write key's lookup is remembered by an API process.
    ingest_key_cache_seconds: float = 5.0

    # Live sockets: events waiting for one socket before its oldest are dropped, how long a send
    # may stall before the client counts as gone, and the heartbeat sent when otherwise idle.
    live_max_queued_events: int = Field(default=1000, ge=1)
    live_send_timeout_seconds: float = Field(default=10.0, gt=0)
    live_heartbeat_seconds: float = Field(default=15.0, gt=0)

    # The worker: how many request batches it reads at a time, how many events it gathers per
    # transaction while more are waiting, and when it claims batches a dead worker left
    # unacknowledged.
    worker_batch_size: int = Field(default=50, ge=1)
    worker_batch_events: int = Field(default=20_000, ge=1)
    worker_claim_idle_ms: int = Field(default=30_000, ge=100)
    # Embedded mode: how long the worker may hold stored rows before rolling them up together
    # (the API rolls them up at once before it reads). 0: in the transaction that stores them.
    # Requests that arrive during a rollup wait for it: 250 ms halves the p99 of 1 s at the
    # same throughput (docs/ARCHITECTURE.md).
    embedded_rollup_delay_ms: int = Field(default=250, ge=0)

    # Retention: raw rows follow each project's retention_days; rollups are kept this many
    # days by granularity, 0 meaning for ever. Deletes go in chunks of this many rows.
    retention_minute_rollup_days: int = Field(default=14, ge=0)
    retention_hour_rollup_days: int = Field(default=400, ge=0)
    retention_day_rollup_days: int = Field(default=0, ge=0)
    retention_delete_chunk: int = Field(default=5000, ge=1)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("redis_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'pulseboard.db'}"
        self.database_url = normalise_database_url(self.database_url)
        if self.environment is Environment.PRODUCTION:
            if is_placeholder_secret(self.secret_key):
                raise ValueError(
                    "PULSEBOARD_SECRET_KEY must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production"
                )
        elif not self.secret_key:
            self.secret_key = self._development_secret()
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_embedded(self) -> bool:
        """SQLite storage and no Redis: everything runs in one process."""
        return self.is_sqlite and self.redis_url is None

    def _development_secret(self) -> str:
        # Generated once and kept, so that tokens survive a restart of `make run`.
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


def is_placeholder_secret(value: str) -> bool:
    return value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings and pick the async driver for each."""
    for plain in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url.removeprefix(plain)
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    return url
