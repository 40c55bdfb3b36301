"""Periodic upkeep beside the worker: partitions ahead of time, bus trimming."""

import logging
from collections.abc import Awaitable, Callable

from pulseboard.core.bus import Bus
from pulseboard.core.security import utcnow
from pulseboard.pipeline.partitions import Partitions

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0


async def maintain(
    partitions: Partitions,
    bus: Bus,
    stopping: Callable[[], Awaitable[bool]],
) -> None:
    """Run the upkeep once a minute until `stopping` (which waits between rounds) says so."""
    while True:
        try:
            await partitions.ensure_ahead(utcnow().date())
            trim = getattr(bus, "trim", None)
            if trim is not None:
                await trim()
        except Exception:
            log.exception("maintenance round failed; trying again next round")
        if await stopping():
            return
