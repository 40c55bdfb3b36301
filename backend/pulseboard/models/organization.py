from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulseboard.models.base import Base, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from pulseboard.models.membership import Membership
    from pulseboard.models.project import Project


class Organization(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    # The organization made at registration; it cannot be deleted while its owner exists.
    is_personal: Mapped[bool] = mapped_column(default=False)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="organization",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    projects: Mapped[list["Project"]] = relationship(
        back_populates="organization",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
