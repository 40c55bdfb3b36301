from datetime import date

from sqlalchemy import LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from pulseboard.models.base import Base


class DailySalt(Base):
    """A random salt per UTC day for IP hashes; old ones are deleted so hashes cannot be undone."""

    __tablename__ = "daily_salts"

    day: Mapped[date] = mapped_column(primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
