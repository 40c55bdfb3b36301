import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base
from pulseboard.models.event import JSONVariant


class MetricPoint(Base):
    """A raw metric sample; range-partitioned by `timestamp` in PostgreSQL, like events."""

    __tablename__ = "metric_points"
    __table_args__ = (
        Index("ix_metric_points_project_id_name_timestamp", "project_id", "name", "timestamp"),
        {"postgresql_partition_by": "RANGE (timestamp)"},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(primary_key=True)
    # Given at the API, so that a redelivered batch is recognised.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    source_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    value: Mapped[float] = mapped_column(Double)
    received_at: Mapped[datetime]
