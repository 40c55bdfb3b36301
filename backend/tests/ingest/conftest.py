from fastapi import FastAPI
from sqlalchemy import func, select

from pulseboard.models import Event, EventRollup, MetricPoint
from tests.factories import read_session


async def count_rows(app: FastAPI, model: type[Event] | type[MetricPoint] = Event) -> int:
    async with read_session(app) as session:
        return (await session.scalar(select(func.count()).select_from(model))) or 0


async def rollup_count(
    app: FastAPI,
    granularity: int = 86400,
    event: str = "pageview",
    dimension: str = "",
    value: str = "",
) -> int:
    async with read_session(app) as session:
        total = await session.scalar(
            select(func.sum(EventRollup.count)).where(
                EventRollup.granularity == granularity,
                EventRollup.event_name == event,
                EventRollup.dimension == dimension,
                EventRollup.value == value,
            )
        )
        return int(total or 0)
