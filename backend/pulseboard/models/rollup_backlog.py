import uuid
from datetime import datetime

from sqlalchemy import JSON, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base


class RollupBacklog(Base):
    """Raw rows stored but not yet rolled up: one row per worker transaction that deferred them.

    The worker may acknowledge a batch once its raw rows are committed and roll them up later,
    with others, in one larger transaction. That transaction deletes the backlog rows it covers,
    so rows are rolled up exactly once: by the worker that still holds them in memory or, after a
    crash, by the next worker to start, which reads them back from the raw tables. `events` and
    `metrics` hold the rows' keys, packed (`pipeline.backlog`); `timezones` each project's zone
    as its batches carried it (its day buckets).
    """

    __tablename__ = "rollup_backlog"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    events: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[bytes] = mapped_column(LargeBinary)
    timezones: Mapped[dict[str, str]] = mapped_column(JSON)
