"""Alembic environment: async engines, the models' metadata, batch mode so SQLite can alter."""

import asyncio

from sqlalchemy.engine import Connection

from alembic import context
from pulseboard.core.db import create_engine
from pulseboard.core.migrations import include_name
from pulseboard.core.settings import Settings
from pulseboard.models import Base

config = context.config


def _settings() -> Settings:
    url = config.get_main_option("sqlalchemy.url")
    return Settings(database_url=url) if url else Settings()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=_settings().database_url, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online())


run()
