import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base


class EventId(Base):
    """Every stored event's uuid, per project: what makes a repeated uuid count once.

    The partitioned `events` table can only be unique on keys that hold its partition key (the
    timestamp), so an event resent without its timestamp would otherwise be stored again. Kept as
    long as the event itself (the project's retention).
    """

    __tablename__ = "event_ids"
    __table_args__ = (Index("ix_event_ids_project_id_timestamp", "project_id", "timestamp"),)

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    timestamp: Mapped[datetime]
