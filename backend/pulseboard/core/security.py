"""Password hashes, access tokens, and the opaque secrets behind refresh tokens and write keys."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pulseboard.core.errors import InvalidToken
from pulseboard.core.settings import Environment, Settings

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "pulseboard"
WRITE_KEY_PREFIX = "pb_"
WRITE_KEY_VISIBLE_CHARS = 12


def make_password_hasher(settings: Settings) -> PasswordHasher:
    if settings.environment is Environment.TEST:
        # Hashing cost is not under test; the full-strength parameters would make the suite slow.
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


class Passwords:
    """Argon2 hashing, run in a worker thread so that it never blocks the event loop."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        # Verifying against this when the email is unknown keeps both failures equally slow.
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await to_thread.run_sync(check) and password_hash is not None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


def create_access_token(settings: Settings, claims: AccessClaims, now: datetime) -> str:
    payload = {
        "iss": JWT_ISSUER,
        "typ": "access",
        "sub": str(claims.user_id),
        "sid": str(claims.session_id),
        "iat": now,
        "exp": now + timedelta(minutes=settings.access_token_minutes),
    }
    return jwt.encode(payload, settings.secret_key, algorithm=JWT_ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "typ"]},
        )
        if payload["typ"] != "access":
            raise InvalidToken()
        return AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken() from exc


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """SHA-256 is right for high-entropy random secrets: they need no slow hash, only an index."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_write_key() -> str:
    return WRITE_KEY_PREFIX + secrets.token_urlsafe(24)


def write_key_prefix(key: str) -> str:
    return key[:WRITE_KEY_VISIBLE_CHARS]


def utcnow() -> datetime:
    return datetime.now(UTC)
