from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulseboard.models.base import Base, Timestamps, UUIDPrimaryKey

if TYPE_CHECKING:
    from pulseboard.models.membership import Membership


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Instance administrator (`pulseboard create-user --admin`), not an organization role.
    is_admin: Mapped[bool] = mapped_column(default=False)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="user", lazy="raise")

    def __repr__(self) -> str:
        return f"User(id={self.id!s}, email={self.email!r})"


__all__ = ["User"]
