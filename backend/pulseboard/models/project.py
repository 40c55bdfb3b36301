import uuid
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulseboard.models.base import Base, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from pulseboard.models.organization import Organization


class Project(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "projects"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # Hostnames allowed to send browser events; empty means any origin.
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Days of raw events and metric points kept; rollups are kept by their own settings.
    retention_days: Mapped[int] = mapped_column(default=90)

    organization: Mapped["Organization"] = relationship(back_populates="projects", lazy="raise")
