from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from pulseboard.core.repository import Repository
from pulseboard.models import DailySalt


class SaltRepository(Repository[DailySalt]):
    model = DailySalt

    async def get_or_create(self, day: date, candidate: bytes) -> bytes:
        existing = await self.session.scalar(select(DailySalt.salt).where(DailySalt.day == day))
        if existing is not None:
            return existing
        try:
            async with self.session.begin_nested():
                self.session.add(DailySalt(day=day, salt=candidate))
        except IntegrityError:
            # Another process made today's salt first: use theirs.
            salt = await self.session.scalar(select(DailySalt.salt).where(DailySalt.day == day))
            assert salt is not None
            return salt
        return candidate

    async def delete_before(self, day: date) -> None:
        await self.session.execute(delete(DailySalt).where(DailySalt.day < day))
