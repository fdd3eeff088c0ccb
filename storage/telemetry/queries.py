"""Reading queries: raw pages, M4-downsampled series, bucketed aggregates, latest values,
batch metrics and daily summaries."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from storage.errors import InvalidCursor
from storage.telemetry import partials
from storage.telemetry.buckets import (
    DAY_MS,
    MAX_RANGE_DAYS,
    buckets_for,
    day_buckets,
    local_date,
    local_midnight_ms,
    most_buckets,
)
from storage.telemetry.channels import BY_CODE, code_of
from storage.telemetry.errors import QueryTooLarge, RangeTooLong
from storage.telemetry.instants import INTERVAL_CODES, counted_range_sql
from storage.telemetry.store import HOUR_MS, TelemetryStore, now_ms

MAX_BUCKET_ROWS = 200_000
MAX_SERIES_DAYS = 7320  # a series covers at most 20 years
PAGE_MAX = 1000
CURSOR_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


# -- cursors -------------------------------------------------------------------------


def encode_cursor(ts: int) -> str:
    """A page cursor: the last ts given, in base 36 (a leading '-' before 1970)."""
    sign, number = ("-", -ts) if ts < 0 else ("", ts)
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = CURSOR_DIGITS[digit] + digits
        if number == 0:
            return sign + digits


def decode_cursor(cursor: str) -> int:
    """The ts a cursor holds; InvalidCursor when it is not one."""
    try:
        return int(cursor, 36)
    except ValueError as error:
        raise InvalidCursor("the cursor is not one this server issued") from error


# -- raw -------------------------------------------------------------------------------


def readings_page(store: TelemetryStore, *, community_id: int, sensor_id: str, channel: str,
                  low: int, high: int, limit: int,
                  after: str | None) -> tuple[list[tuple[int, float]], str | None]:
    """Readings of [low, high) of the community's series of the sensor, oldest first, `limit`
    of them after the cursor."""
    limit = max(1, min(PAGE_MAX, limit))
    if after is not None:
        low = max(low, decode_cursor(after) + 1)
    key = store.sensor_keys({sensor_id: community_id}).get(sensor_id)
    if key is None or low >= high:
        return [], None
    with store.reader() as cursor:
        rows = cursor.execute(
            "SELECT ts, value FROM readings WHERE sensor = $s AND channel = $c"
            " AND ts >= $lo AND ts < $hi ORDER BY ts LIMIT $n",
            {"s": key, "c": code_of(channel), "lo": low, "hi": high, "n": limit + 1}).fetchall()
    page = [(int(ts), float(value)) for ts, value in rows[:limit]]
    return page, encode_cursor(page[-1][0]) if len(rows) > limit else None


# -- series ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One sensor's points, possibly downsampled."""

    sensor_id: str
    raw_count: int
    downsampled: bool
    ts: list[int]
    value: list[float]


# M4 over raw readings: `slice` cuts [lo, hi) into $k equal parts.
M4_RAW_SQL = """
SELECT sensor, floor((ts - $lo) * $k / ($hi - $lo))::BIGINT AS slice, count(*) AS n,
       min(ts) AS first_ts, arg_min(value, ts) AS first_value,
       max(ts) AS last_ts, arg_max(value, ts) AS last_value,
       arg_min(ts, (value, ts)) AS low_ts, min(value) AS low,
       arg_max(ts, (value, -ts)) AS high_ts, max(value) AS high
FROM readings
WHERE {sensors} AND channel = $c
  AND ts >= $lo AND ts < $hi
GROUP BY ALL ORDER BY sensor, slice
"""
M4_COLUMNS = ("sensor", "n", "first_ts", "first_value", "last_ts", "last_value", "low_ts",
              "low", "high_ts", "high")
ROLLUP_SLICE_HOURS = 2  # slices this long or longer are read from the hourly rollup


