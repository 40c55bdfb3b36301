import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Double, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base


class EventRollup(Base):
    """Events of one name in one time bucket, overall (dimension "") or for one dimension value.

    `granularity` is the bucket width in seconds (60, 3600, 86400). `users` and `sessions` are
    serialised HyperLogLog sketches, merged across rows for unique counts over any range. In
    PostgreSQL they stay in the row rather than in the TOAST table (migration e2b7c4d9a615).
    """

    __tablename__ = "event_rollups"
    __table_args__ = (
        # Counts without the sketches: PostgreSQL answers a count query from this index alone,
        # instead of a heap page per row (a row with its sketches nearly fills one). With
        # `value` a key, the sketches of a breakdown's top values are found in the index too.
        Index(
            "ix_event_rollups_project_id_granularity_dimension_bucket_value",
            "project_id",
            "granularity",
            "dimension",
            "bucket",
            "value",
            postgresql_include=["event_name", "count"],
        ),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    event_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(1000), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    users: Mapped[bytes] = mapped_column(LargeBinary)
    sessions: Mapped[bytes] = mapped_column(LargeBinary)


class MetricRollup(Base):
    """Samples of one metric with one tag set in one time bucket; `quantiles` is a KLL sketch."""

    __tablename__ = "metric_rollups"

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The tag set as canonical JSON (sorted keys), "{}" for none.
    tags: Mapped[str] = mapped_column(String(2000), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    sum: Mapped[float] = mapped_column(Double)
    min: Mapped[float] = mapped_column(Double)
    max: Mapped[float] = mapped_column(Double)
    quantiles: Mapped[bytes] = mapped_column(LargeBinary)
