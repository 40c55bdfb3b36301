import sqlite3
from contextlib import closing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from alembic import command
from pulseboard.core.db import create_engine
from pulseboard.core.migrations import alembic_config, include_name
from pulseboard.core.settings import Settings
from pulseboard.models import Base
from tests.conftest import make_settings


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
