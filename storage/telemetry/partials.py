"""Partial aggregates per sensor, channel and slot: from the hourly rollup of sealed days,
from raw readings elsewhere, read in one snapshot. Every bucketed answer is built on them,
and a reading counts in the slot holding its counted instant (ts - 1 ms for energy, ts
otherwise: storage.telemetry.instants), in the rollup and in raw readings alike."""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import numpy as np
import pyarrow as pa

from storage.telemetry.instants import counted_range_sql, counted_ts_sql
from storage.telemetry.store import DAY_MS, HOUR_MS, TelemetryStore, floor_sql

MAX_SENSOR_RANGES = 32  # beyond, a sensor filter is a semi join

# Columns of a partial: sensor, channel, slot, n, total, low, high, first_ts, first_value,
# last_ts, last_value, low_ts, high_ts (the first instants of the lowest and highest value).
RAW_PARTIALS = """
SELECT sensor, channel, {slot_of_ts} AS slot, count(*) AS n, sum(value) AS total,
       min(value) AS low, max(value) AS high, min(ts) AS first_ts,
       arg_min(value, ts) AS first_value, max(ts) AS last_ts, arg_max(value, ts) AS last_value,
       arg_min(ts, (value, ts)) AS low_ts, arg_max(ts, (value, -ts)) AS high_ts
FROM readings
WHERE {sensors} AND channel IN ({channels})
  AND ({ranges})
GROUP BY ALL
"""
ROLLUP_PARTIALS = """
SELECT sensor, channel, hour AS slot, n, total, low, high, first_ts, first_value, last_ts,
       last_value, low_ts, high_ts
FROM hourly
WHERE {sensors} AND channel IN ({channels})
  AND hour >= {low} AND hour < {high}{unsealed}
"""


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(r for r in ranges if r[0] < r[1]):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def int_list(numbers: Iterable[int]) -> str:
    """Integers (sensor keys, channel codes) written into SQL; NULL for none."""
    return ", ".join(str(int(number)) for number in numbers) or "NULL"


def sensor_filter(cursor: duckdb.DuckDBPyConnection, sensors: Iterable[int]) -> str:
    """A SQL condition on `sensor` holding for these keys. Keys in a few runs of consecutive
    numbers (a community's sensors usually are) become ranges, which zone maps prune; keys
    scattered over more runs are registered on the cursor as `wanted_sensors` and
    semi-joined, since DuckDB checks a long IN list item by item (800 keys took 6 ms on one
    day of the rollup, against under 1 ms as a range)."""
    runs: list[list[int]] = []
    for key in sorted({int(key) for key in sensors}):
        if runs and key == runs[-1][1] + 1:
            runs[-1][1] = key
        else:
            runs.append([key, key])
    if not runs:
        return "false"
    if len(runs) <= MAX_SENSOR_RANGES:
        return "(" + " OR ".join(f"sensor = {low}" if low == high
                                 else f"sensor BETWEEN {low} AND {high}"
                                 for low, high in runs) + ")"
    keys = [key for low, high in runs for key in range(low, high + 1)]
    cursor.register("wanted_sensors", pa.table({"sensor": pa.array(keys, pa.int32())}))
    return "sensor IN (SELECT sensor FROM wanted_sensors)"


def partials_sql(store: TelemetryStore, cursor: duckdb.DuckDBPyConnection, *,
                 sensors: list[int], channels: list[int], low: int, high: int,
                 slot_ms: int) -> str:
    """SQL of the partials of [low, high), for a query on `cursor`. Days the store holds
    unsealed (in memory: a superset of those unsealed in any snapshot, as writes unseal
    days before they commit) are read raw."""
    lists = {"sensors": sensor_filter(cursor, sensors), "channels": int_list(channels)}
    raw: list[tuple[int, int]]
    if slot_ms == HOUR_MS:
        inner_low = -(-low // HOUR_MS) * HOUR_MS
        inner_high = high // HOUR_MS * HOUR_MS
    else:
        inner_low = inner_high = low
    parts = []
    if inner_low < inner_high:
        unsealed = sorted(day for day in list(store.unsealed)
                          if inner_low // DAY_MS <= day <= inner_high // DAY_MS)
        raw = [(low, inner_low), (inner_high, high)]
        raw += [(max(day * DAY_MS, inner_low), min((day + 1) * DAY_MS, inner_high))
                for day in unsealed]
        excluded = ", ".join(str(day) for day in unsealed)
        parts.append(ROLLUP_PARTIALS.format(
            **lists, low=inner_low, high=inner_high,
            unsealed=f"\n  AND {floor_sql('hour', DAY_MS, nonnegative=inner_low >= 0)}"
                     f" // {DAY_MS} NOT IN ({excluded})" if unsealed else ""))
    else:
        raw = [(low, high)]
    merged = _merge(raw)
    if merged:
        ranges = " OR ".join(counted_range_sql(a, b) for a, b in merged)
        slot_of_ts = floor_sql(counted_ts_sql(), slot_ms, nonnegative=merged[0][0] >= 0)
        parts.append(RAW_PARTIALS.format(**lists, slot_of_ts=slot_of_ts, ranges=ranges))
    if not parts:
        return ("SELECT NULL::INTEGER AS sensor, NULL::UTINYINT AS channel, NULL::BIGINT AS slot,"
                " 0::BIGINT AS n, 0.0 AS total, 0.0 AS low, 0.0 AS high, 0::BIGINT AS first_ts,"
                " 0.0 AS first_value, 0::BIGINT AS last_ts, 0.0 AS last_value, 0::BIGINT AS low_ts,"
                " 0::BIGINT AS high_ts WHERE false")
    return "\nUNION ALL\n".join(parts)


def register_slot_mapping(cursor: duckdb.DuckDBPyConnection,
                          mapping: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Register `slot_buckets` (slot, bucket_start, bucket_end) on the cursor (gone with it)."""
    slots, starts, ends = mapping
    cursor.register("slot_buckets", pa.table({"slot": slots, "bucket_start": starts,
                                              "bucket_end": ends}))

