"""A real `pulseboard worker` process killed (SIGKILL) in the middle of a backlog: another
worker finishes it, and every event is stored and counted exactly once."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import func, select, text

from pulseboard.core.db import create_engine, create_sessionmaker
from pulseboard.core.redis_bus import RedisStreamBus
from pulseboard.models import Base, Event, EventRollup
from tests.conftest import SECRET, make_settings
from tests.pipeline.helpers import event_item, message

PULSEBOARD = str(Path(sys.executable).with_name("pulseboard"))
PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000031")
SOURCE = uuid.UUID("00000000-0000-4000-8000-000000000032")
BATCHES, SIZE = 200, 50


def _worker(name: str, database_url: str, redis_url: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
    env.update(
        PULSEBOARD_DATABASE_URL=database_url,
        PULSEBOARD_REDIS_URL=redis_url,
        PULSEBOARD_SECRET_KEY=SECRET,
        PULSEBOARD_WORKER_CLAIM_IDLE_MS="500",
        # Transactions of 250 events, so that the kill falls in the middle of the backlog.
        PULSEBOARD_WORKER_BATCH_EVENTS=str(5 * SIZE),
    )
    return subprocess.Popen(
        [PULSEBOARD, "worker", "--name", name, "--batch-size", "5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_killed_worker_process_loses_and_doubles_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    stream_url = redis_url.rsplit("/", 1)[0] + "/12"
    redis = Redis.from_url(stream_url)
    await redis.flushdb()
    engine = create_engine(make_settings(tmp_path, postgres_url))
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    bus = RedisStreamBus(redis)
    now = datetime.now(UTC)
    for b in range(BATCHES):
        items = [event_item(now, user=f"u{b}-{i}") for i in range(SIZE)]
        await bus.publish(message(PROJECT, SOURCE, items))

    async def counts() -> tuple[int, int]:
        async with create_sessionmaker(engine)() as session:
            raw = await session.scalar(select(func.count()).select_from(Event)) or 0
            rolled = await session.scalar(
                select(func.sum(EventRollup.count)).where(
                    EventRollup.granularity == 86400, EventRollup.dimension == ""
                )
            )
        return raw, int(rolled or 0)

    first = _worker("first", postgres_url, stream_url)
    second: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(600):
            if (await counts())[0] > 0:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # no clean-up, no ack of the batches in hand
        first.wait(timeout=10)
        assert (await counts())[0] < BATCHES * SIZE, "the first worker finished before the kill"

        second = _worker("second", postgres_url, stream_url)
        for _ in range(600):
            if (await counts())[0] == BATCHES * SIZE and (await bus.backlog())[1] == 0:
                break
            await asyncio.sleep(0.1)
        assert await counts() == (BATCHES * SIZE, BATCHES * SIZE)
        assert (await bus.backlog())[1] == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
        await redis.flushdb()
        await redis.aclose()
        await engine.dispose()
