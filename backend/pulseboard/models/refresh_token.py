import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base, UUIDPrimaryKey


class RefreshToken(UUIDPrimaryKey, Base):
    """One link of a login session's rotation chain; the chain shares a family id."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set when the token is rotated or its session logged out; a revoked token presented
    # again is a replay, and revokes its whole family.
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
