"""Ranges, comparison windows and buckets in the project's timezone, DST changes included."""

from datetime import UTC, datetime, timedelta

import pytest

from pulseboard.analytics.planner import cover
from pulseboard.analytics.timerange import (
    DAY,
    HOUR,
    MINUTE,
    Compare,
    Interval,
    InvalidQuery,
    Preset,
    TimeRange,
    auto_interval,
    buckets,
    comparison,
    resolve,
    zone,
)

BERLIN = "Europe/Berlin"
# Sunday 2026-10-25 03:00 CEST → 02:00 CET: that local day has 25 hours.
AFTER_AUTUMN_CHANGE = datetime(2026, 10, 27, 9, 30, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_presets_end_at_the_end_of_the_bucket_that_holds_now() -> None:
    now = utc(2026, 11, 23, 10, 17, 42)
    assert resolve(Preset.LAST_1H, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 23, 9, 18), utc(2026, 11, 23, 10, 18), "UTC"
    )
    assert resolve(Preset.LAST_24H, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 22, 11), utc(2026, 11, 23, 11), "UTC"
    )
    assert resolve(Preset.TODAY, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 23), utc(2026, 11, 24), "UTC"
    )
    assert resolve(Preset.YESTERDAY, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 22), utc(2026, 11, 23), "UTC"
    )
    assert resolve(Preset.LAST_7D, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 17), utc(2026, 11, 24), "UTC"
    )
    assert resolve(Preset.LAST_30D, None, None, "UTC", now).start == utc(2026, 10, 25)
    assert resolve(Preset.THIS_MONTH, None, None, "UTC", now) == TimeRange(
        utc(2026, 11, 1), utc(2026, 12, 1), "UTC"
    )


def test_days_follow_the_projects_timezone() -> None:
    # 23:30 UTC on the 22nd is already the 23rd in Berlin.
    now = utc(2026, 11, 22, 23, 30)
    today = resolve(Preset.TODAY, None, None, BERLIN, now)
    assert today.start == utc(2026, 11, 22, 23)
    assert today.end == utc(2026, 11, 23, 23)
    # Kolkata is 5:30 ahead: its midnights are on the half hour.
    kolkata = resolve(Preset.TODAY, None, None, "Asia/Kolkata", now)
    assert kolkata.start == utc(2026, 11, 22, 18, 30)


def test_a_local_day_across_the_autumn_change_has_25_hours() -> None:
    range_ = resolve(
        None, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), BERLIN, AFTER_AUTUMN_CHANGE
    )
    assert range_.local_days() == 1
    assert range_.seconds == 25 * HOUR
    days = buckets(range_, Interval.DAY)
    assert days == [(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))]


def test_previous_period_of_local_days_across_dst_is_the_same_number_of_local_days() -> None:
    # Monday 26 Oct to Tuesday 27 Oct (CET); the period before is Saturday 24 + Sunday 25 (CEST
    # then CET): 49 hours, not 48.
    current = TimeRange(utc(2026, 10, 25, 23), utc(2026, 10, 27, 23), BERLIN)
    previous = comparison(current, Compare.PREVIOUS_PERIOD)
    assert previous == TimeRange(utc(2026, 10, 23, 22), utc(2026, 10, 25, 23), BERLIN)
    assert previous.seconds == 49 * HOUR


def test_same_weekday_last_week_keeps_local_wall_clock_across_dst() -> None:
    # Tuesday 27 Oct 09:00-10:00 CET; a week before, 20 Oct 09:00-10:00 was CEST (UTC+2).
    current = TimeRange(utc(2026, 10, 27, 8), utc(2026, 10, 27, 9), BERLIN)
    before = comparison(current, Compare.SAME_WEEKDAY_LAST_WEEK)
    assert before == TimeRange(utc(2026, 10, 20, 7), utc(2026, 10, 20, 8), BERLIN)


def test_previous_year_keeps_the_local_dates() -> None:
    current = TimeRange(utc(2026, 7, 31, 22), utc(2026, 8, 31, 22), BERLIN)
    assert comparison(current, Compare.PREVIOUS_YEAR) == TimeRange(
        utc(2025, 7, 31, 22), utc(2025, 8, 31, 22), BERLIN
    )
    leap = TimeRange(utc(2028, 2, 29), utc(2028, 3, 1), "UTC")
    assert comparison(leap, Compare.PREVIOUS_YEAR).start == utc(2027, 2, 28)


def test_previous_period_of_hours_is_the_same_length_before() -> None:
    current = TimeRange(utc(2026, 11, 23, 9, 18), utc(2026, 11, 23, 10, 18), "UTC")
    assert comparison(current, Compare.PREVIOUS_PERIOD) == TimeRange(
        utc(2026, 11, 23, 8, 18), utc(2026, 11, 23, 9, 18), "UTC"
    )


def test_weeks_start_on_local_monday_and_months_on_the_first() -> None:
    range_ = TimeRange(utc(2026, 10, 31, 23), utc(2026, 11, 30, 23), BERLIN)
    weeks = buckets(range_, Interval.WEEK)
    assert weeks[0] == (utc(2026, 10, 31, 23), utc(2026, 11, 1, 23))  # clipped: Sunday only
    assert weeks[1] == (utc(2026, 11, 1, 23), utc(2026, 11, 8, 23))
    months = buckets(TimeRange(utc(2026, 1, 1), utc(2026, 4, 1), "UTC"), Interval.MONTH)
    assert [start.month for start, _ in months] == [1, 2, 3]


def test_interval_names_and_refusals() -> None:
    assert Interval.parse("1h") is Interval.HOUR
    assert Interval.parse("5m") is Interval.FIVE_MINUTES
    assert Interval.parse("auto") is None
    with pytest.raises(InvalidQuery, match="Unknown interval 'fortnight'"):
        Interval.parse("fortnight")
    ten_years = TimeRange(utc(2016, 1, 1), utc(2026, 1, 1), "UTC")
    with pytest.raises(InvalidQuery, match="more than 10,000 points"):
        buckets(ten_years, Interval.MINUTE)
    assert auto_interval(ten_years) is Interval.MONTH
    assert auto_interval(TimeRange(utc(2026, 1, 1), utc(2026, 1, 2), "UTC")) is Interval.HOUR


def test_absolute_ranges_need_an_offset_and_an_order() -> None:
    now = utc(2026, 11, 23)
    with pytest.raises(InvalidQuery, match="timezone offset"):
        resolve(None, datetime(2026, 11, 1), None, "UTC", now)
    with pytest.raises(InvalidQuery, match="after"):
        resolve(None, now, now - timedelta(hours=1), "UTC", now)
    with pytest.raises(InvalidQuery, match="either"):
        resolve(Preset.TODAY, now, None, "UTC", now)


def test_cover_tiles_a_range_with_days_hours_and_minutes() -> None:
    tz = zone(BERLIN)
    start, end = utc(2026, 11, 20, 21, 50), utc(2026, 11, 23, 10, 5)
    spans = cover(start, end, tz)
    assert spans == [
        (DAY, utc(2026, 11, 20, 23), utc(2026, 11, 22, 23)),
        (HOUR, utc(2026, 11, 20, 22), utc(2026, 11, 20, 23)),
        (MINUTE, utc(2026, 11, 20, 21, 50), utc(2026, 11, 20, 22)),
        (HOUR, utc(2026, 11, 22, 23), utc(2026, 11, 23, 10)),
        (MINUTE, utc(2026, 11, 23, 10), utc(2026, 11, 23, 10, 5)),
    ]
    # Contiguous and without overlap: the spans add up to the range.
    assert sum((e - s for _, s, e in spans), timedelta()) == end - start
