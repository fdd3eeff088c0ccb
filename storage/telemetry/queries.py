"""Reading queries: raw pages, M4-downsampled series, bucketed aggregates, latest values,
batch metrics and daily summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from storage.errors import InvalidCursor
from storage.telemetry import partials
from storage.telemetry.buckets import buckets_for, day_buckets, local_date, local_midnight_ms
from storage.telemetry.channels import BY_CODE, code_of
from storage.telemetry.errors import QueryTooLarge
from storage.telemetry.store import TelemetryStore, now_ms

MAX_BUCKET_ROWS = 200_000
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


def readings_page(store: TelemetryStore, *, sensor_id: str, channel: str, low: int, high: int,
                  limit: int, after: str | None) -> tuple[list[tuple[int, float]], str | None]:
    """Readings of [low, high) oldest first, `limit` of them after the cursor."""
    limit = max(1, min(PAGE_MAX, limit))
    if after is not None:
        low = max(low, decode_cursor(after) + 1)
    key = store.sensor_keys([sensor_id]).get(sensor_id)
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


M4_SQL = """
SELECT sensor, floor((ts - $lo) * $k / ($hi - $lo))::BIGINT AS slice,
       min(ts), arg_min(value, ts), max(ts), arg_max(value, ts),
       arg_min(ts, value), min(value), arg_max(ts, value), max(value)
FROM readings
WHERE sensor IN (SELECT sensor FROM wanted_sensors) AND channel = $c
  AND ts >= $lo AND ts < $hi
GROUP BY ALL ORDER BY sensor, slice
"""


def series(store: TelemetryStore, *, sensor_ids: list[str], channel: str, low: int, high: int,
           max_points: int) -> list[Series]:
    """Each sensor's readings of [low, high), reduced with M4 to at most max_points: the
    range is cut into max_points / 4 slices, each keeping its first, last, lowest and
    highest reading (so the first and the last reading of the range always stay)."""
    keys = store.sensor_keys(sensor_ids)
    found: dict[int, Series] = {}
    if keys and low < high:
        code = code_of(channel)
        bounds = {"c": code, "lo": low, "hi": high}
        with store.reader() as cursor:
            cursor.register("wanted_sensors", _sensor_table(list(keys.values())))
            counts = dict(cursor.execute(
                "SELECT sensor, count(*) FROM readings WHERE sensor IN"
                " (SELECT sensor FROM wanted_sensors) AND channel = $c AND ts >= $lo"
                " AND ts < $hi GROUP BY sensor", bounds).fetchall())
            small = [key for key, count in counts.items() if count <= max_points]
            large = [key for key, count in counts.items() if count > max_points]
            if small:
                cursor.register("wanted_sensors", _sensor_table(small))
                raw = cursor.execute(
                    "SELECT sensor, ts, value FROM readings WHERE sensor IN"
                    " (SELECT sensor FROM wanted_sensors) AND channel = $c AND ts >= $lo"
                    " AND ts < $hi ORDER BY sensor, ts", bounds).fetchnumpy()
                _collect_raw(found, raw, counts)
            if large:
                cursor.register("wanted_sensors", _sensor_table(large))
                rows = cursor.execute(M4_SQL, {**bounds, "k": max(1, max_points // 4)})
                _collect_m4(found, rows.fetchall(), counts)
            cursor.unregister("wanted_sensors")
    ids_by_key = {key: sensor_id for sensor_id, key in keys.items()}
    result = []
    for sensor_id in sensor_ids:
        key = keys.get(sensor_id)
        if key is not None and key in found:
            item = found[key]
            result.append(Series(ids_by_key[key], item.raw_count, item.downsampled,
                                 item.ts, item.value))
        else:
            result.append(Series(sensor_id, 0, False, [], []))
    return result


def _sensor_table(keys: list[int]) -> pa.Table:
    return pa.table({"sensor": pa.array(keys, pa.int32())})


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


def _collect_m4(found: dict[int, Series], rows: list[tuple[Any, ...]],
                counts: dict[int, int]) -> None:
    points: dict[int, dict[int, float]] = {}
    for (sensor, _, first_ts, first_value, last_ts, last_value, low_ts, low_value, high_ts,
         high_value) in rows:
        kept = points.setdefault(sensor, {})
        kept[first_ts] = first_value
        kept[last_ts] = last_value
        kept[low_ts] = low_value
        kept[high_ts] = high_value
    for sensor, kept in points.items():
        stamps = sorted(kept)
        found[sensor] = Series("", counts[sensor], True, stamps, [kept[t] for t in stamps])


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


FOLD_SQL = """
SELECT p.sensor, b.bucket_start, b.bucket_end, sum(p.n)::BIGINT, sum(p.total) / sum(p.n),
       min(p.low), max(p.high), sum(p.total), arg_min(p.first_value, p.first_ts),
       arg_max(p.last_value, p.last_ts)
