import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base


class Session(Base):
    """A session as its events so far make it: when it started and ended, how much happened.

    The worker keeps it as events arrive, so that the session rollups can take out what a session
    counted for before and add what it counts for now.
    """

    __tablename__ = "sessions"
    # The start, not the end: the end moves with every event, and an indexed column that changes
    # makes each update write index entries and leave a dead row (migration b8d4f2a6c913).
    __table_args__ = (Index("ix_sessions_project_id_started_at", "project_id", "started_at"),)

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    events: Mapped[int] = mapped_column(BigInteger)
    pageviews: Mapped[int] = mapped_column(BigInteger)


class SessionRollup(Base):
    """Sessions by the bucket they started in: additive totals for bounce rate and durations."""

    __tablename__ = "session_rollups"

    project_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    sessions: Mapped[int] = mapped_column(BigInteger)
    bounces: Mapped[int] = mapped_column(BigInteger)
    # Seconds from first to last event, summed over the sessions.
    duration: Mapped[float] = mapped_column(Double)
    events: Mapped[int] = mapped_column(BigInteger)
    pageviews: Mapped[int] = mapped_column(BigInteger)
