"""Periodic upkeep beside the worker: partitions ahead of time, bus trimming, retention."""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pulseboard.core.bus import Bus
from pulseboard.core.db import create_sessionmaker
from pulseboard.core.security import utcnow
from pulseboard.core.settings import Settings
from pulseboard.pipeline.partitions import Partitions
from pulseboard.pipeline.retention import apply_retention

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
RETENTION_EVERY = timedelta(hours=1)


async def maintain(
    partitions: Partitions,
    bus: Bus,
    stopping: Callable[[], Awaitable[bool]],
    settings: Settings,
) -> None:
    """Run the upkeep once a minute until `stopping` (which waits between rounds) says so."""
    sessions = create_sessionmaker(partitions.engine)
    last_retention: datetime | None = None
    # The first round comes a minute after start: a start is busy enough (migrations, the worker
    # catching up on the bus), and the worker makes the partitions it needs meanwhile.
    while not await stopping():
        now = utcnow()
        try:
            await partitions.ensure_ahead(now.date())
            await bus.trim()
            if last_retention is None or now - last_retention >= RETENTION_EVERY:
                # Noted before the run: a failing one is tried again in an hour, not a minute.
                last_retention = now
                await apply_retention(
                    partitions.engine, sessions, partitions, now, settings=settings
                )
        except Exception:
            log.exception("maintenance round failed; trying again next round")
