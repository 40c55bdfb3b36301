import asyncio
import hashlib
import random
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.migrations import alembic_config, include_name
from pulseboard.core.settings import Settings
from pulseboard.models import Base, EventRollup
from pulseboard.pipeline import sketches
from pulseboard.pipeline.messages import Batch
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.rollups import ALL_EVENTS
from pulseboard.pipeline.store import store_batches
from tests.conftest import make_settings
from tests.pipeline.helpers import batch, event_item


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(settings: Settings) -> None:
    """The migrated schema on each engine is exactly what the models declare."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_sqlite_downgrades_to_base_and_back(tmp_path: Path) -> None:
    config = alembic_config(make_settings(tmp_path))
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert _sqlite_tables(tmp_path / "pulseboard.db") == ["alembic_version"]
    command.upgrade(config, "head")
    assert set(_sqlite_tables(tmp_path / "pulseboard.db")) == {
        "alembic_version",
        *Base.metadata.tables,
    }


def _sqlite_tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(name for (name,) in rows)


def test_all_events_rollups_are_backfilled_as_the_worker_writes_them(tmp_path: Path) -> None:
    """Migration e5b8c1d7f924 makes, from the rows per event name, the rows the worker now
    writes for every event name together: the same counts, the same unique counts."""
    settings = make_settings(tmp_path)
    config = alembic_config(settings)
    command.upgrade(config, "head")
    rng = random.Random(5)
    start = datetime.now(UTC) - timedelta(hours=30)
    items = [
        event_item(
            start + timedelta(seconds=rng.randrange(30 * 3600)),
            name=rng.choice(["pageview", "click", "signup"]),
            user=f"u{rng.randrange(400)}",
            session=f"s{rng.randrange(600)}",
            path=rng.choice(["/", "/docs", "/pricing"]),
            browser=rng.choice(["Firefox", "Chrome"]),
        )
        for _ in range(2000)
    ]
    project, source = uuid.uuid4(), uuid.uuid4()
    asyncio.run(_store(settings, batch(project, source, items)))
    written = asyncio.run(_all_events_rows(settings))
    assert {key[3] for key in written} == {"*path", "*browser", "*os", "*device"}

    command.downgrade(config, "d4a9b2c6e813")
    assert asyncio.run(_all_events_rows(settings)) == {}
    command.upgrade(config, "head")
    backfilled = asyncio.run(_all_events_rows(settings))
    assert backfilled.keys() == written.keys()
    for key, (count, users, sessions) in written.items():
        assert backfilled[key][0] == count, key
        for made, merged in zip((users, sessions), backfilled[key][1:], strict=True):
            assert abs(made - merged) <= max(1.0, 0.02 * made), key


async def _store(settings: Settings, *batches: Batch) -> None:
    engine = create_engine(settings)
    try:
        await store_batches(create_sessionmaker(engine), Partitions(engine), list(batches))
    finally:
        await engine.dispose()


async def _all_events_rows(settings: Settings) -> dict[tuple[Any, ...], tuple[int, float, float]]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = (
                await session.execute(
                    select(EventRollup).where(EventRollup.dimension.like(f"{ALL_EVENTS}%"))
                )
            ).scalars()
            return {
                (r.granularity, r.bucket, r.event_name, r.dimension, r.value): (
                    r.count,
                    sketches.hll_estimate(r.users),
                    sketches.hll_estimate(r.sessions),
                )
                for r in rows
            }
    finally:
        await engine.dispose()


def test_postgres_events_are_made_again_in_their_new_column_order(
    postgres_url: str, tmp_path: Path
) -> None:
    """Migration a7c3e9f1d284 rebuilds events column by column, partitions and rows intact,
    and its downgrade puts the old order back."""
    url = asyncio.run(_fresh_database(postgres_url, "pulseboard_test_column_order"))
    settings = make_settings(tmp_path, url)
    config = alembic_config(settings)
    command.upgrade(config, "f6a2d9c4b157")
    start = datetime.now(UTC) - timedelta(days=2)
    items = [
        event_item(start + timedelta(hours=7 * i), user=f"u{i}", referrer_domain="a.example")
        for i in range(8)
    ]
    project, source = uuid.uuid4(), uuid.uuid4()
    asyncio.run(_store(settings, batch(project, source, items)))
    stored = asyncio.run(_events_table(settings))
    assert len(stored.rows) == 8
    assert len(stored.partitions) >= 3

    command.upgrade(config, "head")
    after = asyncio.run(_events_table(settings))
    assert after.columns == [column.name for column in Base.metadata.tables["events"].columns]
    assert after.columns.index("is_bot") < after.columns.index("event_name")
    assert after.rows == stored.rows
    assert after.partitions == stored.partitions
    assert after.indexes == stored.indexes  # the same names, none left with "_new"
    later = event_item(datetime.now(UTC) + timedelta(days=2), user="later")
    asyncio.run(_store(settings, batch(project, source, [later])))
    assert len(asyncio.run(_events_table(settings)).rows) == 9

    command.downgrade(config, "f6a2d9c4b157")
    before = asyncio.run(_events_table(settings))
    assert before.columns == stored.columns
    assert len(before.rows) == 9


@dataclass
class _EventsTable:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    partitions: list[str]
    indexes: list[str]


async def _fresh_database(url: str, name: str) -> str:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            await connection.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


async def _events_table(settings: Settings) -> _EventsTable:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            columns = (
                await connection.execute(
                    text(
                        "SELECT attname FROM pg_attribute WHERE attrelid = 'events'::regclass "
                        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                    )
                )
            ).scalars()
            names = list(columns)
            # Compared by name: the same values whatever the order of the columns.
            listed = ", ".join(f'"{name}"' for name in sorted(names))
            rows = await connection.execute(text(f"SELECT {listed} FROM events ORDER BY id"))
            partitions = await connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'events'::regclass ORDER BY 1"
                )
            )
            partition_names = list(partitions.scalars())
            indexes = await connection.execute(
                text(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_class t ON t.oid = i.indrelid "
                    "WHERE t.relname = 'events' OR t.relname LIKE 'events\\_p%' ORDER BY 1"
                )
            )
            return _EventsTable(
                names, [tuple(row) for row in rows], partition_names, list(indexes.scalars())
            )
    finally:
        await engine.dispose()


HEX = hashlib.sha256(b"salt\0project\0203.0.113.7").hexdigest()


def test_sqlite_ip_hashes_become_bytes_and_hex_again(tmp_path: Path) -> None:
    """Migration c4e8a1f7d362 stores each ip_hash as its 32 bytes; its downgrade as hex."""
    config = alembic_config(make_settings(tmp_path))
    command.upgrade(config, "e2b7c4d9a615")
    database = tmp_path / "pulseboard.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.executemany(
            "INSERT INTO events (project_id, timestamp, id, source_id, received_at, is_bot, "
            "event_name, properties, distinct_id, ip_hash) "
            "VALUES (?, '2026-12-06 10:00:00.000000', ?, ?, '2026-12-06 10:00:00.000000', 0, "
            "'pageview', '{}', 'u', ?)",
            [(uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex, h) for h in (HEX, None)],
        )

    def stored() -> list[Any]:
        with closing(sqlite3.connect(database)) as connection:
            rows = connection.execute("SELECT ip_hash FROM events ORDER BY ip_hash IS NULL")
            return [row[0] for row in rows]

    command.upgrade(config, "c4e8a1f7d362")
    assert stored() == [bytes.fromhex(HEX), None]
    command.downgrade(config, "e2b7c4d9a615")
    assert stored() == [HEX, None]


def test_postgres_ip_hashes_become_bytes_and_hex_again(postgres_url: str, tmp_path: Path) -> None:
    url = asyncio.run(_fresh_database(postgres_url, "pulseboard_test_ip_hash"))
    config = alembic_config(make_settings(tmp_path, url))
    command.upgrade(config, "e2b7c4d9a615")

    async def run(*statements: str) -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = None
                for statement in statements:
                    result = await connection.execute(text(statement))
                return list(result.scalars()) if result is not None and result.returns_rows else []
        finally:
            await engine.dispose()

    asyncio.run(
        run(
            "CREATE TABLE events_p20261206 PARTITION OF events "
            "FOR VALUES FROM ('2026-12-06 00:00+00') TO ('2026-12-07 00:00+00')",
            "INSERT INTO events (project_id, timestamp, id, source_id, received_at, is_bot, "
            "event_name, properties, distinct_id, ip_hash) "
            f"SELECT gen_random_uuid(), '2026-12-06 10:00+00', gen_random_uuid(), "
            f"gen_random_uuid(), now(), false, 'pageview', '{{}}', 'u', h "
            f"FROM (VALUES ('{HEX}'), (NULL)) AS given (h)",
        )
    )
    query = "SELECT ip_hash FROM events ORDER BY ip_hash IS NULL"
    command.upgrade(config, "c4e8a1f7d362")
    assert asyncio.run(run(query)) == [bytes.fromhex(HEX), None]
    command.downgrade(config, "e2b7c4d9a615")
    assert asyncio.run(run(query)) == [HEX, None]
