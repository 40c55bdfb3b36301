import uuid
from datetime import datetime

from sqlalchemy import exists, func, select, update

from pulseboard.core.repository import Repository
from pulseboard.models import RefreshToken, User


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.get_one_or_none(select(User).where(User.email == email.lower()))

    async def get_active_in_session(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> User | None:
        """The user behind an access token, if both the user and its login session are alive."""
        session_alive = exists().where(
            RefreshToken.family_id == session_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        statement = select(User).where(User.id == user_id, User.is_active.is_(True), session_alive)
        return await self.get_one_or_none(statement)

    async def count(self) -> int:
        return (await self.session.scalar(select(func.count()).select_from(User))) or 0


class RefreshTokenRepository(Repository[RefreshToken]):
    model = RefreshToken

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.get_one_or_none(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )

    async def claim(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Revoke one token if nobody else has: the winner of two concurrent refreshes."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
