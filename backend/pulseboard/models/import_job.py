import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base, UUIDPrimaryKey

# One bad file must not bloat its job row: past this many, rejected rows are only counted.
MAX_IMPORT_ERRORS = 100


class ImportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


class ImportStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _enum(kind: type[StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class ImportJob(UUIDPrimaryKey, Base):
    """One file uploaded to an import source, with its progress and its first rejected rows."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_source_id_created_at", "source_id", "created_at"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"))
    format: Mapped[ImportFormat] = mapped_column(_enum(ImportFormat, "import_format"))
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"))
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    # At most MAX_IMPORT_ERRORS of {"row": n, "reason": "..."}, n being the row's line in the file.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Why the whole import stopped (status "failed"); the rows counted before it are stored.
    failure: Mapped[str | None] = mapped_column(String(1000), default=None)
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
