"""The telemetry store: one DuckDB file, opened by the server process only, one writer at a time.

Tables:
- `sensors`: a small integer key per (community, sensor id): readings store the key, not the
  strings, and the same sensor id in two communities is two series, so that a meter's
  history never follows it to another community (`community_id` NULL: a sensor of a file
  written before, not yet given to a community, whose readings nobody reads);
- `readings`: (sensor, channel, ts, value); ts in UTC epoch milliseconds; identity is
  (sensor, channel, ts), kept unique by every write;
- `latest`: per sensor and channel, the first and last reading time and the latest value, as
  of the last compaction; the store keeps the current figures in memory and, on opening, adds
  those of the days changed since (every write marks its days unsealed in its transaction);
- `days`: per UTC day with readings, whether it is sealed (compacted: its rows sorted by
  sensor, channel and ts, and its hourly rollup current) and when it last changed;
- `hourly`: per sensor, channel and UTC hour of sealed days: count, sum, min, max, first and
  last reading, the instants of the min and the max, so that long aggregates, the energy
  balance and downsampled series read rollups, not raw rows;
- `unsorted_blocks`: the 30-day blocks of `hourly` that a compaction added to and that wait
  to be rewritten sorted by sensor (answers are right meanwhile, long series slower).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from storage.telemetry.errors import TelemetryUnavailable
from storage.telemetry.instants import END_TS_MS, INTERVAL_LIST, MIN_TS_MS, accepted_sql

logger = logging.getLogger("commonwatt.telemetry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sensors (
    sensor INTEGER PRIMARY KEY,
    community_id INTEGER,
    sensor_id VARCHAR NOT NULL,
    UNIQUE (community_id, sensor_id)
);
CREATE TABLE IF NOT EXISTS readings (
    sensor INTEGER NOT NULL,
    channel UTINYINT NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    sensor INTEGER NOT NULL,
    channel UTINYINT NOT NULL,
    first_ts BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS days (
    day BIGINT PRIMARY KEY,
    sealed BOOLEAN NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS hourly (
    sensor INTEGER NOT NULL,
    channel UTINYINT NOT NULL,
    hour BIGINT NOT NULL,
    n BIGINT NOT NULL,
    total DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    first_ts BIGINT NOT NULL,
    first_value DOUBLE NOT NULL,
    last_ts BIGINT NOT NULL,
    last_value DOUBLE NOT NULL,
    low_ts BIGINT,
    high_ts BIGINT
);
CREATE TABLE IF NOT EXISTS unsorted_blocks (
    block BIGINT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS upgrades (
    name VARCHAR PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS readings_out_of_range (
    sensor INTEGER NOT NULL,
    channel UTINYINT NOT NULL,
    ts BIGINT NOT NULL,
    value DOUBLE NOT NULL
);
"""
# Upgrades of a file's contents, each run once (its name is then kept in `upgrades`):
# - readings outside the accepted instants (stored before they were refused, and which no
#   answer could write) are moved to `readings_out_of_range`, read by nothing, and the
#   latest figures are rebuilt without them;
# - the hourly rollup counts an energy reading for the hour holding ts - 1 ms: every
#   rollup is rebuilt by the compaction, and a day holding only an energy reading stamped
#   at the next midnight is listed, so that its rollup is built.
CONTENT_UPGRADES = (
    ("readings-in-range", f"""
INSERT INTO readings_out_of_range SELECT * FROM readings WHERE NOT {accepted_sql("ts")};
DELETE FROM readings WHERE NOT {accepted_sql("ts")};
DELETE FROM hourly WHERE hour < {MIN_TS_MS} OR hour >= {END_TS_MS};
DELETE FROM days WHERE day < {MIN_TS_MS // 86_400_000} OR day >= {END_TS_MS // 86_400_000};
DELETE FROM latest;
INSERT INTO latest SELECT sensor, channel, min(ts), max(ts), arg_max(value, ts)
FROM readings GROUP BY ALL;
"""),
    ("energy-counts-before-its-ts", f"""
INSERT OR IGNORE INTO days
SELECT DISTINCT (ts - 1 - (((ts - 1) % 86400000) + 86400000) % 86400000) // 86400000, false,
       0
FROM readings WHERE channel IN ({INTERVAL_LIST}) AND ts % 86400000 = 0;
DELETE FROM hourly;
DELETE FROM unsorted_blocks;
UPDATE days SET sealed = false;
"""),
)
# A store written before the hourly rollup had low_ts and high_ts (the instants of the
# lowest and highest value, which downsampled series read): the columns are added and every
# day is unsealed, so the compaction rebuilds each rollup.
ROLLUP_EXTREMES_UPGRADE = """
ALTER TABLE hourly ADD COLUMN low_ts BIGINT;
ALTER TABLE hourly ADD COLUMN high_ts BIGINT;
DELETE FROM hourly;
UPDATE days SET sealed = false;
"""
# A store written before sensors were keyed by community: each sensor keeps its key and its
# readings, without a community until `assign_communities` gives it one.
SENSOR_COMMUNITY_UPGRADE = """
CREATE TABLE sensors_keyed (
    sensor INTEGER PRIMARY KEY,
    community_id INTEGER,
    sensor_id VARCHAR NOT NULL,
    UNIQUE (community_id, sensor_id)
);
INSERT INTO sensors_keyed SELECT sensor, NULL, sensor_id FROM sensors;
DROP TABLE sensors;
ALTER TABLE sensors_keyed RENAME TO sensors;
"""
SensorRef = tuple[int, str]
"""A sensor as the store keys it: (community id, sensor id)."""


