import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base, Timestamps, UUIDPrimaryKey


class SourceKind(StrEnum):
    WEB = "web"
    SERVER = "server"
    IMPORT = "import"


class DataSource(UUIDPrimaryKey, Timestamps, Base):
    """A named way into a project (the web tracker, a server, a file import) with its own key."""

    __tablename__ = "data_sources"

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[SourceKind] = mapped_column(
        Enum(
            SourceKind,
            name="source_kind",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda kinds: [k.value for k in kinds],
        )
    )
    # The project's own key (shown on the project, rotated by /rotate-key) is its default source's.
    is_default: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    # The key itself is never stored: its SHA-256 for lookup, its first characters to show.
    write_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    write_key_prefix: Mapped[str] = mapped_column(String(16))
    last_event_at: Mapped[datetime | None] = mapped_column(default=None)
    events_count: Mapped[int] = mapped_column(BigInteger, default=0)
    metrics_count: Mapped[int] = mapped_column(BigInteger, default=0)
