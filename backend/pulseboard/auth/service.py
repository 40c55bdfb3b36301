"""Accounts: registration, login, rotating refresh tokens and logout."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pulseboard.auth.passwords import weakness
from pulseboard.auth.repository import RefreshTokenRepository, UserRepository
from pulseboard.auth.schemas import TokenPair, UserCreate
from pulseboard.core.errors import Conflict, InvalidCredentials, InvalidToken, Unprocessable
from pulseboard.core.security import (
    AccessClaims,
    Passwords,
    create_access_token,
    hash_secret,
    new_secret,
    utcnow,
)
from pulseboard.core.settings import Settings
from pulseboard.models import RefreshToken, User
from pulseboard.orgs import service as orgs_service


class EmailTaken(Conflict):
    code = "email_taken"
    detail = "An account with this email already exists"


class WeakPassword(Unprocessable):
    code = "weak_password"


class TokenReplayed(InvalidToken):
    # The family is revoked before refusing, and that revocation must stay.
    keeps_changes = True


@dataclass(frozen=True, slots=True)
class AuthContext:
    session: AsyncSession
    settings: Settings
    passwords: Passwords

    @property
    def users(self) -> UserRepository:
        return UserRepository(self.session)

    @property
    def tokens(self) -> RefreshTokenRepository:
        return RefreshTokenRepository(self.session)


async def create_user(ctx: AuthContext, data: UserCreate, *, is_admin: bool = False) -> User:
    email = data.email.lower()
    if reason := weakness(data.password, email):
        raise WeakPassword(reason)
    if await ctx.users.get_by_email(email) is not None:
        raise EmailTaken()
    user = await ctx.users.add(
        User(
            email=email,
            name=data.name.strip(),
            password_hash=await ctx.passwords.hash(data.password),
            is_admin=is_admin,
        )
    )
    await orgs_service.create_personal_organization(ctx.session, user)
    return user


async def authenticate(ctx: AuthContext, email: str, password: str) -> User:
    user = await ctx.users.get_by_email(email)
    # Verify even for an unknown email, so that timing does not tell which emails exist.
    valid = await ctx.passwords.verify(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials()
    return user


async def issue_tokens(
    ctx: AuthContext, user: User, family_id: uuid.UUID | None = None
) -> TokenPair:
    now = utcnow()
    family_id = family_id or uuid.uuid4()
    refresh_token = new_secret()
    await ctx.tokens.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_secret(refresh_token),
            created_at=now,
            expires_at=now + timedelta(days=ctx.settings.refresh_token_days),
        )
    )
    access_token = create_access_token(ctx.settings, AccessClaims(user.id, family_id), now)
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=ctx.settings.access_token_minutes * 60,
    )


async def refresh(ctx: AuthContext, refresh_token: str) -> TokenPair:
    now = utcnow()
    stored = await ctx.tokens.get_by_hash(hash_secret(refresh_token))
    if stored is None or stored.expires_at <= now:
        raise InvalidToken()
    if stored.revoked_at is not None or not await ctx.tokens.claim(stored.id, now):
        # A rotated token came back: someone holds a copy, so end the whole login session.
        await ctx.tokens.revoke_family(stored.family_id, now)
        raise TokenReplayed()
    user = await ctx.users.get(stored.user_id)
    if user is None or not user.is_active:
        raise InvalidToken()
    return await issue_tokens(ctx, user, stored.family_id)


async def logout(ctx: AuthContext, refresh_token: str) -> None:
    stored = await ctx.tokens.get_by_hash(hash_secret(refresh_token))
    if stored is None:
        raise InvalidToken()
    await ctx.tokens.revoke_family(stored.family_id, utcnow())