@dataclass(frozen=True)
class SeriesStats:
    """Per (sensor, channel) of a batch: its first and last ts and the value at the last."""

    sensor: np.ndarray
    channel: np.ndarray
    first_ts: np.ndarray
    last_ts: np.ndarray
    last_value: np.ndarray


DAY_MS = 86_400_000
HOUR_MS = 3_600_000
Item = TypeVar("Item")
Result = TypeVar("Result")


class _Ticket(Generic[Item, Result]):
    """One item waiting to be written in a group, then its result or the group's error."""

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None


def floor_sql(column: str, unit: int, *, nonnegative: bool = False) -> str:
    """SQL for the greatest multiple of `unit` not above the integer `column`. DuckDB's //
    and % truncate toward zero, which would put an instant before 1970 in the next hour, so
    they serve as they are only where the column is known not to be negative (a third
    faster over many rows)."""
    if nonnegative:
        return f"({column} // {unit} * {unit})"
    return f"({column} - (({column} % {unit}) + {unit}) % {unit})"


def confine_file_access(connection: duckdb.DuckDBPyConnection, directory: Path) -> None:
    """Let SQL on `connection` read and write files in `directory` only (uploads are staged,
    exports written there), load no extension, and change neither setting again."""
    quoted = "'" + str(directory).replace("'", "''") + "/'"
    connection.execute(f"SET allowed_directories = [{quoted}]")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


SPOOL_PREFIXES = ("upload-", "export-")


