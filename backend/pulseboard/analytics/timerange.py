"""Time ranges, comparison windows and intervals, in the project's timezone.

Presets end at the end of the bucket that holds "now" (`today` ends at the next local midnight,
`last_24h` at the end of this hour), so that every preset is aligned to rollup buckets and the
rollup and raw paths count the same rows. Day boundaries, weeks (from Monday) and months follow
the project's timezone, across DST changes: a local day may be 23 or 25 hours long.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pulseboard.core.errors import Unprocessable

MINUTE, HOUR, DAY = 60, 3600, 86400
# A timeseries longer than this many points is refused (a year at minute interval, say).
MAX_POINTS = 10_000
# Ranges stay within these bounds: older data is not kept, later data cannot be ingested.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=366)
MAX_RANGE = timedelta(days=3660)


class InvalidQuery(Unprocessable):
    code = "invalid_query"
    detail = "The query is not valid"


class Preset(StrEnum):
    LAST_1H = "last_1h"
    LAST_24H = "last_24h"
    LAST_7D = "last_7d"
    LAST_30D = "last_30d"
    TODAY = "today"
    YESTERDAY = "yesterday"
    THIS_MONTH = "this_month"


class Compare(StrEnum):
    PREVIOUS_PERIOD = "previous_period"
    PREVIOUS_YEAR = "previous_year"
    SAME_WEEKDAY_LAST_WEEK = "same_weekday_last_week"


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[start, end) in UTC, with the timezone that gives it its days."""

    start: datetime
    end: datetime
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def is_aligned(self, seconds: int) -> bool:
        """True when both ends fall on boundaries `seconds` apart (local midnights for days)."""
        if seconds == DAY:
            return is_local_midnight(self.start, self.zone) and is_local_midnight(
                self.end, self.zone
            )
        return _epoch(self.start) % seconds == 0 and _epoch(self.end) % seconds == 0

    def local_days(self) -> int | None:
        """How many local days the range spans, when it starts and ends at local midnight."""
        if not self.is_aligned(DAY):
            return None
        return (local_date(self.end, self.zone) - local_date(self.start, self.zone)).days


