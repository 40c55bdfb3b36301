"""Fixtures: every storage test runs on SQLite and on PostgreSQL, against the real app."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from pulseboard.core import migrations
from pulseboard.core.db import create_engine
from pulseboard.core.settings import Environment, Settings, normalise_database_url
from pulseboard.main import create_app
from pulseboard.models import Base
from tests.factories import Actor, create_actor, create_project

POSTGRES_URL = os.environ.get("PULSEBOARD_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("PULSEBOARD_TEST_REDIS_URL", "")
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def _require(variable: str, what: str) -> None:
    message = f"{variable} is not set: the {what} cases are skipped"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, which CI does not allow")
    pytest.skip(message)


def make_settings(data_dir: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": Environment.TEST,
        "data_dir": data_dir,
        "database_url": database_url,
        "secret_key": SECRET,
        "redis_url": None,
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy of it."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    migrations.upgrade(make_settings(data_dir))
    return data_dir / "pulseboard.db"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL database, emptied and migrated once per run."""
    if not POSTGRES_URL:
        _require("PULSEBOARD_TEST_DATABASE_URL", "PostgreSQL")
    url = normalise_database_url(POSTGRES_URL)
    settings = make_settings(Path("/nonexistent"), url)

    async def reset() -> None:
        engine = create_engine(settings)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    migrations.upgrade(settings)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, tmp_path / "pulseboard.db")
        yield make_settings(tmp_path)
    else:
        yield make_settings(tmp_path, request.getfixturevalue("postgres_url"))


async def _empty_postgres(app: FastAPI) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with app.state.pulseboard.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        if not settings.is_sqlite:
            # Tests commit for real (a 2xx means stored), so each starts from empty tables.
            await _empty_postgres(application)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        _require("PULSEBOARD_TEST_REDIS_URL", "Redis")
    return REDIS_URL


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Actor:
    """A registered user who owns their personal organization."""
    return await create_actor(client, "owner")


@pytest.fixture
async def project(client: httpx.AsyncClient, owner: Actor) -> dict[str, Any]:
    """A project of the owner's, with its write key."""
    return await create_project(client, owner, name="Shop")
