"""Properties of bucketed aggregates in random IANA zones, around their offset changes
(Hypothesis): every reading in range falls in exactly one bucket, which holds it; day, week
and month buckets start at the first instant of their local date (a Monday, a 1st); the
figures of each bucket are those of its readings, computed here with zoneinfo alone, before
and after compaction (hourly rollup)."""

from __future__ import annotations

import functools
import itertools
import math
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.telemetry import queries
from storage.telemetry.compaction import compact
from storage.telemetry.store import TelemetryStore
from tests.storage.telemetry.loading import put_readings

MINUTE_MS = 60_000
QUARTER_MS = 15 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZONES = sorted(zoneinfo.available_timezones())
# Zones worth drawing more often: DST of one hour, of half an hour (Lord Howe), of two hours
# (Troll), offsets not whole hours (Kolkata, Adelaide, Kathmandu, Chatham, St John's, Tehran),
# changes at local midnight (Santiago, Havana, Asuncion), a day skipped (Apia, 2011).
NOTABLE = ("Europe/Rome", "America/New_York", "Asia/Kolkata", "Australia/Adelaide",
           "Asia/Kathmandu", "Australia/Lord_Howe", "Antarctica/Troll", "Pacific/Chatham",
           "America/St_Johns", "Asia/Tehran", "America/Santiago", "America/Havana",
           "America/Asuncion", "Pacific/Apia", "Europe/London", "Australia/Sydney", "UTC")
BUCKETS = ("15min", "hour", "day", "week", "month")
# How far from the offset change readings and the range bounds are drawn, by bucket size.
REACH_MS = {"15min": 3 * HOUR_MS, "hour": 8 * HOUR_MS, "day": 3 * DAY_MS,
            "week": 10 * DAY_MS, "month": 45 * DAY_MS}
FIXED_MS = {"15min": QUARTER_MS, "hour": HOUR_MS}
CHANNELS = ("power", "energy_import")  # counted at ts, and at ts - 1 ms (interval energy)


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return (EPOCH + timedelta(milliseconds=ms)).astimezone(zone)


def _offset_ms(ms: int, zone: ZoneInfo) -> int:
    return int((_local(ms, zone).utcoffset() or timedelta()).total_seconds() * 1000)


@functools.cache
def offset_changes(zone_name: str, year: int) -> tuple[int, ...]:
    """The instants (UTC epoch ms) in `year` at which the zone's UTC offset changes: found
    day by day, then to the second by bisection."""
    zone = ZoneInfo(zone_name)
    begin = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) * 1000
    found = []
    for day in range(begin, end, DAY_MS):
        before = _offset_ms(day, zone)
        if _offset_ms(day + DAY_MS, zone) == before:
            continue
        low, high = day // 1000, (day + DAY_MS) // 1000  # offset(low) is before, high's not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _offset_ms(middle * 1000, zone) == before else (
                low, middle)
        found.append(high * 1000)
    return tuple(found)


@functools.cache
def first_instant(day: date, zone: ZoneInfo) -> int:
    """The first instant (UTC epoch ms) whose local date in `zone` is `day` or later, found
    by bisection on the local date (not from a local midnight, which may not exist)."""
    naive = int((datetime(day.year, day.month, day.day, tzinfo=UTC) - EPOCH)
                / timedelta(milliseconds=1))
    low, high = naive - 40 * HOUR_MS, naive + 40 * HOUR_MS
    assert _local(low, zone).date() < day <= _local(high, zone).date()
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _local(middle, zone).date() >= day else (middle, high)
    return high


