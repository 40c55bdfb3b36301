import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base, Timestamps, UUIDPrimaryKey


class MetricDefinition(UUIDPrimaryKey, Timestamps, Base):
    """A project's named metric: an aggregate of events, or a formula of other definitions.

    Exactly one of `event` and `formula` is set; the service checks the rest (see metrics/).
    """

    __tablename__ = "metric_definitions"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    event: Mapped[str | None] = mapped_column(String(200), default=None)
    # count, sum, avg, min, max, p50, p95 or p99; set for event definitions.
    aggregation: Mapped[str | None] = mapped_column(String(16), default=None)
    # The numeric property aggregated; None for count.
    property: Mapped[str | None] = mapped_column(String(200), default=None)
    # Filters as the API takes them: [{"key", "op", "value"}].
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    formula: Mapped[str | None] = mapped_column(String(1000), default=None)
