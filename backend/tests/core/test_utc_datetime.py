"""UTCDateTime's own SQLite conversions store and read exactly the text SQLAlchemy's DATETIME
would for the naive UTC value, so rows written before and after compare alike."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from pulseboard.models import Event

DIALECT = sqlite.dialect()
TIMESTAMP = Event.__table__.c.timestamp.type.dialect_impl(DIALECT)
GENERIC = DateTime().dialect_impl(DIALECT)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 14, 0, 5, 123, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 3, 29, 1, 30, 59, 999_999, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("America/New_York")),
        None,
    ],
)
def test_datetimes_are_stored_and_read_as_sqlalchemy_stores_naive_utc(
    moment: datetime | None,
) -> None:
    naive = None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
    stored = GENERIC.bind_processor(DIALECT)(naive)
    assert TIMESTAMP.bind_processor(DIALECT)(moment) == stored
    read = GENERIC.result_processor(DIALECT, None)(stored)
    expected = None if read is None else read.replace(tzinfo=UTC)
    assert TIMESTAMP.result_processor(DIALECT, None)(stored) == expected


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        TIMESTAMP.bind_processor(DIALECT)(datetime(2026, 11, 23, 14, 0))
