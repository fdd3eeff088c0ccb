"""Compaction: each quiet day partition rewritten sorted by (sensor, channel, ts), its hourly
rollup rebuilt, and the day sealed, in one transaction per day; then the rollup of each
30-day block touched is rewritten sorted by (sensor, channel, hour), so that one sensor's
rollup of a block sits in one or two row groups (a long series reads a few thousand rows)."""

from __future__ import annotations

import logging
import threading

from storage.telemetry.store import DAY_MS, HOUR_MS, TelemetryStore, now_ms

ROLLUP_BLOCK_DAYS = 30

logger = logging.getLogger("commonwatt.telemetry")


def days_to_compact(store: TelemetryStore, *, quiet_ms: int, now: int | None = None) -> list[int]:
    """Unsealed days that have not changed for `quiet_ms`, oldest first."""
    now = now_ms() if now is None else now
    return sorted(day for day, changed_at in list(store.unsealed.items())
                  if changed_at <= now - quiet_ms)


def compact_day(store: TelemetryStore, day: int) -> int:
    """Rewrite one day sorted, rebuild its rollup and seal it; returns its reading count."""
    low, high = day * DAY_MS, (day + 1) * DAY_MS
    with store.writer() as cursor:
        bounds = {"lo": low, "hi": high}
        cursor.execute("CREATE OR REPLACE TEMP TABLE day_rows AS SELECT * FROM readings"
                       " WHERE ts >= $lo AND ts < $hi ORDER BY sensor, channel, ts", bounds)
        cursor.execute("DELETE FROM readings WHERE ts >= $lo AND ts < $hi", bounds)
        cursor.execute("INSERT INTO readings SELECT * FROM day_rows")
        cursor.execute("DELETE FROM hourly WHERE hour >= $lo AND hour < $hi", bounds)
        cursor.execute(f"""
            INSERT INTO hourly BY NAME
            SELECT sensor, channel, ts // {HOUR_MS} * {HOUR_MS} AS hour, count(*) AS n,
                   sum(value) AS total, min(value) AS low, max(value) AS high,
                   min(ts) AS first_ts, arg_min(value, ts) AS first_value, max(ts) AS last_ts,
                   arg_max(value, ts) AS last_value, arg_min(ts, (value, ts)) AS low_ts,
                   arg_max(ts, (value, -ts)) AS high_ts
            FROM day_rows GROUP BY ALL ORDER BY sensor, channel, hour""")
        row = cursor.execute("SELECT count(*) FROM day_rows").fetchall()[0]
        cursor.execute("DROP TABLE day_rows")
        store.flush_latest(cursor)
        cursor.execute("INSERT OR REPLACE INTO days VALUES ($day, true, $now)",
                       {"day": day, "now": now_ms()})

        def seal() -> None:
            store.unsealed.pop(day, None)

        store.on_commit(seal)
    return int(row[0]) if row else 0


def sort_rollup(store: TelemetryStore, days: list[int]) -> None:
    """Rewrite the hourly rollup of the blocks holding these days sorted by sensor, channel
    and hour, one transaction per block."""
    for block in sorted({day // ROLLUP_BLOCK_DAYS for day in days}):
        bounds = {"lo": block * ROLLUP_BLOCK_DAYS * DAY_MS,
                  "hi": (block + 1) * ROLLUP_BLOCK_DAYS * DAY_MS}
        with store.writer() as cursor:
            cursor.execute("CREATE OR REPLACE TEMP TABLE block_rows AS SELECT * FROM hourly"
                           " WHERE hour >= $lo AND hour < $hi ORDER BY sensor, channel, hour",
                           bounds)
            cursor.execute("DELETE FROM hourly WHERE hour >= $lo AND hour < $hi", bounds)
            cursor.execute("INSERT INTO hourly SELECT * FROM block_rows")
            cursor.execute("DROP TABLE block_rows")


def compact(store: TelemetryStore, *, quiet_ms: int, now: int | None = None) -> int:
    """Compact every quiet unsealed day, then sort their rollup blocks; returns how many
    days were compacted."""
    days = days_to_compact(store, quiet_ms=quiet_ms, now=now)
    for day in days:
        compact_day(store, day)
    sort_rollup(store, days)
    return len(days)


class Compactor:
    """A background thread of the server process compacting quiet days every `interval_s`.

    Not a Dramatiq actor: the DuckDB file may be opened by one process only (the server), so
    a worker process could not reach it.
    """

    def __init__(self, store: TelemetryStore, *, interval_s: float, quiet_s: float) -> None:
        self.store = store
        self.interval_s = interval_s
        self.quiet_ms = int(quiet_s * 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry-compactor",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                compacted = []
                for day in days_to_compact(self.store, quiet_ms=self.quiet_ms):
                    if self._stop.is_set():
                        break
                    compact_day(self.store, day)
                    compacted.append(day)
                if not self._stop.is_set():
                    sort_rollup(self.store, compacted)
            except Exception:
                logger.exception("telemetry compaction failed")
