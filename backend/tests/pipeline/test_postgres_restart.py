"""PostgreSQL restarted in the middle of ingest: the worker waits it out, nothing is lost.

The test runs its own throwaway server (initdb on another port), never the shared one.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from glob import glob
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from pulseboard.core import migrations
from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.redis_bus import RedisStreamBus
from pulseboard.models import Event, EventRollup
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.worker import Worker
from tests.conftest import make_settings
from tests.pipeline.helpers import event_item, message

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000021")
SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000022")


def _bin(name: str) -> str:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.skip(f"{name} is not installed")
    return found[-1]


class ThrowawayPostgres:
    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.data, "postgres")
        self._run(
            _bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data.parent / "server.log")  # the server must not hold our pipes open
        self._run(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            log,
            "-o",
            options,
            "-m",
            "fast",
            "-w",
            action,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    # Straight under /tmp: the postgres user cannot enter pytest's private (0700) directories.
    root = Path(tempfile.mkdtemp(prefix="pulseboard-pg-"))
    server = ThrowawayPostgres(root)
    try:
        server.init()
        server.pg_ctl("start")
        try:
            migrations.upgrade(make_settings(Path("/nonexistent"), server.url))
            yield server
        finally:
            server.pg_ctl("stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_restarted_during_ingest_loses_nothing(
    postgres: ThrowawayPostgres, redis_url: str
) -> None:
    settings = make_settings(Path("/nonexistent"), postgres.url)
    engine = create_engine(settings)
    redis = Redis.from_url(redis_url)
    bus = RedisStreamBus(redis, stream=f"test:restart:{uuid.uuid4().hex}")
    worker = Worker(
        bus,
        create_sessionmaker(engine),
        name="w1",
        batch_size=5,
        block_ms=50,
        partitions=Partitions(engine),
    )
    running = asyncio.create_task(worker.run())
    try:
        rounds, size = 60, 20
        published = rounds * size

        async def publish() -> None:
            for round_ in range(rounds):
                items = [event_item(datetime.now(UTC), user=f"u{round_}-{i}") for i in range(size)]
                await bus.publish(message(PROJECT, SOURCE, items))
                await asyncio.sleep(0.03)

        async def restart() -> None:
            await asyncio.sleep(0.3)
            # Under the worker's feet, while batches keep arriving.
            await asyncio.to_thread(postgres.pg_ctl, "restart")

        await asyncio.gather(publish(), restart())

        async def stored() -> int:
            async with create_sessionmaker(engine)() as session:
                return await session.scalar(select(func.count()).select_from(Event)) or 0

        for _ in range(300):
            try:
                if await stored() == published:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        assert await stored() == published
        async with create_sessionmaker(engine)() as session:
            rolled = await session.scalar(
                select(func.sum(EventRollup.count)).where(
                    EventRollup.granularity == 86400, EventRollup.dimension == ""
                )
            )
        assert rolled == published
        assert worker.stats.retries >= 1
        assert (await bus.backlog())[1] == 0
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        await redis.delete(bus.stream)
        await redis.aclose()
        await engine.dispose()
