import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base

JSONVariant = JSON().with_variant(JSONB(), "postgresql")


class Event(Base):
    """A raw product event. In PostgreSQL the table is range-partitioned by `timestamp`.

    The primary key leads with (project_id, timestamp) so that it also serves time-range scans;
    it must hold the partition key, so a repeated uuid is recognised with its timestamp.

    Columns come in the order raw scans read them: fixed-width first, then what filters and counts
    use, then the dimensions, then what only the raw events list shows (PostgreSQL steps over
    every column before the one it reads; migration a7c3e9f1d284).
    """

    __tablename__ = "events"
    __table_args__ = (
        # Funnels and retention read (user, time, name, path) of a few event names: from this
        # index alone, not from a heap page per row.
        Index(
            "ix_events_project_id_event_name_timestamp",
            "project_id",
            "event_name",
            "timestamp",
            postgresql_include=["distinct_id", "path", "is_bot", "id"],
        ),
        {"postgresql_partition_by": "RANGE (timestamp)"},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    source_id: Mapped[uuid.UUID]
    received_at: Mapped[datetime]
    is_bot: Mapped[bool] = mapped_column(default=False)
    event_name: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    distinct_id: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(200))
    path: Mapped[str | None] = mapped_column(String(1000))
    referrer_domain: Mapped[str | None] = mapped_column(String(255))
    utm_source: Mapped[str | None] = mapped_column(String(200))
    browser: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(16))
    host: Mapped[str | None] = mapped_column(String(255))
    page_url: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    utm_medium: Mapped[str | None] = mapped_column(String(200))
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    utm_term: Mapped[str | None] = mapped_column(String(200))
    utm_content: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 as its 32 bytes, not 64 hex characters: the widest value of a row from a browser.
    ip_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