def _epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS_PER_SECOND = 1_000_000


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (a float of seconds is not, at today's dates)."""
    return (moment - UNIX_EPOCH) // timedelta(microseconds=1)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def is_local_midnight(moment: datetime, tz: ZoneInfo) -> bool:
    return local_midnight(local_date(moment, tz), tz) == moment


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = _epoch(moment)
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def resolve(
    preset: Preset | None,
    start: datetime | None,
    end: datetime | None,
    timezone: str,
    now: datetime,
) -> TimeRange:
    """The range a request names: a preset, or absolute `from`/`to` (`to` defaults to now)."""
    if preset is not None and (start is not None or end is not None):
        raise InvalidQuery("Give either range or from/to, not both")
    tz = zone(timezone)
    if preset is None:
        if start is None:
            preset = Preset.LAST_7D
        else:
            end = end or now
            start, end = _utc(start, "from"), _utc(end, "to")
            if end <= start:
                raise InvalidQuery("`to` must be after `from`")
            if start < EARLIEST or end > now + MAX_AHEAD or end - start > MAX_RANGE:
                raise InvalidQuery(
                    f"A range runs from {EARLIEST.date()} at the earliest, to a year from now at "
                    f"the latest, and spans at most {MAX_RANGE.days} days"
                )
            return TimeRange(start, end, timezone)
    today = local_date(now, tz)
    match preset:
        case Preset.LAST_1H:
            end = _floor(now, MINUTE) + timedelta(minutes=1)
            return TimeRange(end - timedelta(hours=1), end, timezone)
        case Preset.LAST_24H:
            end = _floor(now, HOUR) + timedelta(hours=1)
            return TimeRange(end - timedelta(hours=24), end, timezone)
        case Preset.TODAY:
            return _days(today, today + timedelta(days=1), timezone)
        case Preset.YESTERDAY:
            return _days(today - timedelta(days=1), today, timezone)
        case Preset.LAST_7D:
            return _days(today - timedelta(days=6), today + timedelta(days=1), timezone)
        case Preset.LAST_30D:
            return _days(today - timedelta(days=29), today + timedelta(days=1), timezone)
        case Preset.THIS_MONTH:
            return _days(today.replace(day=1), _next_month(today.replace(day=1)), timezone)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidQuery(f"`{name}` needs a timezone offset (ISO 8601, such as Z)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # Year 1 at +01:00 (or 9999-12-31 at -01:00) is valid ISO 8601 but has no UTC datetime.
        raise InvalidQuery(f"`{name}` is out of range") from None


def _days(first: date, stop: date, timezone: str) -> TimeRange:
    tz = zone(timezone)
    return TimeRange(local_midnight(first, tz), local_midnight(stop, tz), timezone)


def _next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _shift_wall(moment: datetime, tz: ZoneInfo, *, days: int = 0, years: int = 0) -> datetime:
    """The same local wall-clock time `days` or `years` away (Feb 29 becomes Feb 28)."""
    local = moment.astimezone(tz).replace(tzinfo=None)
    if years:
        try:
            local = local.replace(year=local.year + years)
        except ValueError:
            local = local.replace(year=local.year + years, day=28)
    local += timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(UTC)


def comparison(current: TimeRange, compare: Compare) -> TimeRange:
    """The window a range is compared with, counted in local days when it is made of days."""
    tz = current.zone
    match compare:
        case Compare.PREVIOUS_PERIOD:
            days = current.local_days()
            if days is None:
                length = current.end - current.start
                return TimeRange(current.start - length, current.start, current.timezone)
            start = _shift_wall(current.start, tz, days=-days)
            return TimeRange(start, current.start, current.timezone)
        case Compare.PREVIOUS_YEAR:
            return TimeRange(
                _shift_wall(current.start, tz, years=-1),
                _shift_wall(current.end, tz, years=-1),
                current.timezone,
            )
        case Compare.SAME_WEEKDAY_LAST_WEEK:
            return TimeRange(
                _shift_wall(current.start, tz, days=-7),
                _shift_wall(current.end, tz, days=-7),
                current.timezone,
            )


class Interval(StrEnum):
    MINUTE = "minute"
    FIVE_MINUTES = "5m"
    FIFTEEN_MINUTES = "15m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @classmethod
    def parse(cls, value: str) -> "Interval | None":
        """An interval by name or short form (`1m`, `1h`, `1d`, `1w`); None for `auto`."""
        name = value.strip().lower()
        if name == "auto":
            return None
        name = _ALIASES.get(name, name)
        try:
            return cls(name)
        except ValueError:
            known = ", ".join([*(i.value for i in cls), "auto"])
            raise InvalidQuery(f"Unknown interval {value!r}; use one of {known}") from None

    @property
    def fixed_seconds(self) -> int | None:
        """The width of a fixed interval; None for calendar ones (day, week, month)."""
        return _FIXED.get(self)

    @property
    def granularity(self) -> int:
        """The coarsest rollup granularity whose buckets tile this interval's buckets."""
        fixed = self.fixed_seconds
        if fixed is None:
            return DAY
        return HOUR if fixed % HOUR == 0 else MINUTE


_ALIASES = {"1m": "minute", "1h": "hour", "1d": "day", "1w": "week", "5min": "5m", "15min": "15m"}
_FIXED = {
    Interval.MINUTE: MINUTE,
    Interval.FIVE_MINUTES: 5 * MINUTE,
    Interval.FIFTEEN_MINUTES: 15 * MINUTE,
    Interval.HOUR: HOUR,
}


def auto_interval(time_range: TimeRange) -> Interval:
    seconds = time_range.seconds
    if seconds <= 3 * HOUR:
        return Interval.MINUTE
    if seconds <= 3 * DAY:
        return Interval.HOUR
    if seconds <= 120 * DAY:
        return Interval.DAY
    if seconds <= 3 * 366 * DAY:
        return Interval.WEEK
    return Interval.MONTH


def bucket_start(moment: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    """The start of the bucket that holds `moment`."""
    fixed = interval.fixed_seconds
    if fixed is not None:
        return _floor(moment, fixed)
    day = local_date(moment, tz)
    if interval is Interval.WEEK:
        day -= timedelta(days=day.weekday())
    elif interval is Interval.MONTH:
        day = day.replace(day=1)
    return local_midnight(day, tz)


def next_bucket(start: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    fixed = interval.fixed_seconds
    if fixed is not None:
        return start + timedelta(seconds=fixed)
    day = local_date(start, tz)
    if interval is Interval.DAY:
        return local_midnight(day + timedelta(days=1), tz)
    if interval is Interval.WEEK:
        return local_midnight(day + timedelta(days=7), tz)
    return local_midnight(_next_month(day), tz)


def buckets(time_range: TimeRange, interval: Interval) -> list[tuple[datetime, datetime]]:
    """Every bucket of the range, gaps included, clipped to the range at both ends."""
    tz = time_range.zone
    fixed = interval.fixed_seconds
    if fixed is not None and time_range.seconds / fixed > MAX_POINTS:
        raise _too_many(time_range, interval)
    spans: list[tuple[datetime, datetime]] = []
    start = bucket_start(time_range.start, interval, tz)
    while start < time_range.end:
        stop = next_bucket(start, interval, tz)
        spans.append((max(start, time_range.start), min(stop, time_range.end)))
        if len(spans) > MAX_POINTS:
            raise _too_many(time_range, interval)
        start = stop
    return spans


def _too_many(time_range: TimeRange, interval: Interval) -> InvalidQuery:
    days = time_range.seconds / DAY
    return InvalidQuery(
        f"A range of {days:.0f} days at interval {interval.value} has more than "
        f"{MAX_POINTS:,} points; choose a coarser interval or a shorter range"
    )


def iter_local_days(time_range: TimeRange) -> Iterator[date]:
    """The local dates the range touches."""
    tz = time_range.zone
    day = local_date(time_range.start, tz)
    last = local_date(time_range.end - timedelta(microseconds=1), tz)
    while day <= last:
        yield day
        day += timedelta(days=1)