FROM ({partials}) p JOIN slot_buckets b ON b.slot = p.slot
GROUP BY ALL ORDER BY p.sensor, b.bucket_start
"""


def aggregates(store: TelemetryStore, *, sensor_ids: list[str], channel: str, low: int,
               high: int, bucket: str, zone: ZoneInfo) -> dict[str, list[Bucket]]:
    """Each sensor's buckets over [low, high); buckets without a reading are left out."""
    buckets = buckets_for(low, high, bucket, zone)
    if (len(buckets.edges) - 1) * max(1, len(sensor_ids)) > MAX_BUCKET_ROWS:
        raise QueryTooLarge(
            f"{len(buckets.edges) - 1} buckets for {len(sensor_ids)} sensors exceed the"
            f" {MAX_BUCKET_ROWS} buckets one answer holds; choose a longer bucket or a"
            " shorter range")
    keys = store.sensor_keys(sensor_ids)
    result: dict[str, list[Bucket]] = {sensor_id: [] for sensor_id in sensor_ids}
    if not keys or low >= high:
        return result
    ids_by_key = {key: sensor_id for sensor_id, key in keys.items()}
    with store.reader() as cursor:
        sql = partials.partials_sql(cursor, sensors=list(keys.values()),
                                    channels=[code_of(channel)], low=low, high=high,
                                    slot_ms=buckets.slot_ms)
        partials.register_slot_mapping(cursor, buckets.slot_mapping())
        rows = cursor.execute(FOLD_SQL.format(partials=sql)).fetchall()
        partials.unregister(cursor)
    for sensor, *figures in rows:
        result[ids_by_key[sensor]].append(Bucket(*figures))
    return result


# -- latest, metrics, daily --------------------------------------------------------------


def latest(store: TelemetryStore, *, sensor_ids: list[str],
           channel: str | None) -> list[tuple[str, str, int, float]]:
    """(sensor_id, channel, ts, value) of the newest reading of each sensor and channel."""
    keys = store.sensor_keys(sensor_ids)
    wanted = None if channel is None else code_of(channel)
    items = []
    for sensor_id in sensor_ids:
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


def channel_overview(store: TelemetryStore, *, sensor_id: str) -> list[tuple[str, int, int, float]]:
    """(channel, first_ts, last_ts, latest value) of each channel of a sensor with readings."""
    key = store.sensor_keys([sensor_id]).get(sensor_id)
    if key is None:
        return []
    return [(BY_CODE[code].name, int(figures[0]), int(figures[1]), float(figures[2]))
            for code in sorted(BY_CODE)
            if (figures := store.latest.get((key, code))) is not None]


ENERGY_CODES = {code_of("energy_import"): "energy_import_wh",
                code_of("energy_export"): "energy_export_wh",
                code_of("energy_produced"): "energy_produced_wh"}


def metrics(store: TelemetryStore, *, sensor_id: str, zone: ZoneInfo,
            now: int | None = None) -> dict[str, Any]:
    """Latest power and today's energy (in `zone`) of one sensor."""
    now = now_ms() if now is None else now
    today = local_date(now, zone)
    low = local_midnight_ms(today, zone)
    high = local_midnight_ms(today + timedelta(days=1), zone)
    figures: dict[str, Any] = {"day": today, **{name: 0.0 for name in ENERGY_CODES.values()},
                               "power": None}
    key = store.sensor_keys([sensor_id]).get(sensor_id)
    if key is None:
        return figures
    power = store.latest.get((key, code_of("power")))
    if power is not None:
        figures["power"] = (int(power[1]), float(power[2]))
    with store.reader() as cursor:
        rows = cursor.execute(
            "SELECT channel, sum(value) FROM readings WHERE sensor = $s AND ts >= $lo"
            " AND ts < $hi AND channel IN (2, 3, 4) GROUP BY channel",
            {"s": key, "lo": low, "hi": high}).fetchall()
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


def daily_summaries(store: TelemetryStore, *, sensor_id: str, first: date, last: date,
                    zone: ZoneInfo) -> list[dict[str, Any]]:
    """One summary per local day (first..last) with readings of the sensor."""
    buckets = day_buckets(first, last, zone, "day")
    key = store.sensor_keys([sensor_id]).get(sensor_id)
    if key is None:
        return []
    with store.reader() as cursor:
        sql = partials.partials_sql(cursor, sensors=[key], channels=sorted(BY_CODE),
                                    low=int(buckets.edges[0]), high=int(buckets.edges[-1]),
                                    slot_ms=buckets.slot_ms)
        partials.register_slot_mapping(cursor, buckets.slot_mapping())
        rows = cursor.execute(DAILY_SQL.format(partials=sql)).fetchall()
        partials.unregister(cursor)
    starts = buckets.edges.tolist()
    days = [first + timedelta(days=offset) for offset in range(len(starts) - 1)]
    day_by_start = dict(zip(starts, days, strict=False))
    return [{"day": day_by_start[int(start)], "readings": int(count),
             "energy_import_wh": float(imported), "energy_export_wh": float(exported),
             "energy_produced_wh": float(produced),
             "power_avg_w": None if power_avg is None else float(power_avg),
             "power_max_w": None if power_max is None else float(power_max)}
            for start, count, imported, exported, produced, power_avg, power_max in rows]
