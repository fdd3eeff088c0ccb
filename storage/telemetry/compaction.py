"""Compaction: each quiet day partition rewritten sorted by (sensor, channel, ts), its hourly
rollup rebuilt (of the readings counted in its hours: storage.telemetry.instants), and the
day sealed, in one transaction per day; then the rollup of each 30-day block it added to is
rewritten sorted by (sensor, channel, hour), so that one sensor's rollup of a block sits in
one or two row groups (a long series reads a few thousand rows). Blocks waiting for that
are kept in the file, so a restart in between still sorts them."""

from __future__ import annotations

from collections.abc import Callable

from storage.telemetry.instants import counted_range_sql, counted_ts_sql
from storage.telemetry.store import DAY_MS, HOUR_MS, TelemetryStore, floor_sql, now_ms

ROLLUP_BLOCK_DAYS = 30


def days_to_compact(store: TelemetryStore, *, quiet_ms: int, now: int | None = None) -> list[int]:
    """Unsealed days that have not changed for `quiet_ms`, oldest first."""
    now = now_ms() if now is None else now
    return sorted(day for day, changed_at in list(store.unsealed.items())
                  if changed_at <= now - quiet_ms)


ROLLUP_SQL = """
SELECT sensor, channel, {hour_of_ts} AS hour, count(*) AS n,
       sum(value) AS total, min(value) AS low, max(value) AS high,
       min(ts) AS first_ts, arg_min(value, ts) AS first_value, max(ts) AS last_ts,
       arg_max(value, ts) AS last_value, arg_min(ts, (value, ts)) AS low_ts,
       arg_max(ts, (value, -ts)) AS high_ts
FROM readings WHERE {counted} GROUP BY ALL ORDER BY sensor, channel, hour
"""


def compact_day(store: TelemetryStore, day: int) -> int | None:
    """Rewrite one day sorted, rebuild its rollup and seal it; returns its reading count, or
    None when the day was written meanwhile (it is compacted once quiet again).

    The sorting and the rollup are computed from a snapshot before the write lock is taken;
    under the lock the day's rows are only swapped, so ingest waits little."""
    low, high = day * DAY_MS, (day + 1) * DAY_MS
    bounds = {"lo": low, "hi": high}
    version = store.unsealed.get(day)
    with store.scratch() as cursor:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        cursor.execute("CREATE TEMP TABLE day_rows AS SELECT * FROM readings"
                       " WHERE ts >= $lo AND ts < $hi ORDER BY sensor, channel, ts", bounds)
        # The day's hours count the readings counted in them (an energy reading stamped at
        # the next midnight, which lies in the next day's rows, counts for 23:00-24:00).
        rollup = ROLLUP_SQL.format(
            hour_of_ts=floor_sql(counted_ts_sql(), HOUR_MS, nonnegative=low >= 0),
            counted=counted_range_sql(low, high))
        cursor.execute(f"CREATE TEMP TABLE day_hourly AS {rollup}")
        cursor.execute("COMMIT")
        with store.writer(cursor):
            if store.unsealed.get(day) != version:
                return None  # written after the snapshot: what was computed is stale
            cursor.execute("DELETE FROM readings WHERE ts >= $lo AND ts < $hi", bounds)
            cursor.execute("INSERT INTO readings SELECT * FROM day_rows")
            cursor.execute("DELETE FROM hourly WHERE hour >= $lo AND hour < $hi", bounds)
            cursor.execute("INSERT INTO hourly BY NAME SELECT * FROM day_hourly")
            row = cursor.execute("SELECT count(*) FROM day_rows").fetchall()[0]
            store.flush_latest(cursor)
            cursor.execute("INSERT OR REPLACE INTO days VALUES ($day, true, $now)",
                           {"day": day, "now": now_ms()})
            cursor.execute("INSERT OR IGNORE INTO unsorted_blocks VALUES ($block)",
                           {"block": day // ROLLUP_BLOCK_DAYS})

            def seal() -> None:
                store.unsealed.pop(day, None)

            store.on_commit(seal)
        cursor.execute("DROP TABLE day_rows")
        cursor.execute("DROP TABLE day_hourly")
    return int(row[0]) if row else 0


def unsorted_blocks(store: TelemetryStore) -> list[int]:
    """The rollup blocks compacted days were added to since they were last sorted."""
    with store.reader() as cursor:
        return [int(row[0]) for row in cursor.execute(
            "SELECT block FROM unsorted_blocks ORDER BY block").fetchall()]


def sort_rollup(store: TelemetryStore, blocks: list[int]) -> None:
    """Rewrite the hourly rollup of these blocks sorted by sensor, channel and hour, one
    transaction per block, which also marks the block sorted. Only the compaction writes the
    rollup, so the block is sorted before the write lock is taken and only swapped under it."""
    for block in blocks:
        bounds = {"lo": block * ROLLUP_BLOCK_DAYS * DAY_MS,
                  "hi": (block + 1) * ROLLUP_BLOCK_DAYS * DAY_MS}
        with store.scratch() as cursor:
            cursor.execute("CREATE TEMP TABLE block_rows AS SELECT * FROM hourly"
                           " WHERE hour >= $lo AND hour < $hi ORDER BY sensor, channel, hour",
                           bounds)
            with store.writer(cursor):
                cursor.execute("DELETE FROM hourly WHERE hour >= $lo AND hour < $hi", bounds)
                cursor.execute("INSERT INTO hourly SELECT * FROM block_rows")
                cursor.execute("DELETE FROM unsorted_blocks WHERE block = $block",
                               {"block": block})
            cursor.execute("DROP TABLE block_rows")


def compact(store: TelemetryStore, *, quiet_ms: int, now: int | None = None,
            stopping: Callable[[], bool] = lambda: False) -> int:
    """Compact every quiet unsealed day, then sort the rollup blocks waiting for it; returns
    how many days were compacted. Stops between days once `stopping()` is true."""
    compacted = 0
    for day in days_to_compact(store, quiet_ms=quiet_ms, now=now):
        if stopping():
            return compacted
        compacted += compact_day(store, day) is not None
    if not stopping():
        sort_rollup(store, unsorted_blocks(store))
    return compacted
