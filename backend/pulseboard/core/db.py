"""Database engine and sessions: one SQLAlchemy code path for SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from pulseboard.core.errors import PulseboardError, Unprocessable
from pulseboard.core.settings import Settings


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    # JSON columns go through orjson, like every other JSON the app reads and writes.
    common: dict[str, Any] = {
        "echo": settings.database_echo,
        "json_serializer": _json,
        "json_deserializer": orjson.loads,
    }
    if url.get_backend_name() != "sqlite":
        engine = create_async_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=True, **common
        )
        event.listen(engine.sync_engine, "handle_error", _refused_value)
        return engine
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **common)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


# Values PostgreSQL refuses, by SQLSTATE: what the caller sent, never a fault of the server.
# Requests are checked before they get here (NUL characters, dates, numbers); this is the net.
REFUSED_VALUES = {
    "22021": "A value holds a NUL character or bytes that are not UTF-8, which cannot be stored",
    "22P05": "A JSON value holds a NUL character (\\u0000), which cannot be stored",
    "22001": "A value is longer than its field holds",
    "22003": "A number is out of range: past what a double holds, such as a sum of huge values",
    "22008": "A date or time is out of range",
}


class ValueRefused(Unprocessable):
    code = "value_refused"


def _refused_value(context: ExceptionContext) -> BaseException | None:
    """Raise a value the database refused as a 422 instead of a 500 (the transaction is rolled
    back, so nothing of the request is stored)."""
    reason = REFUSED_VALUES.get(getattr(context.original_exception, "sqlstate", None) or "")
    return ValueRefused(reason) if reason else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # The default page cache (2 MB) made the worker's inserts read index pages back from the OS
    # again and again, and the default checkpoint (every 1,000 pages of WAL, with an fsync) ran
    # every few commits, inside the writer's commit. Embedded ingest: +5 to +14 % (three A/B
    # pairs); 16 MB did as well as 64 MB.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that commits when the caller finishes cleanly and rolls back otherwise."""
    async with factory() as session:
        try:
            yield session
        except PulseboardError as exc:
            # Some refusals must still be recorded, such as revoking a replayed token's family.
            await (session.commit() if exc.keeps_changes else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
