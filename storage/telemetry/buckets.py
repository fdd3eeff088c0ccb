"""Time buckets in a timezone: local day, week and month boundaries as UTC instants.

A local day lasts 23, 24 or 25 hours; its boundaries come from zoneinfo, never from adding
86,400 s. Sub-day buckets are fixed lengths aligned to the zone's offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

MINUTE_MS = 60_000
QUARTER_MS = 15 * MINUTE_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
FIXED_BUCKETS = {"15min": QUARTER_MS, "hour": HOUR_MS}
CALENDAR_BUCKETS = ("day", "week", "month")
# The longest range each bucket size may cover, in days: what bounds the bucket edges and
# the slots (up to 96 a day) a query builds before reading anything.
MAX_RANGE_DAYS = {"15min": 400, "hour": 1830, "day": 3660, "week": 7320, "month": 7320}


@dataclass(frozen=True)
class Buckets:
    """Bucket boundaries (UTC epoch ms, ascending): bucket i is [edges[i], edges[i + 1])."""

    edges: np.ndarray
    slot_ms: int  # the partial-aggregate slot that tiles every bucket (15 min or 1 hour)

    def slot_mapping(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every slot start within the buckets, with its bucket's start and end."""
        slots = np.arange(self.edges[0], self.edges[-1], self.slot_ms, dtype=np.int64)
        index = np.searchsorted(self.edges, slots, side="right") - 1
        return slots, self.edges[index], self.edges[index + 1]


def most_buckets(low_ms: int, high_ms: int, bucket: str) -> int:
    """How many buckets at most cover [low_ms, high_ms), by arithmetic alone (a local day
    lasts 23 to 25 hours, so calendar counts allow a few more)."""
    span = max(0, high_ms - low_ms)
    if bucket in FIXED_BUCKETS:
        return span // FIXED_BUCKETS[bucket] + 2
    if bucket == "day":
        return span // DAY_MS + 3
    if bucket == "week":
        return span // (7 * DAY_MS) + 3
    return span // (28 * DAY_MS) + 3


def local_midnight_ms(day: date, zone: ZoneInfo) -> int:
    """The UTC instant (epoch ms) at which `day` begins in `zone`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


def local_date(instant_ms: int, zone: ZoneInfo) -> date:
    """The date in `zone` at an instant."""
    return datetime.fromtimestamp(instant_ms / 1000, UTC).astimezone(zone).date()


def _calendar_starts(first: date, last: date, bucket: str) -> list[date]:
    """Bucket start dates from the bucket holding `first` to the one after `last`."""
    if bucket == "day":
        start = first
        step = lambda day: day + timedelta(days=1)  # noqa: E731
    elif bucket == "week":
        start = first - timedelta(days=first.weekday())
        step = lambda day: day + timedelta(days=7)  # noqa: E731
    else:
        start = first.replace(day=1)

        def step(day: date) -> date:
            return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    starts = [start]
    while starts[-1] <= last:
        starts.append(step(starts[-1]))
    return starts


def buckets_for(low_ms: int, high_ms: int, bucket: str, zone: ZoneInfo) -> Buckets:
    """Buckets covering [low_ms, high_ms): whole buckets, the first holding low_ms."""
    if bucket in FIXED_BUCKETS:
        size = FIXED_BUCKETS[bucket]
        local = datetime.fromtimestamp(low_ms / 1000, zone)
        offset = int((local.utcoffset() or timedelta()).total_seconds() * 1000)
        start = (low_ms + offset) // size * size - offset
        edges = np.arange(start, high_ms + size, size, dtype=np.int64)
        edges = edges[: np.searchsorted(edges, high_ms, side="left") + 1]
        slot = HOUR_MS if size == HOUR_MS and offset % HOUR_MS == 0 else QUARTER_MS
        return Buckets(edges=edges, slot_ms=slot)
    first = local_date(low_ms, zone)
    last = local_date(high_ms - 1, zone)
    edges = np.array([local_midnight_ms(day, zone)
                      for day in _calendar_starts(first, last, bucket)], dtype=np.int64)
    slot = HOUR_MS if bool(np.all(edges % HOUR_MS == 0)) else QUARTER_MS
    return Buckets(edges=edges, slot_ms=slot)


def day_buckets(first: date, last: date, zone: ZoneInfo, granularity: str) -> Buckets:
    """Buckets of the local days first..last (both included), by hour, day or month."""
    low = local_midnight_ms(first, zone)
    high = local_midnight_ms(last + timedelta(days=1), zone)
    if granularity == "hour":
        edges = np.arange(low, high + 1, HOUR_MS, dtype=np.int64)
        return Buckets(edges=edges, slot_ms=HOUR_MS)
    if granularity == "day":
        days = [first + timedelta(days=offset) for offset in range((last - first).days + 2)]
        edges = np.array([local_midnight_ms(day, zone) for day in days], dtype=np.int64)
    else:
        starts = _calendar_starts(first, last, "month")
        edges = np.array([max(low, min(high, local_midnight_ms(day, zone)))
                          for day in starts], dtype=np.int64)
        edges = np.unique(edges)
    return Buckets(edges=edges, slot_ms=HOUR_MS)
