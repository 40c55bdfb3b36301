"""The SQLite worker's own conversions store exactly what the column types would."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from pulseboard.models import Event
from pulseboard.pipeline.repository import (
    _utc_from_text,
    _utc_text,
    _uuid_from_hex,
    _uuid_hex,
)

DIALECT = sqlite.dialect()
TIMESTAMP = Event.__table__.c.timestamp.type.dialect_impl(DIALECT)
ID = Event.__table__.c.id.type.dialect_impl(DIALECT)


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
def test_datetimes_are_stored_and_read_as_utc_datetime_does(moment: datetime | None) -> None:
    stored = TIMESTAMP.bind_processor(DIALECT)(moment)
    assert _utc_text(moment) == stored
    assert _utc_from_text(stored) == TIMESTAMP.result_processor(DIALECT, None)(stored)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        _utc_text(datetime(2026, 11, 23, 14, 0))


@pytest.mark.parametrize("value", [uuid.uuid4(), None])
def test_uuids_are_stored_and_read_as_uuid_does(value: uuid.UUID | None) -> None:
    stored = ID.bind_processor(DIALECT)(value)
    assert _uuid_hex(value) == stored
    assert _uuid_from_hex(stored) == ID.result_processor(DIALECT, None)(stored)
