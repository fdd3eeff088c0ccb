"""Deleting readings: one sensor's readings in a range, a UTC day per transaction, so that a
long range holds the write lock no longer at a time than the compaction of a day does."""

from __future__ import annotations

import duckdb

from storage.telemetry.channels import BY_CODE, code_of
from storage.telemetry.instants import END_TS_MS, INTERVAL_CODES, MIN_TS_MS
from storage.telemetry.store import DAY_MS, TelemetryStore


def delete_readings(store: TelemetryStore, *, community_id: int, sensor_id: str,
                    channel: str | None, low: int = MIN_TS_MS, high: int = END_TS_MS) -> int:
    """Delete the readings of [low, high) of the community's series of the sensor (of one
    channel, or all); how many. Each UTC day with readings is its own transaction: the day
    (and the day before, when an energy reading at its midnight goes) is marked unsealed,
    so that readers read it raw and the compaction rebuilds its rollup, and the sensor's
    latest figures are corrected when a first or last reading goes."""
    key = store.sensor_keys({sensor_id: community_id}).get(sensor_id)
    if key is None or low >= high:
        return 0
    codes = [code_of(channel)] if channel is not None else sorted(BY_CODE)
    with store.reader() as cursor:
        days = [int(row[0]) for row in cursor.execute(
            "SELECT day FROM days WHERE day >= $first AND day <= $last ORDER BY day",
            {"first": low // DAY_MS, "last": (high - 1) // DAY_MS}).fetchall()]
    deleted = 0
    for day in days:
        begin, end = max(low, day * DAY_MS), min(high, (day + 1) * DAY_MS)
        deleted += _delete_day(store, key=key, codes=codes, low=begin, high=end)
    return deleted


def _delete_day(store: TelemetryStore, *, key: int, codes: list[int], low: int,
                high: int) -> int:
    """Delete within one UTC day, in one transaction; how many."""
    channels = ", ".join(str(code) for code in codes)
    with store.writer() as cursor:
        row = cursor.execute(
            f"DELETE FROM readings WHERE sensor = $s AND channel IN ({channels})"
            " AND ts >= $lo AND ts < $hi", {"s": key, "lo": low, "hi": high}).fetchall()
        count = int(row[0][0]) if row else 0
        if count == 0:
            return 0
        day = low // DAY_MS
        days = [day - 1, day] if low % DAY_MS == 0 and set(codes) & set(INTERVAL_CODES) \
            else [day]
        changed_at = store.mark_unsealed(cursor, days)
        corrected = _corrected_latest(store, cursor, key=key, codes=codes, low=low, high=high)

        def apply() -> None:
            for unsealed in days:
                store.unsealed[unsealed] = changed_at
            for code, figures in corrected.items():
                if figures is None:
                    store.latest.pop((key, code), None)
                else:
                    store.latest[(key, code)] = figures

        store.on_commit(apply)
    return count


def _corrected_latest(store: TelemetryStore, cursor: duckdb.DuckDBPyConnection, *, key: int,
                      codes: list[int], low: int, high: int) -> dict[int, list[object] | None]:
    """New latest figures (None: no reading left) of the channels whose first or last
    reading was in [low, high), written to `latest` in the transaction."""
    corrected: dict[int, list[object] | None] = {}
    for code in codes:
        known = store.latest.get((key, code))
        if known is None or not (low <= known[0] < high or low <= known[1] < high):
            continue
        row = cursor.execute(
            "SELECT min(ts), max(ts), arg_max(value, ts) FROM readings"
            " WHERE sensor = $s AND channel = $c", {"s": key, "c": code}).fetchall()[0]
        cursor.execute("DELETE FROM latest WHERE sensor = $s AND channel = $c",
                       {"s": key, "c": code})
        if row[0] is None:
            corrected[code] = None
            continue
        corrected[code] = [int(row[0]), int(row[1]), float(row[2])]
        cursor.execute("INSERT INTO latest VALUES ($s, $c, $first, $last, $value)",
                       {"s": key, "c": code, "first": row[0], "last": row[1], "value": row[2]})
    return corrected
