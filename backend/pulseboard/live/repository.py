"""The rollup rows a live snapshot starts from."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, select

from pulseboard.core.repository import Repository
from pulseboard.models import EventRollup

MINUTE = 60


class LiveRepository(Repository[EventRollup]):
    model = EventRollup

    async def minute_totals(
        self, project_id: uuid.UUID, bucket: datetime
    ) -> Sequence[Row[str, int, bytes, bytes]]:
        """Each event name's totals for one minute: count, users and sessions sketches."""
        statement = select(
            EventRollup.event_name, EventRollup.count, EventRollup.users, EventRollup.sessions
        ).where(
            EventRollup.project_id == project_id,
            EventRollup.granularity == MINUTE,
            EventRollup.bucket == bucket,
            EventRollup.dimension == "",
        )
        return (await self.session.execute(statement)).all()
