import uuid
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Enum, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulseboard.models.base import Base, Timestamps

if TYPE_CHECKING:
    from pulseboard.models.organization import Organization
    from pulseboard.models.user import User


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


_RANKS = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(Timestamps, Base):
    __tablename__ = "memberships"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="role",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda roles: [r.value for r in roles],
        )
    )

    organization: Mapped["Organization"] = relationship(back_populates="memberships", lazy="raise")
    user: Mapped["User"] = relationship(back_populates="memberships", lazy="raise")