def _calendar_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def _next_calendar_start(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def expected_bucket(instant: int, bucket: str, zone: ZoneInfo, low: int) -> tuple[int, int]:
    """[start, end) of the bucket holding `instant` (a counted instant in [low, high)): a
    local day, week or month; or a fixed length on the grid of the local clock at `low`."""
    if bucket in FIXED_MS:
        size = FIXED_MS[bucket]
        origin = low - (low + _offset_ms(low, zone)) % size
        start = origin + (instant - origin) // size * size
        return start, start + size
    start_day = _calendar_start(_local(instant, zone).date(), bucket)
    return (first_instant(start_day, zone),
            first_instant(_next_calendar_start(start_day, bucket), zone))


@dataclass(frozen=True)
class Case:
    """A zone, a bucket size, a channel, readings (ts, value) and a range [low, high)."""

    zone: str
    bucket: str
    channel: str
    readings: tuple[tuple[int, float], ...]
    low: int
    high: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Readings near one of a zone's offset changes (when its year has one), some on quarter
    hours and a millisecond either side, and a range around them."""
    zone = draw(st.one_of(st.sampled_from(NOTABLE), st.sampled_from(ZONES)))
    year = draw(st.integers(1970, 2037))
    changes = offset_changes(zone, year)
    year_start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000
    centre = draw(st.sampled_from(changes) if changes
                  else st.integers(year_start, year_start + 364 * DAY_MS))
    bucket = draw(st.sampled_from(BUCKETS))
    reach = REACH_MS[bucket]
    offset = st.one_of(
        st.integers(-reach, reach),
        st.builds(lambda quarters, nudge: quarters * QUARTER_MS + nudge,
                  st.integers(-reach // QUARTER_MS, reach // QUARTER_MS),
                  st.sampled_from((-1, 0, 0, 1))))
    offsets = draw(st.lists(offset, min_size=1, max_size=40, unique=True))
    values = st.one_of(st.integers(-3, 3).map(float),
                       st.floats(-5_000, 5_000, allow_nan=False).map(lambda v: round(v, 1)))
    readings = tuple((centre + step, draw(values)) for step in offsets)
    low = centre - draw(st.integers(1, reach + HOUR_MS))
    high = centre + draw(st.integers(1, reach + HOUR_MS))
    return Case(zone, bucket, draw(st.sampled_from(CHANNELS)), readings, low, high)


def _case(zone: str, bucket: str, centre: int, steps: list[int], channel: str = "power",
          before: int = 2 * DAY_MS, after: int = 2 * DAY_MS) -> Case:
    return Case(zone, bucket, channel,
                tuple((centre + step, float(index % 7)) for index, step in enumerate(steps)),
                centre - before, centre + after)


def _change(zone: str, year: int, index: int) -> int:
    return offset_changes(zone, year)[index]


SENSOR_NUMBERS = itertools.count()


def _put(module_store: TelemetryStore, sensor: str, channel: str,
         readings: tuple[tuple[int, float], ...]) -> None:
    put_readings(module_store, [(sensor, channel, ts, value) for ts, value in readings])


def _close(left: float, right: float) -> bool:
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)


def check_buckets(rows: list[queries.Bucket], case: Case) -> None:
    zone = ZoneInfo(case.zone)
    shift = int(case.channel == "energy_import")
    counted = sorted((ts - shift, value) for ts, value in case.readings
                     if case.low <= ts - shift < case.high)
    # The buckets answered strictly increase and do not overlap.
    assert all(row.start < row.end for row in rows)
    assert all(left.end <= right.start for left, right in itertools.pairwise(rows))
    expected: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for instant, value in counted:
        start, end = expected_bucket(instant, case.bucket, zone, case.low)
        assert start <= instant < end
        expected.setdefault((start, end), []).append((instant, value))
        # Exactly one bucket answered holds the reading.
        assert sum(row.start <= instant < row.end for row in rows) == 1, (instant, rows)
    assert [(row.start, row.end) for row in rows] == sorted(expected)
    for row in rows:
        members = expected[(row.start, row.end)]
        values = [value for _, value in members]
        assert row.count == len(members)
        assert _close(row.total, math.fsum(values))
        assert _close(row.avg, math.fsum(values) / len(values))
        assert row.low == min(values) and row.high == max(values)
        assert row.first == members[0][1] and row.last == members[-1][1]
        if case.bucket in FIXED_MS:
            assert row.end - row.start == FIXED_MS[case.bucket]
            continue
        # A calendar bucket starts at the first instant of its local date: a Monday for a
        # week, a 1st for a month; the instant before lies in an earlier local date.
        day = _local(row.start, zone).date()
        assert _local(row.start - 1, zone).date() < day
        assert day.weekday() == 0 if case.bucket == "week" else True
        assert day.day == 1 if case.bucket == "month" else True
        assert _local(row.end - 1, zone).date() < _next_calendar_start(day, case.bucket)
        assert _local(row.end, zone).date() >= _next_calendar_start(day, case.bucket)
    assert sum(row.count for row in rows) == len(counted)
    assert _close(sum(row.total for row in rows), math.fsum(value for _, value in counted))


ROME_SPRING_2026 = _change("Europe/Rome", 2026, 0)
LORD_HOWE_2026 = _change("Australia/Lord_Howe", 2026, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(_case("Europe/Rome", "day", ROME_SPRING_2026,
               [-1, 0, 1, -3 * HOUR_MS, -HOUR_MS, HOUR_MS, 22 * HOUR_MS, 23 * HOUR_MS - 1]))
@example(_case("Europe/Rome", "hour", _change("Europe/Rome", 2026, 1),
               [-HOUR_MS - 1, -HOUR_MS, -1, 0, HOUR_MS - 1, HOUR_MS], "energy_import"))
@example(_case("Asia/Kolkata", "hour", 1_774_652_400_000,
               [0, 30 * MINUTE_MS, 30 * MINUTE_MS - 1, 90 * MINUTE_MS]))
@example(_case("Asia/Kathmandu", "15min", 1_774_652_400_000, [0, 1, 15 * MINUTE_MS - 1]))
@example(_case("Australia/Adelaide", "week", _change("Australia/Adelaide", 2026, 0),
               [-1, 0, 3 * DAY_MS, -5 * DAY_MS], before=9 * DAY_MS, after=9 * DAY_MS))
@example(_case("Australia/Lord_Howe", "day", LORD_HOWE_2026,
               [-1, 0, 30 * MINUTE_MS, 20 * HOUR_MS]))
@example(_case("America/Santiago", "month", _change("America/Santiago", 2026, 0),
               [-1, 0, 1, -20 * DAY_MS, 20 * DAY_MS], before=40 * DAY_MS, after=40 * DAY_MS))
@example(_case("Pacific/Apia", "day", _change("Pacific/Apia", 2011, 2),
               [-1, 0, 1, DAY_MS, -DAY_MS]))
def test_every_reading_lies_in_the_one_local_bucket_holding_it(module_store: TelemetryStore,
                                                                case: Case) -> None:
    sensor = f"s{next(SENSOR_NUMBERS)}"
    _put(module_store, sensor, case.channel, case.readings)
    for compacted in (False, True):
        if compacted:
            compact(module_store, quiet_ms=0)
        found = queries.aggregates(module_store, sensors={sensor: 1}, channel=case.channel,
                                   low=case.low, high=case.high, bucket=case.bucket,
                                   zone=ZoneInfo(case.zone))
        check_buckets(found.of(sensor).rows(), case)


def test_the_drawn_cases_reach_offset_changes() -> None:
    """The zones drawn have offset changes to centre readings on: DST both ways, half an
    hour at Lord Howe, and none in Kolkata."""
    assert len(offset_changes("Europe/Rome", 2026)) == 2
    assert len(offset_changes("Australia/Lord_Howe", 2026)) == 2
    assert offset_changes("Asia/Kolkata", 2026) == ()
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert (_offset_ms(LORD_HOWE_2026 - 1, lord_howe) - _offset_ms(LORD_HOWE_2026, lord_howe)
            == 30 * MINUTE_MS)