def sweep_temp_files(directory: Path) -> int:
    """Delete spooled uploads and exports left in `directory`; how many."""
    removed = 0
    for entry in directory.iterdir():
        if entry.name.startswith(SPOOL_PREFIXES) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def now_ms() -> int:
    """The current instant in UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


class TelemetryStore:
    """The open telemetry database: readers in parallel, writes one at a time."""

    def __init__(self, path: Path, *, memory_limit_mb: int = 1024, threads: int = 2) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.temp_dir = (path.parent / "telemetry.tmp").resolve()
        self.temp_dir.mkdir(exist_ok=True)
        try:
            self._connection = duckdb.connect(str(path), config={
                "memory_limit": f"{memory_limit_mb}MB",
                "threads": threads,
                "temp_directory": str(self.temp_dir),
                "preserve_insertion_order": True,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
            })
            confine_file_access(self._connection, self.temp_dir)
        except duckdb.Error as error:
            # DuckDB's message names the file and the process holding its lock: log only.
            logging.getLogger("commonwatt").error("telemetry store %s cannot be opened: %s",
                                                  path, error)
            raise TelemetryUnavailable(
                "the telemetry store cannot be opened (another process may hold it); "
                "the server log says more") from error
        # The file is ours now (DuckDB locks it): what an earlier run left in the temporary
        # directory (an upload or export cut short by a crash) is nobody's.
        sweep_temp_files(self.temp_dir)
        self._write_lock = threading.Lock()
        self._group = threading.Condition()
        self._waiting: list[_Ticket[Any, Any]] = []
        self._leading = False
        self._on_commit: list[Callable[[], None]] = []
        self._closed = False
        self._connection.execute(SCHEMA)
        self._upgrade()
        self._sensor_keys: dict[SensorRef, int] = {
            (int(community_id), str(sensor_id)): int(sensor)
            for community_id, sensor_id, sensor in self._connection.execute(
                "SELECT community_id, sensor_id, sensor FROM sensors"
                " WHERE community_id IS NOT NULL").fetchall()}
        # (sensor, channel) -> [first_ts, last_ts, latest value]; unsealed day -> changed_at
        self.latest: dict[tuple[int, int], list[Any]] = {}
        self.unsealed: dict[int, int] = dict(self._connection.execute(
            "SELECT day, changed_at FROM days WHERE NOT sealed").fetchall())
        self.last_change_ms = max(self.unsealed.values(), default=0)  # set under the lock
        self._load_latest()

    def _upgrade(self) -> None:
        for table, column, upgrade in (("hourly", "low_ts", ROLLUP_EXTREMES_UPGRADE),
                                       ("sensors", "community_id", SENSOR_COMMUNITY_UPGRADE)):
            if column not in self._columns(table):
                self._connection.execute("BEGIN TRANSACTION")
                self._connection.execute(upgrade)
                self._connection.execute("COMMIT")
        done = {str(row[0]) for row in self._connection.execute(
            "SELECT name FROM upgrades").fetchall()}
        for name, upgrade in CONTENT_UPGRADES:
            if name not in done:
                self._connection.execute("BEGIN TRANSACTION")
                self._connection.execute(upgrade)
                self._connection.execute("INSERT INTO upgrades VALUES ($name)", {"name": name})
                self._connection.execute("COMMIT")
        moved = self._connection.execute("SELECT count(*) FROM readings_out_of_range").fetchall()
        if moved and moved[0][0]:
            logger.warning("telemetry: %s readings outside the accepted instants are kept in"
                           " readings_out_of_range and read by nothing", moved[0][0])

    def _columns(self, table: str) -> set[str]:
        return {str(row[0]) for row in self._connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database()"
            " AND schema_name = 'main' AND table_name = $table", {"table": table}).fetchall()}

    def _load_latest(self) -> None:
        rows = self._connection.execute("SELECT sensor, channel, first_ts, ts, value FROM latest")
        for sensor, channel, first_ts, ts, value in rows.fetchall():
            self.latest[(sensor, channel)] = [first_ts, ts, value]
        for day in self.unsealed:
            changed = self._connection.execute(
                "SELECT sensor, channel, min(ts), max(ts), arg_max(value, ts) FROM readings"
                " WHERE ts >= $lo AND ts < $hi GROUP BY ALL",
                {"lo": day * DAY_MS, "hi": (day + 1) * DAY_MS}).fetchall()
            for sensor, channel, first_ts, ts, value in changed:
                known = self.latest.get((sensor, channel))
                if known is None:
                    self.latest[(sensor, channel)] = [first_ts, ts, value]
                    continue
                known[0] = min(known[0], first_ts)
                if ts >= known[1]:
                    known[1], known[2] = ts, value

    def flush_latest(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Write the in-memory latest figures into `latest` (in the writer's transaction)."""
        items = list(self.latest.items())
        table = pa.table({
            "sensor": pa.array([key[0] for key, _ in items], pa.int32()),
            "channel": pa.array([key[1] for key, _ in items], pa.uint8()),
            "first_ts": pa.array([value[0] for _, value in items], pa.int64()),
            "ts": pa.array([value[1] for _, value in items], pa.int64()),
            "value": pa.array([value[2] for _, value in items], pa.float64()),
        })
        cursor.execute("DELETE FROM latest")
        cursor.register("latest_now", table)
        cursor.execute("INSERT INTO latest SELECT * FROM latest_now")
        cursor.unregister("latest_now")

    # -- connections -------------------------------------------------------------------

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor reading one consistent snapshot (its own transaction); what a query
        registers on it (Arrow tables) goes with it."""
        self._check_open()
        cursor = self._connection.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            yield cursor
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    @contextmanager
    def scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private cursor (its own temporary tables, dropped with it) for work done before
        taking the write lock: staging and checking an upload. `writer(cursor)` may then
        write from it."""
        self._check_open()
        cursor = self._connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def writer(self, cursor: duckdb.DuckDBPyConnection | None = None
               ) -> Iterator[duckdb.DuckDBPyConnection]:
        """The one writing cursor (a new one, or a scratch cursor given), in a transaction
        that commits (durably) when the block succeeds and rolls back otherwise."""
        self._check_open()
        with self._write_lock:
            self._on_commit = []
            own = cursor is None
            writing = self._connection.cursor() if cursor is None else cursor
            try:
                writing.execute("BEGIN TRANSACTION")
                try:
                    yield writing
                except BaseException:
                    writing.execute("ROLLBACK")
                    raise
                writing.execute("COMMIT")
                self._apply_on_commit()
            finally:
                self._on_commit = []
                if own:
                    writing.close()

    def write_together(self, item: Item,
                       write_group: Callable[[duckdb.DuckDBPyConnection, list[Item]],
                                             list[Result]]) -> Result:
        """Write `item` with the items other threads hand in meanwhile, in one transaction
        and one durable commit (group commit): the first thread to arrive writes every
        waiting item, the others wait for its commit. `write_group` gets the items in
        arrival order and returns one result each. If a group's write fails before its
        commit, each of its items is written again alone, so that an item's fault fails
        that item only. The leader's `write_group` writes the others' items too, so every
        caller must hand in the same kind of item and the same writing."""
        self._check_open()
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._group:
            self._waiting.append(ticket)
            while self._leading and not ticket.done:
                self._group.wait()
            if not ticket.done:
                self._leading = True
                group, self._waiting = self._waiting, []
        if ticket.done:
            if ticket.error is not None:
                raise ticket.error
            return ticket.result  # type: ignore[return-value]
        try:
            outcomes = self._write_group(group, write_group)
        except BaseException as failure:  # not an Exception (an interrupt): nothing retried
            outcomes = [(None, failure)] * len(group)
        with self._group:
            for waiting, (result, error) in zip(group, outcomes, strict=True):
                waiting.result, waiting.error = result, error
                waiting.done = True
            self._leading = False
            self._group.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]

    def _write_group(self, group: list[_Ticket[Item, Result]],
                     write_group: Callable[[duckdb.DuckDBPyConnection, list[Item]],
                                           list[Result]]
                     ) -> list[tuple[Result | None, BaseException | None]]:
        """Each ticket's result or error: the group in one transaction, or, when that fails
        before committing, each ticket in its own."""
        committed = False

        def note_commit() -> None:
            nonlocal committed
            committed = True

        try:
            with self.writer() as cursor:
                self.on_commit(note_commit)
                results = write_group(cursor, [waiting.item for waiting in group])
            return [(result, None) for result in results]
        except Exception as failure:
            if committed or len(group) == 1:
                return [(None, failure)] * len(group)
        outcomes: list[tuple[Result | None, BaseException | None]] = []
        for waiting in group:
            try:
                with self.writer() as cursor:
                    outcomes.append((write_group(cursor, [waiting.item])[0], None))
            except Exception as failure:
                outcomes.append((None, failure))
        return outcomes

    def _apply_on_commit(self) -> None:
        """Run what waits for the commit. Once committed, a write has succeeded: a failure
        here is logged (the in-memory figures may then lag the file until the next
        opening) and never turns a stored write into an error."""
        for apply in self._on_commit:
            try:
                apply()
            except Exception:
                logger.exception("telemetry: applying a committed write in memory failed")

    def on_commit(self, apply: Callable[[], None]) -> None:
        """Run `apply` once the current write commits, before the next write starts: how the
        in-memory figures follow the file."""
        self._on_commit.append(apply)

    def _check_open(self) -> None:
        if self._closed:
            raise TelemetryUnavailable("the telemetry store is closed")

    def close(self) -> None:
        """Checkpoint and close; later calls fail with TelemetryUnavailable."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._connection.execute("CHECKPOINT")
            finally:
                self._connection.close()

    # -- sensors ---------------------------------------------------------------------

    def sensor_keys(self, sensors: Mapping[str, int]) -> dict[str, int]:
        """The keys of those sensors (sensor id -> the community whose series is meant) that
        have ever had a reading in that community."""
        keys = self._sensor_keys
        return {sensor_id: keys[(community_id, sensor_id)]
                for sensor_id, community_id in sensors.items()
                if (community_id, sensor_id) in keys}

    def ensure_sensor_keys(self, cursor: duckdb.DuckDBPyConnection,
                           sensors: Collection[SensorRef]) -> dict[SensorRef, int]:
        """Keys for these (community, sensor id), new ones inserted in the writer's
        transaction. The cache learns them only through `remember_sensor_keys`, after the
        commit."""
        known = self._sensor_keys
        missing = sorted({ref for ref in sensors if ref not in known})
        created: dict[SensorRef, int] = {}
        if missing:
            start = cursor.execute("SELECT coalesce(max(sensor), 0) FROM sensors").fetchall()[0]
            first = int(start[0]) + 1 if start else 1
            created = {ref: first + offset for offset, ref in enumerate(missing)}
            cursor.register("new_sensors", pa.table({
                "sensor": pa.array(list(created.values()), pa.int32()),
                "community_id": pa.array([ref[0] for ref in created], pa.int32()),
                "sensor_id": pa.array([ref[1] for ref in created], pa.string())}))
            cursor.execute("INSERT INTO sensors SELECT sensor, community_id, sensor_id"
                           " FROM new_sensors")
            cursor.unregister("new_sensors")
        return {**{ref: known[ref] for ref in sensors if ref in known}, **created}

    def remember_sensor_keys(self, keys: Mapping[SensorRef, int]) -> None:
        """Cache sensor keys whose insert has committed."""
        self._sensor_keys.update(keys)

    def unassigned_sensor_ids(self) -> list[str]:
        """The sensors of a file written before sensors were keyed by community that no
        community has been given yet (their readings are read by nobody)."""
        with self.reader() as cursor:
            return [str(row[0]) for row in cursor.execute(
                "SELECT sensor_id FROM sensors WHERE community_id IS NULL"
                " ORDER BY sensor_id").fetchall()]

    def assign_communities(self, owners: Mapping[str, int]) -> dict[str, int]:
        """Give unassigned sensors (sensor id -> community id) their community, with their
        readings; one whose community has a series of that id already stays unassigned.
        Returns those assigned."""
        if not owners:
            return {}
        with self.writer() as cursor:
            cursor.register("owners", pa.table({
                "sensor_id": pa.array(list(owners), pa.string()),
                "community_id": pa.array(list(owners.values()), pa.int32())}))
            assigned = cursor.execute("""
                UPDATE sensors SET community_id = o.community_id FROM owners o
                WHERE sensors.community_id IS NULL AND sensors.sensor_id = o.sensor_id
                  AND NOT EXISTS (SELECT 1 FROM sensors s WHERE s.community_id = o.community_id
                                  AND s.sensor_id = o.sensor_id)
                RETURNING sensors.community_id, sensors.sensor_id, sensors.sensor""").fetchall()
            cursor.unregister("owners")
            keys = {(int(community_id), str(sensor_id)): int(sensor)
                    for community_id, sensor_id, sensor in assigned}
            self.on_commit(lambda: self.remember_sensor_keys(keys))
        return {sensor_id: community_id for community_id, sensor_id in keys}

    def remember_series(self, stats: SeriesStats, days: list[int], changed_at: int) -> None:
        """Fold a committed batch's per-series figures and days into the in-memory state."""
        latest = self.latest
        for sensor, channel, first_ts, last_ts, value in zip(
                stats.sensor.tolist(), stats.channel.tolist(), stats.first_ts.tolist(),
                stats.last_ts.tolist(), stats.last_value.tolist(), strict=True):
            known = latest.get((sensor, channel))
            if known is None:
                latest[(sensor, channel)] = [first_ts, last_ts, value]
                continue
            if first_ts < known[0]:
                known[0] = first_ts
            if last_ts >= known[1]:
                known[1], known[2] = last_ts, value
        for day in days:
            self.unsealed[day] = changed_at

    def mark_unsealed(self, cursor: duckdb.DuckDBPyConnection, days: list[int]) -> int:
        """Mark changed days unsealed (in the transaction, and in memory before the commit:
        readers then read those days raw); returns the instant of the change, which the
        caller records as each day's version once committed."""
        # Strictly increasing: the compaction tells by it whether a day changed meanwhile.
        changed_at = self.last_change_ms = max(now_ms(), self.last_change_ms + 1)
        newly_unsealed = [day for day in days if day not in self.unsealed]
        if newly_unsealed:
            cursor.executemany("INSERT OR REPLACE INTO days VALUES (?, false, ?)",
                               [(day, changed_at) for day in newly_unsealed])
            for day in newly_unsealed:
                self.unsealed.setdefault(day, changed_at)
        return changed_at

    def sensor_ids_by_key(self, keys: list[int]) -> dict[int, str]:
        """Sensor ids by key."""
        wanted = set(keys)
        return {key: ref[1] for ref, key in self._sensor_keys.items() if key in wanted}

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Whether the store answers, its size and the time of its newest reading."""
        try:
            with self.reader() as cursor:
                row = cursor.execute(
                    "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM sensors),"
                    " (SELECT count(*) FROM days WHERE NOT sealed),"
                    " (SELECT count(*) FROM unsorted_blocks)").fetchall()[0]
        except TelemetryUnavailable as error:
            return {"status": "error", "error": error.detail}
        except duckdb.Error as error:
            return {"status": "error", "error": type(error).__name__}
        assert row is not None
        last = max((value[1] for value in list(self.latest.values())), default=None)
        return {"status": "ok", "readings": int(row[0]), "sensors": int(row[1]),
                "last_reading_ms": last, "unsealed_days": int(row[2]),
                "unsorted_rollup_blocks": int(row[3])}