def m4_slicing(low: int, high: int, max_points: int) -> tuple[int, int, int] | None:
    """(origin, width, slices) of whole-hour slices for a range long enough for them to span
    at least ROLLUP_SLICE_HOURS hours; None for a shorter range (sliced exactly)."""
    slices = max(1, max_points // 4)
    if high - low < slices * ROLLUP_SLICE_HOURS * HOUR_MS:
        return None
    origin = low // HOUR_MS * HOUR_MS
    end = -(-high // HOUR_MS) * HOUR_MS
    width = -(-(end - origin) // (slices * HOUR_MS)) * HOUR_MS
    return origin, width, -(-(end - origin) // width)


def series(store: TelemetryStore, *, sensors: Mapping[str, int], channel: str, low: int,
           high: int, max_points: int) -> list[Series]:
    """Each sensor's readings of [low, high), reduced with M4 to at most max_points: the
    range is cut into max_points / 4 slices (of whole hours, when that makes them at least
    two hours long, so that sealed days are read from the hourly rollup), each keeping its
    first, last, lowest and highest reading; the first and the last reading of the range
    always stay. A sensor with at most max_points readings in the range gets them all.
    `sensors` maps each sensor id to the community whose series is read. RangeTooLong beyond
    MAX_SERIES_DAYS."""
    _check_range(low, high, MAX_SERIES_DAYS, "series")
    keys = store.sensor_keys(sensors)
    found: dict[int, Series] = {}
    if keys and low < high:
        code = code_of(channel)
        with store.reader() as cursor:
            slicing = m4_slicing(low, high, max_points)
            if slicing is None:
                sql = M4_RAW_SQL.format(sensors=partials.sensor_filter(cursor, keys.values()))
                columns = cursor.execute(sql, {"c": code, "lo": low, "hi": high,
                                               "k": max(1, max_points // 4)}).fetchnumpy()
            else:
                origin, width, _ = slicing
                # Partials take the readings counted in a range; an energy reading counts
                # 1 ms before its ts, so [low - 1, high - 1) holds those stamped in [low, high).
                shift = int(code in INTERVAL_CODES)
                sql = partials.partials_sql(store, cursor, sensors=list(keys.values()),
                                            channels=[code], low=low - shift,
                                            high=high - shift, slot_ms=HOUR_MS)
                columns = _fold_m4(cursor.execute(sql).fetchnumpy(), origin, width)
            counts = _collect_m4(found, columns)
            small = [key for key, count in counts.items() if count <= max_points]
            if small:
                raw = cursor.execute(
                    f"SELECT sensor, ts, value FROM readings WHERE"
                    f" {partials.sensor_filter(cursor, small)} AND channel = $c"
                    " AND ts >= $lo AND ts < $hi ORDER BY sensor, ts",
                    {"c": code, "lo": low, "hi": high}).fetchnumpy()
                _collect_raw(found, raw, counts)
    ids_by_key = {key: sensor_id for sensor_id, key in keys.items()}
    result = []
    for sensor_id in sensors:
        key = keys.get(sensor_id)
        if key is not None and key in found:
            item = found[key]
            result.append(Series(ids_by_key[key], item.raw_count, item.downsampled,
                                 item.ts, item.value))
        else:
            result.append(Series(sensor_id, 0, False, [], []))
    return result


def _sensor_runs(sensors: np.ndarray) -> list[tuple[int, int]]:
    """[begin, end) of each run of one sensor in rows ordered by sensor."""
    bounds = [0, *(np.flatnonzero(sensors[1:] != sensors[:-1]) + 1).tolist(), len(sensors)]
    return [(begin, end) for begin, end in itertools.pairwise(bounds) if begin < end]


def _collect_raw(found: dict[int, Series], raw: dict[str, Any], counts: dict[int, int]) -> None:
    sensors, stamps, values = (raw["sensor"].tolist(), raw["ts"].tolist(),
                               raw["value"].tolist())
    start = 0
    for index in range(1, len(sensors) + 1):
        if index == len(sensors) or sensors[index] != sensors[start]:
            key = sensors[start]
            found[key] = Series("", counts[key], False, stamps[start:index],
                                values[start:index])
            start = index


def _fold_m4(hours: dict[str, Any], origin: int, width: int) -> dict[str, np.ndarray]:
    """Hourly partials folded into M4 slices of `width` ms from `origin`, by sensor and slice
    (in NumPy: a few thousand rows per sensor, where SQL's grouping cost more)."""
    data = {name: np.asarray(column) for name, column in hours.items()}
    sensor, slot = data["sensor"].astype(np.int64), data["slot"].astype(np.int64)
    order = np.lexsort((slot, sensor))
    data = {name: column[order] for name, column in data.items()}
    sensor, slot = sensor[order], slot[order]
    group = sensor * 0
    if len(sensor):
        piece = (slot - origin) // width
        change = (sensor[1:] != sensor[:-1]) | (piece[1:] != piece[:-1])
        group = np.concatenate([[0], np.cumsum(change)])
    starts = np.flatnonzero(np.diff(group, prepend=-1))
    ends = np.append(starts[1:], len(group)) - 1 if len(starts) else starts
    lowest = np.lexsort((data["low_ts"], data["low"], group))
    lowest = lowest[np.flatnonzero(np.diff(group[lowest], prepend=-1))]
    highest = np.lexsort((data["high_ts"], -data["high"], group))
    highest = highest[np.flatnonzero(np.diff(group[highest], prepend=-1))]
    return {"sensor": data["sensor"][starts],
            "n": np.add.reduceat(data["n"], starts) if len(starts) else data["n"][:0],
            "first_ts": data["first_ts"][starts], "first_value": data["first_value"][starts],
            "last_ts": data["last_ts"][ends], "last_value": data["last_value"][ends],
            "low_ts": data["low_ts"][lowest], "low": data["low"][lowest],
            "high_ts": data["high_ts"][highest], "high": data["high"][highest]}


def _collect_m4(found: dict[int, Series], columns: dict[str, Any]) -> dict[int, int]:
    """Each sensor's M4 points (sorted, an instant kept once) from the slices' figures, in
    `found`; returns each sensor's reading count."""
    data = {name: np.asarray(columns[name]) for name in M4_COLUMNS}
    sensors = data["sensor"]
    counts: dict[int, int] = {}
    for begin, finish in _sensor_runs(sensors):
        part = {name: column[begin:finish] for name, column in data.items()}
        stamps = np.concatenate([part["first_ts"], part["last_ts"], part["low_ts"],
                                 part["high_ts"]])
        values = np.concatenate([part["first_value"], part["last_value"], part["low"],
                                 part["high"]])
        kept, first = np.unique(stamps, return_index=True)
        sensor = int(sensors[begin])
        counts[sensor] = int(part["n"].sum())
        found[sensor] = Series("", counts[sensor], True, kept.tolist(),
                               values[first].tolist())
    return counts


# -- aggregates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """One bucket's figures."""

    start: int
    end: int
    count: int
    avg: float
    low: float
    high: float
    total: float
    first: float
    last: float


BUCKET_FIELDS = ("start", "end", "count", "avg", "low", "high", "total", "first", "last")


@dataclass(frozen=True)
class Buckets:
    """One sensor's non-empty buckets, column by column (lists of one length, by start)."""

    start: list[int]
    end: list[int]
    count: list[int]
    avg: list[float]
    low: list[float]
    high: list[float]
    total: list[float]
    first: list[float]
    last: list[float]

    def rows(self) -> list[Bucket]:
        """The buckets one by one."""
        return [Bucket(*figures) for figures in zip(
            *(getattr(self, name) for name in BUCKET_FIELDS), strict=True)]


FOLD_SQL = """
SELECT p.sensor AS sensor, b.bucket_start AS start, b.bucket_end AS "end",
       sum(p.n)::BIGINT AS count, sum(p.total) / sum(p.n) AS avg, min(p.low) AS low,
       max(p.high) AS high, sum(p.total) AS total,
       arg_min(p.first_value, p.first_ts) AS first, arg_max(p.last_value, p.last_ts) AS last
FROM ({partials}) p JOIN slot_buckets b ON b.slot = p.slot
GROUP BY ALL ORDER BY p.sensor, b.bucket_start
"""

# The same when every bucket is one slot (hourly buckets in a whole-hour zone): no grouping.
SLOT_SQL = """
SELECT p.sensor AS sensor, b.bucket_start AS start, b.bucket_end AS "end", p.n AS count,
       p.total / p.n AS avg, p.low AS low, p.high AS high, p.total AS total,
       p.first_value AS first, p.last_value AS last
FROM ({partials}) p JOIN slot_buckets b ON b.slot = p.slot
ORDER BY p.sensor, b.bucket_start
"""


@dataclass(frozen=True)
class Aggregates:
    """The non-empty buckets of every sensor asked, in one set of columns (lists, rows by
    sensor then start), and each sensor's rows in them, [begin, end), in the order asked (an
    empty span for a sensor without readings): one answer holds up to MAX_BUCKET_ROWS
    buckets, which per-sensor lists would cost as much again to cut out."""

    columns: dict[str, list[Any]]
    spans: dict[str, tuple[int, int]]

    def of(self, sensor_id: str) -> Buckets:
        """One sensor's buckets."""
        begin, end = self.spans[sensor_id]
        return Buckets(*(self.columns[name][begin:end] for name in BUCKET_FIELDS))


def check_aggregate_cost(*, low: int, high: int, bucket: str, sensors: int) -> None:
    """QueryTooLarge when the buckets of [low, high) for `sensors` sensors may exceed
    MAX_BUCKET_ROWS, RangeTooLong when the range is longer than the bucket size allows:
    reckoned without building anything."""
    count = most_buckets(low, high, bucket)
    if count * max(1, sensors) > MAX_BUCKET_ROWS:
        raise QueryTooLarge(
            f"about {count} buckets for {sensors} sensors exceed the {MAX_BUCKET_ROWS}"
            " buckets one answer holds; choose a longer bucket or a shorter range")
    _check_range(low, high, MAX_RANGE_DAYS[bucket], f"{bucket} buckets")


def _check_range(low: int, high: int, max_days: int, what: str) -> None:
    if high - low > max_days * DAY_MS:
        raise RangeTooLong(f"{what} cover at most {max_days} days; this range has "
                           f"{-(-(high - low) // DAY_MS)}")


def aggregates(store: TelemetryStore, *, sensors: Mapping[str, int], channel: str, low: int,
               high: int, bucket: str, zone: ZoneInfo) -> Aggregates:
    """Each sensor's buckets over [low, high) (of the series of the community `sensors`
    gives it); buckets without a reading are left out. QueryTooLarge or RangeTooLong, before
    any bucket is built, for too many buckets or too long a range for the bucket size."""
    sensor_ids = list(sensors)
    check_aggregate_cost(low=low, high=high, bucket=bucket, sensors=len(sensor_ids))
    buckets = buckets_for(low, high, bucket, zone)
    if (len(buckets.edges) - 1) * max(1, len(sensor_ids)) > MAX_BUCKET_ROWS:
        raise QueryTooLarge(
            f"{len(buckets.edges) - 1} buckets for {len(sensor_ids)} sensors exceed the"
            f" {MAX_BUCKET_ROWS} buckets one answer holds; choose a longer bucket or a"
            " shorter range")
    keys = store.sensor_keys(sensors)
    spans = dict.fromkeys(sensor_ids, (0, 0))
    if not keys or low >= high:
        return Aggregates({name: [] for name in BUCKET_FIELDS}, spans)
    ids_by_key = {key: sensor_id for sensor_id, key in keys.items()}
    with store.reader() as cursor:
        sql = partials.partials_sql(store, cursor, sensors=list(keys.values()),
                                    channels=[code_of(channel)], low=low, high=high,
                                    slot_ms=buckets.slot_ms)
        partials.register_slot_mapping(cursor, buckets.slot_mapping())
        one_slot_each = bool(np.all(np.diff(buckets.edges) == buckets.slot_ms))
        columns = cursor.execute((SLOT_SQL if one_slot_each else FOLD_SQL).format(
            partials=sql)).fetchnumpy()
    rows = np.asarray(columns["sensor"])
    for begin, finish in _sensor_runs(rows):
        spans[ids_by_key[int(rows[begin])]] = (begin, finish)
    return Aggregates({name: np.asarray(columns[name]).tolist() for name in BUCKET_FIELDS},
                      spans)


# -- latest, metrics, daily --------------------------------------------------------------


def latest(store: TelemetryStore, *, sensors: Mapping[str, int],
           channel: str | None) -> list[tuple[str, str, int, float]]:
    """(sensor_id, channel, ts, value) of the newest reading of each sensor (in the community
    `sensors` gives it) and channel."""
    keys = store.sensor_keys(sensors)
    wanted = None if channel is None else code_of(channel)
    items = []
    for sensor_id in sensors:
        key = keys.get(sensor_id)
        if key is None:
            continue
        for code in sorted(BY_CODE):
            if wanted is not None and code != wanted:
                continue
            figures = store.latest.get((key, code))
            if figures is not None:
                items.append((sensor_id, BY_CODE[code].name, int(figures[1]), float(figures[2])))
    return items


def channel_overview(store: TelemetryStore, *, community_id: int,
                     sensor_id: str) -> list[tuple[str, int, int, float]]:
    """(channel, first_ts, last_ts, latest value) of each channel of a sensor with readings."""
    key = store.sensor_keys({sensor_id: community_id}).get(sensor_id)
    if key is None:
        return []
    return [(BY_CODE[code].name, int(figures[0]), int(figures[1]), float(figures[2]))
            for code in sorted(BY_CODE)
            if (figures := store.latest.get((key, code))) is not None]


ENERGY_CODES = {code_of("energy_import"): "energy_import_wh",
                code_of("energy_export"): "energy_export_wh",
                code_of("energy_produced"): "energy_produced_wh"}


def metrics(store: TelemetryStore, *, community_id: int, sensor_id: str, zone: ZoneInfo,
            now: int | None = None) -> dict[str, Any]:
    """Latest power and today's energy (in `zone`) of one sensor."""
    now = now_ms() if now is None else now
    today = local_date(now, zone)
    low = local_midnight_ms(today, zone)
    high = local_midnight_ms(today + timedelta(days=1), zone)
    figures: dict[str, Any] = {"day": today, **{name: 0.0 for name in ENERGY_CODES.values()},
                               "power": None}
    key = store.sensor_keys({sensor_id: community_id}).get(sensor_id)
    if key is None:
        return figures
    power = store.latest.get((key, code_of("power")))
    if power is not None:
        figures["power"] = (int(power[1]), float(power[2]))
    with store.reader() as cursor:
        rows = cursor.execute(
            f"SELECT channel, sum(value) FROM readings WHERE sensor = $s"
            f" AND {counted_range_sql(low, high)} AND channel IN (2, 3, 4) GROUP BY channel",
            {"s": key}).fetchall()
    for code, total in rows:
        figures[ENERGY_CODES[int(code)]] = float(total)
    return figures


DAILY_SQL = """
SELECT b.bucket_start, sum(p.n)::BIGINT,
       coalesce(sum(p.total) FILTER (WHERE p.channel = 2), 0),
       coalesce(sum(p.total) FILTER (WHERE p.channel = 3), 0),
       coalesce(sum(p.total) FILTER (WHERE p.channel = 4), 0),
       sum(p.total) FILTER (WHERE p.channel = 1) / sum(p.n) FILTER (WHERE p.channel = 1),
       max(p.high) FILTER (WHERE p.channel = 1)
FROM ({partials}) p JOIN slot_buckets b ON b.slot = p.slot
GROUP BY ALL ORDER BY 1
"""


def daily_summaries(store: TelemetryStore, *, community_id: int, sensor_id: str, first: date,
                    last: date, zone: ZoneInfo) -> list[dict[str, Any]]:
    """One summary per local day (first..last) with readings of the sensor."""
    buckets = day_buckets(first, last, zone, "day")
    key = store.sensor_keys({sensor_id: community_id}).get(sensor_id)
    if key is None:
        return []
    with store.reader() as cursor:
        sql = partials.partials_sql(store, cursor, sensors=[key], channels=sorted(BY_CODE),
                                    low=int(buckets.edges[0]), high=int(buckets.edges[-1]),
                                    slot_ms=buckets.slot_ms)
        partials.register_slot_mapping(cursor, buckets.slot_mapping())
        rows = cursor.execute(DAILY_SQL.format(partials=sql)).fetchall()
    starts = buckets.edges.tolist()
    days = [first + timedelta(days=offset) for offset in range(len(starts) - 1)]
    day_by_start = dict(zip(starts, days, strict=False))
    return [{"day": day_by_start[int(start)], "readings": int(count),
             "energy_import_wh": float(imported), "energy_export_wh": float(exported),
             "energy_produced_wh": float(produced),
             "power_avg_w": None if power_avg is None else float(power_avg),
             "power_max_w": None if power_max is None else float(power_max)}
            for start, count, imported, exported, produced, power_avg, power_max in rows]
