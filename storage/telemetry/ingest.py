"""Ingest: a batch of readings checked column-wise, then stored all or nothing, idempotently.

Every source (a JSON batch, a CSV, NDJSON or Parquet upload) becomes one staged table of
(idx, sensor_id, channel, ts, value), ts in UTC epoch milliseconds and NULL where it was
missing, malformed or without an offset. One vectorised query finds the refused readings;
then one transaction replaces the stored readings of the same identity and appends the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, NoReturn

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.telemetry.channels import CATALOG
from storage.telemetry.errors import MalformedUpload, ReadingsRefused, TooManyReadings
from storage.telemetry.instants import (
    END_TS_MS,
    END_TS_TEXT,
    MIN_TS_MS,
    MIN_TS_TEXT,
    accepted_sql,
    counted_days,
    counted_ts_sql,
)
from storage.telemetry.store import (
    DAY_MS,
    SensorRef,
    SeriesStats,
    TelemetryStore,
    floor_sql,
    now_ms,
)

MAX_REFUSALS = 100
MAX_JSON_READINGS = 10_000
READING_KEYS = frozenset({"sensor_id", "channel", "ts", "value"})
NUMBER_TYPES = frozenset({float, int})  # bool, a subclass of int, is not a number here
CHANNEL_TABLE = pa.table({"name": [channel.name for channel in CATALOG],
                          "code": pa.array([channel.code for channel in CATALOG], pa.uint8())})
REFUSAL_MESSAGES = {
    "unknown_sensor": "unknown sensor, or one the caller may not write",
    "unknown_channel": "not a channel of the catalog",
    "invalid_timestamp": "missing, malformed, without a UTC offset, or outside"
                         f" [{MIN_TS_TEXT}, {END_TS_TEXT})",
    "future_timestamp": "further in the future than the server accepts",
    "invalid_value": "missing, not a number, or not finite",
}
# The staged source must give idx, sensor_id, channel, ts (epoch ms or NULL) and value.
REFUSALS_SQL = """
SELECT idx, code, count(*) OVER () AS refused FROM (
    SELECT idx, CASE
        WHEN sensor_id IS NULL OR sensor_id NOT IN (SELECT sensor_id FROM allowed_sensors)
            THEN 'unknown_sensor'
        WHEN channel IS NULL OR channel NOT IN (SELECT name FROM channel_codes)
            THEN 'unknown_channel'
        WHEN ts IS NULL OR NOT {accepted} THEN 'invalid_timestamp'
        WHEN ts > $max_ts THEN 'future_timestamp'
        WHEN value IS NULL OR NOT isfinite(value) THEN 'invalid_value'
    END AS code
    FROM staged
) WHERE code IS NOT NULL
ORDER BY idx
LIMIT {limit}
""".replace("{accepted}", accepted_sql("ts"))
@dataclass(frozen=True)
class IngestResult:
    """What a stored batch did."""

    accepted: int
    replaced: int
    sensors: int
    first_ms: int
    last_ms: int
    # The stored readings (sensor_id, channel, ts, value), when the caller asked to keep them.
    readings: pa.Table | None = None


Authorize = Callable[[list[str]], Mapping[str, int]]
"""Given the distinct sensor ids of a batch, those the caller may write, each with the
community whose series it writes (that of the sensor's active holding)."""


def _allowed(authorize: Authorize, sensor_ids: list[str]) -> dict[str, int]:
    """The writable sensors of a batch, by id, each with the community written to."""
    granted = authorize(sensor_ids)
    return {sensor_id: int(granted[sensor_id])
            for sensor_id in sorted(set(sensor_ids)) if sensor_id in granted}


# -- JSON ----------------------------------------------------------------------------


def table_from_json(document: Any) -> pa.Table:
    """The staged columns of a JSON batch (row or columnar form); MalformedUpload when its
    shape is not the documented one (the body is not checked item by item by JSON Schema)."""
    if not isinstance(document, dict):
        raise MalformedUpload("body: expected an object, in the row or the columnar form")
    if set(document) == {"readings"}:
        rows = document["readings"]
        if not isinstance(rows, list) or not rows:
            raise MalformedUpload("body/readings: expected a non-empty array")
        _check_size(len(rows), "body/readings")
        # Checked in C (map) first; row by row only to name the first bad one.
        if set(map(type, rows)) != {dict} or set(map(len, rows)) != {len(READING_KEYS)}:
            _refuse_first_bad_row(rows)
        try:
            columns = {name: list(map(itemgetter(name), rows)) for name in READING_KEYS}
        except KeyError:
            _refuse_first_bad_row(rows)
        prefix = "body/readings/{index}/{name}"
    elif set(document) == READING_KEYS:
        columns = dict(document)
        for name in READING_KEYS:
            if not isinstance(columns[name], (list, str)) or (
                    isinstance(columns[name], str) and name in ("ts", "value")):
                raise MalformedUpload(f"body/{name}: expected an array"
                                      + (" or a string" if name in ("sensor_id", "channel")
                                         else ""))
        lengths = {len(value) for value in columns.values() if isinstance(value, list)}
        for name in ("ts", "value"):
            if not isinstance(columns[name], list):
                raise MalformedUpload(f"body/{name}: expected an array")
        if len(lengths) != 1:
            raise MalformedUpload("body: the arrays must have one and the same length")
        count = lengths.pop()
        if count == 0:
            raise MalformedUpload("body/ts: expected a non-empty array")
        _check_size(count, "body/ts")
        for name in ("sensor_id", "channel"):
            if isinstance(columns[name], str):
                columns[name] = [columns[name]] * count
        prefix = "body/{name}/{index}"
    else:
        raise MalformedUpload(
            "body: expected the row form {readings: [...]} or the columnar form "
            "{sensor_id, channel, ts, value}, with no other properties")
    return _arrow_columns(columns, prefix)


def _refuse_first_bad_row(rows: list[Any]) -> NoReturn:
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or row.keys() != READING_KEYS:
            raise MalformedUpload(f"body/readings/{index}: expected an object with exactly "
                                  "sensor_id, channel, ts and value")
    raise AssertionError("no bad row")  # pragma: no cover - the callers saw one


def _check_size(count: int, pointer: str) -> None:
    if count > MAX_JSON_READINGS:
        raise MalformedUpload(f"{pointer}: at most {MAX_JSON_READINGS} readings per JSON batch;"
                              " send more as CSV, NDJSON or Parquet")


def _arrow_columns(columns: dict[str, Any], prefix: str) -> pa.Table:
    # The types of a column are collected in C (map); one by one only to name a bad item.
    for name in ("sensor_id", "channel", "ts"):
        values = columns[name]
        if set(map(type, values)) != {str}:
            index = next(i for i, value in enumerate(values) if type(value) is not str)
            raise MalformedUpload(prefix.format(index=index, name=name) + ": expected a string")
    values = columns["value"]
    if not set(map(type, values)) <= NUMBER_TYPES:
        index = next(i for i, value in enumerate(values) if type(value) not in NUMBER_TYPES)
        raise MalformedUpload(prefix.format(index=index, name="value") + ": expected a number")
    try:
        value_array = pa.array(values, pa.float64())
    except (pa.ArrowInvalid, OverflowError):
        value_array = pa.array([_as_float(value) for value in values], pa.float64())
    return pa.table({
        "idx": pa.array(range(len(values)), pa.int64()),
        "sensor_id": pa.array(columns["sensor_id"], pa.string()),
        "channel": pa.array(columns["channel"], pa.string()),
        "ts": parse_instants(columns["ts"]),
        "value": value_array,
    })


def _as_float(value: float | int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf  # an integer beyond a double: refused as not finite


def parse_instants(texts: list[str]) -> pa.Array:
    """ISO 8601 instants as UTC epoch milliseconds; null where one is malformed or has no
    offset. Vectorised by Arrow; one by one only when some value fails."""
    strings = pa.array(texts, pa.string())
    try:
        instants = strings.cast(pa.timestamp("ns", tz="UTC"))
        return _epoch_ms(instants)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_parse_instant(text) for text in texts], pa.int64())


def _epoch_ms(instants: pa.Array) -> pa.Array:
    nanos = instants.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return pa.array(nanos // 1_000_000, pa.int64())  # floored, before 1970 too


def _parse_instant(text: str) -> int | None:
    if len(text) > 40:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None or instant.utcoffset() is None:
        return None
    return math.floor(instant.timestamp() * 1000)


# -- uploads -------------------------------------------------------------------------

UPLOAD_FORMATS = {"text/csv": "csv", "application/x-ndjson": "ndjson",
                  "application/vnd.apache.parquet": "parquet"}
# The value column's types read as numbers (DuckDB's names; DECIMAL(p, s) by its prefix).
NUMBER_COLUMN_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                       "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE",
                       "DECIMAL")
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/[^\s'\"]+")
# Errors of reading an upload: DuckDB's (some readers raise its base class, such as a
# Parquet footer's "Footer length error") and Arrow's, except the store's own faults.
READ_ERRORS = (duckdb.Error, pa.ArrowException)
STORE_FAULTS = (duckdb.PermissionException, duckdb.OutOfMemoryException,
                duckdb.TransactionException, duckdb.InternalException, duckdb.FatalException,
                duckdb.InterruptException)
_TEXT_INSTANT = (
    "CASE WHEN regexp_matches(CAST({col} AS VARCHAR),"
    r" '^\d{{4}}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{{1,9}})?)?(Z|z|[+-]\d\d(:?\d\d)?)$')"
    " THEN epoch_ms(TRY_CAST(CAST({col} AS VARCHAR) AS TIMESTAMPTZ)) END"
)


def _upload_source(cursor: duckdb.DuckDBPyConnection, path: Path, kind: str) -> str:
    """The SELECT that stages an uploaded file; MalformedUpload when it cannot be read."""
    quoted = "'" + str(path).replace("'", "''") + "'"
    if kind == "csv":
        reader = (f"read_csv({quoted}, header = true, all_varchar = true, strict_mode = true,"
                  " auto_detect = true, sample_size = 20480)")
    elif kind == "ndjson":
        reader = (f"read_json({quoted}, format = 'newline_delimited', records = true,"
                  " columns = {sensor_id: 'VARCHAR', channel: 'VARCHAR', ts: 'VARCHAR',"
                  " value: 'VARCHAR'})")
    else:
        reader = f"read_parquet({quoted})"
    try:
        described = cursor.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except READ_ERRORS as error:
        if isinstance(error, STORE_FAULTS):
            raise
        raise unreadable(kind, error, path) from error
    types = {str(row[0]): str(row[1]).upper() for row in described}
    missing = sorted(READING_KEYS - set(types))
    if missing:
        raise MalformedUpload(f"the {kind} upload lacks the column(s) {', '.join(missing)}; "
                              "expected sensor_id, channel, ts and value")
    extra = sorted(set(types) - READING_KEYS)
    if extra:
        raise MalformedUpload(f"the {kind} upload has unknown column(s) {', '.join(extra)}; "
                              "expected sensor_id, channel, ts and value")
    ts_type = types["ts"]
    arrow_ts = _parquet_instants(cursor, path) if kind == "parquet" else None
    if arrow_ts is not None:
        ts_expr = arrow_ts
    elif ts_type.startswith("TIMESTAMP WITH TIME ZONE"):
        ts_expr = "epoch_ms(ts)"
    elif ts_type.startswith("TIMESTAMP") or ts_type == "DATE":
        ts_expr = "CAST(NULL AS BIGINT)"  # an instant without a UTC offset: refused
    else:
        ts_expr = _TEXT_INSTANT.format(col="ts")
    if types["value"] in ("VARCHAR", "BLOB") or not types["value"]:
        number = "TRY_CAST(value AS DOUBLE)"
    elif types["value"].startswith(NUMBER_COLUMN_TYPES):
        number = "CAST(value AS DOUBLE)"
    else:
        raise MalformedUpload(f"the {kind} upload's column value has the type "
                              f"{types['value'][:60]}; expected numbers (or text holding them)")
    if kind == "parquet":
        row_index = "file_row_number"
        reader = reader[:-1] + ", file_row_number = true)"
        if arrow_ts is not None:
            reader += " POSITIONAL JOIN parquet_ts"
    else:
        row_index = "row_number() OVER () - 1"
    return (f"SELECT CAST({row_index} AS BIGINT) AS idx, CAST(sensor_id AS VARCHAR) AS sensor_id,"
            f" CAST(channel AS VARCHAR) AS channel, {ts_expr} AS ts, {number} AS value"
            f" FROM {reader}")


UNIT_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def _parquet_instants(cursor: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """For a Parquet `ts` column of timestamps with a timezone, of any unit: its instants in
    epoch ms, computed by Arrow from the raw integers (DuckDB converts every unit to
    microseconds and fails on the whole file for one far instant), registered on the cursor
    as `parquet_ts(ts_ms)`, null beyond what epoch ms hold; the SQL naming them. None for
    another column type (read by DuckDB as before)."""
    try:
        field = pq.read_schema(path).field("ts")
    except (KeyError, pa.ArrowException):
        return None
    if not pa.types.is_timestamp(field.type):
        return None
    if field.type.tz is None:
        return "CAST(NULL AS BIGINT)"  # an instant without a UTC offset: refused
    raw = pq.read_table(path, columns=["ts"])["ts"].combine_chunks()
    numbers = raw.cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = np.asarray(raw.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    factor, divisor = UNIT_MS[field.type.unit]
    numbers = np.where(valid, numbers, 0)
    fits = valid & (np.abs(numbers) <= np.iinfo(np.int64).max // factor)
    millis = np.floor_divide(np.where(fits, numbers, 0) * factor, divisor)
    cursor.register("parquet_ts", pa.table({"ts_ms": pa.array(millis, pa.int64(),
                                                               mask=~fits)}))
    return "ts_ms"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def unreadable(kind: str, error: Exception, path: Path) -> MalformedUpload:
    """MalformedUpload for an upload DuckDB or Arrow cannot read: the reader's reason, with
    no file name or path of the server in it."""
    reason = _first_line(error).replace(str(path), "the file").replace(path.name, "the file")
    reason = ABSOLUTE_PATH.sub("the file", reason)
    return MalformedUpload(f"the {kind} upload cannot be read: {reason}")


# -- the write -----------------------------------------------------------------------


def ingest_table(store: TelemetryStore, staged: pa.Table, *, authorize: Authorize,
                 max_future_ms: int) -> IngestResult:
    """Check and store a staged Arrow table (from a JSON batch), vectorised with Arrow and
    NumPy. Batches of concurrent requests are written together (one commit for all); the
    checks and the sorting happen before, outside the write lock."""
    sensor_ids = pc.unique(staged["sensor_id"]).to_pylist()
    allowed = _allowed(authorize, sensor_ids)
    _refuse_arrow(staged, list(allowed), max_ts=now_ms() + max_future_ms)
    keys = store.sensor_keys(allowed)
    prepared = _prepare(staged, keys) if len(keys) == len(allowed) else None
    return store.write_together(
        _Pending(staged, allowed, prepared),
        lambda cursor, group: _write_batches(store, cursor, group))


def ingest_push(store: TelemetryStore, *, sensor_id: str, community_id: int,
                readings: list[dict[str, Any]], max_future_ms: int) -> IngestResult:
    """Store a device push (over HTTP or MQTT): readings of one sensor, each a checked
    {channel, ts, value}, written to the series of the community whose key let it in. The
    result keeps the stored readings (for the rules that watch them: they are at hand)."""
    table = table_from_json({
        "sensor_id": sensor_id, "channel": [row["channel"] for row in readings],
        "ts": [row["ts"] for row in readings], "value": [row["value"] for row in readings]})
    result = ingest_table(
        store, table, max_future_ms=max_future_ms,
        authorize=lambda sensor_ids: {sensor_id: community_id} if sensor_id in sensor_ids
        else {})
    return replace(result, readings=table)


@dataclass
class _Prepared:
    """A checked batch with storage keys, sorted by (sensor, channel, ts), identities unique."""

    batch: pa.Table
    stats: SeriesStats
    days: list[int]


@dataclass
class _Pending:
    """A checked batch waiting for the writer (prepared already when its sensors had keys)."""

    staged: pa.Table
    allowed: dict[str, int]
    prepared: _Prepared | None


def _write_batches(store: TelemetryStore, cursor: duckdb.DuckDBPyConnection,
                   group: list[_Pending]) -> list[IngestResult]:
    """Store a group of checked batches in the writer's transaction, as if written one
    after another: a later batch's reading replaces an earlier one of the same identity."""
    keys = store.ensure_sensor_keys(cursor, sorted({
        (community_id, sensor_id) for pending in group
        for sensor_id, community_id in pending.allowed.items()}))
    batches = [pending.prepared or _prepare(pending.staged, _by_sensor_id(keys, pending.allowed))
               for pending in group]
    stats = SeriesStats(*(np.concatenate([getattr(one.stats, name) for one in batches])
                          for name in ("sensor", "channel", "first_ts", "last_ts",
                                       "last_value")))
    columns, replaced = _merge(batches, stats)
    days = sorted({day for one in batches for day in one.days})
    cursor.register("batch", pa.table(columns))
    try:
        if _overlaps_stored(store, stats):
            found = cursor.execute("""
                SELECT b.item, count(*) FROM readings r JOIN batch b
                  ON r.sensor = b.sensor AND r.channel = b.channel AND r.ts = b.ts
                WHERE r.ts BETWEEN $lo AND $hi GROUP BY b.item""",
                                   {"lo": int(stats.first_ts.min()),
                                    "hi": int(stats.last_ts.max())}).fetchall()
            if found:
                _delete_stored(cursor, stats)
                for item, count in found:
                    replaced[int(item)] += int(count)
        cursor.execute("INSERT INTO readings SELECT sensor, channel, ts, value FROM batch")
    finally:
        cursor.unregister("batch")
    changed_at = store.mark_unsealed(cursor, days)

    def apply() -> None:
        store.remember_sensor_keys(keys)
        for one in batches:
            store.remember_series(one.stats, one.days, changed_at)

    store.on_commit(apply)
    return [IngestResult(accepted=one.batch.num_rows, replaced=replaced[item],
                         sensors=len(pending.allowed), first_ms=int(one.stats.first_ts.min()),
                         last_ms=int(one.stats.last_ts.max()))
            for item, (pending, one) in enumerate(zip(group, batches, strict=True))]


def _by_sensor_id(keys: dict[SensorRef, int], allowed: dict[str, int]) -> dict[str, int]:
    """The storage key of each allowed sensor id, in the community it is written to."""
    return {sensor_id: keys[(community_id, sensor_id)]
            for sensor_id, community_id in allowed.items()}


def _merge(batches: list[_Prepared], stats: SeriesStats
           ) -> tuple[dict[str, np.ndarray], list[int]]:
    """The rows of a group's batches (whose series figures together are `stats`) as columns
    with the index of the batch of each, and per batch the readings that replace one of an
    earlier batch of the group."""
    replaced = [0] * len(batches)
    columns = {name: np.concatenate([one.batch[name].to_numpy() for one in batches])
               for name in ("sensor", "channel", "ts", "value")}
    columns["item"] = np.repeat(np.arange(len(batches), dtype=np.uint16),
                                [one.batch.num_rows for one in batches])
    if len(batches) == 1 or not _may_share_identities(stats):
        return columns, replaced
    sensor, channel, ts, item = (columns[name] for name in ("sensor", "channel", "ts", "item"))
    order = np.lexsort((item, ts, channel, sensor))
    columns = {name: values[order] for name, values in columns.items()}
    same_as_next = _same_identity_as_next(columns["sensor"], columns["channel"], columns["ts"])
    if not same_as_next.any():
        return columns, replaced
    for later in columns["item"][1:][same_as_next].tolist():
        replaced[later] += 1
    keep = np.append(~same_as_next, True)
    return {name: values[keep] for name, values in columns.items()}, replaced


def _may_share_identities(stats: SeriesStats) -> bool:
    """Whether two batches hold readings of one series in overlapping time ranges, from the
    batches' series figures (each batch lists a series once)."""
    order = np.lexsort((stats.first_ts, stats.channel, stats.sensor))
    sensor, channel = stats.sensor[order], stats.channel[order]
    first, last = stats.first_ts[order], stats.last_ts[order]
    # Sorted by start within each series: disjoint when each starts after the previous ends.
    same_series = (sensor[1:] == sensor[:-1]) & (channel[1:] == channel[:-1])
    return bool((same_series & (first[1:] <= last[:-1])).any())


def _refuse_arrow(staged: pa.Table, allowed: list[str], *, max_ts: int) -> None:
    sensor_ok = pc.is_in(staged["sensor_id"], value_set=pa.array(allowed, pa.string()))
    channel_ok = pc.is_in(staged["channel"], value_set=CHANNEL_TABLE["name"])
    ts = staged["ts"]
    ts_ok = pc.fill_null(pc.and_(pc.greater_equal(ts, MIN_TS_MS), pc.less(ts, END_TS_MS)),
                         False)
    not_future = pc.fill_null(pc.less_equal(ts, max_ts), True)
    value_ok = pc.fill_null(pc.is_finite(staged["value"]), False)
    masks = [(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool), code)
             for mask, code in ((sensor_ok, "unknown_sensor"), (channel_ok, "unknown_channel"),
                                (ts_ok, "invalid_timestamp"), (not_future, "future_timestamp"),
                                (value_ok, "invalid_value"))]
    bad = np.zeros(staged.num_rows, dtype=bool)
    for mask, _ in masks:
        bad |= ~mask
    if not bad.any():
        return
    listed = []
    for index in np.flatnonzero(bad)[:MAX_REFUSALS].tolist():
        code = next(code for mask, code in masks if not mask[index])
        listed.append({"index": index, "code": code, "message": REFUSAL_MESSAGES[code]})
    raise ReadingsRefused(listed, refused=int(bad.sum()), total=staged.num_rows)


def _prepare(staged: pa.Table, keys: dict[str, int]) -> _Prepared:
    """Storage keys, sorted by (sensor, channel, ts), the last of equal identities kept."""
    key_ids = pa.array(list(keys), pa.string())
    key_values = np.fromiter(keys.values(), dtype=np.int32, count=len(keys))
    sensor = key_values[pc.index_in(staged["sensor_id"], value_set=key_ids).to_numpy()]
    codes = np.asarray(CHANNEL_TABLE["code"].to_numpy(), dtype=np.uint8)
    channel = codes[pc.index_in(staged["channel"], value_set=CHANNEL_TABLE["name"]).to_numpy()]
    ts = np.asarray(staged["ts"].to_numpy(), dtype=np.int64)
    value = np.asarray(staged["value"].to_numpy(), dtype=np.float64)
    order = np.lexsort((ts, channel, sensor))  # stable: equal identities keep their order
    sensor, channel, ts, value = sensor[order], channel[order], ts[order], value[order]
    same_as_next = _same_identity_as_next(sensor, channel, ts)
    if same_as_next.any():
        keep = np.append(~same_as_next, True)
        sensor, channel, ts, value = sensor[keep], channel[keep], ts[keep], value[keep]
    ends = np.append((sensor[1:] != sensor[:-1]) | (channel[1:] != channel[:-1]), True)
    starts = np.roll(ends, 1)
    stats = SeriesStats(sensor=sensor[starts], channel=channel[starts], first_ts=ts[starts],
                        last_ts=ts[ends], last_value=value[ends])
    batch = pa.table({"sensor": sensor, "channel": channel, "ts": ts, "value": value})
    return _Prepared(batch, stats, counted_days(ts, channel))


def _same_identity_as_next(sensor: np.ndarray, channel: np.ndarray,
                           ts: np.ndarray) -> np.ndarray:
    """For rows sorted by identity: whether each row but the last repeats in the next."""
    return (sensor[1:] == sensor[:-1]) & (channel[1:] == channel[:-1]) & (ts[1:] == ts[:-1])


CHECK_SQL = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE sensor_id IS NULL
                        OR sensor_id NOT IN (SELECT sensor_id FROM allowed_sensors)
                        OR channel IS NULL OR channel NOT IN (SELECT name FROM channel_codes)
                        OR ts IS NULL OR NOT {accepted} OR ts > $max_ts
                        OR value IS NULL OR NOT isfinite(value)) AS refused
FROM staged
""".replace("{accepted}", accepted_sql("ts"))
# Up to this many readings, repeated identities are looked for by sorting their hashes in
# NumPy (8 bytes a reading); above it, by DuckDB's hash aggregate (which can spill to disk).
SORTED_HASH_CHECK_MAX = 8_000_000
# Last reading wins within one upload (only run when the upload may repeat an identity).
DEDUPE_SQL = """
CREATE OR REPLACE TEMP TABLE deduped AS
SELECT sensor_id, channel, ts, arg_max(value, idx) AS value FROM staged GROUP BY ALL
"""
FIGURES_SQL = """
SELECT sensor_id, channel, min(ts) AS first_ts, max(ts) AS last_ts,
       arg_max(value, ts) AS last_value
FROM {source} GROUP BY ALL
"""
BATCH_VIEW_SQL = """
CREATE OR REPLACE TEMP VIEW batch AS
SELECT k.sensor AS sensor, c.code AS channel, s.ts AS ts, s.value AS value
FROM {source} s
JOIN batch_keys k ON k.sensor_id = s.sensor_id
JOIN channel_codes c ON c.name = s.channel
"""


def ingest_file(store: TelemetryStore, path: Path, media_type: str, *, authorize: Authorize,
                max_future_ms: int, max_rows: int | None = None,
                keep_readings: bool = False) -> IngestResult:
    """Check and store an uploaded CSV, NDJSON or Parquet file (in the store's temporary
    directory, the only one its SQL may read), all or nothing; TooManyReadings beyond
    `max_rows`. Reading and checking the file happen on a private cursor before the write
    lock is taken, so that one upload is staged while another is written."""
    kind = UPLOAD_FORMATS[media_type]
    with store.scratch() as cursor:
        try:
            source = _upload_source(cursor, path, kind)
            # A Parquet file is read again where needed (a columnar scan costs less than a
            # copy); a text file is parsed once into a temporary table.
            stage = "VIEW" if kind == "parquet" else "TABLE"
            cursor.execute(f"CREATE OR REPLACE TEMP {stage} staged AS {source}")
            rows = int(_one(cursor, "SELECT count(*) FROM staged")[0])  # Parquet: its footer
            if max_rows is not None and rows > max_rows:
                raise TooManyReadings(f"the upload holds {rows} readings; at most {max_rows} "
                                      "are taken in one upload: split it")
            allowed, total, table = _check_upload(cursor, authorize=authorize,
                                                  max_future_ms=max_future_ms)
            figures = cursor.execute(FIGURES_SQL.format(source=table)).fetchnumpy()
            day_of_ts = floor_sql("ts", DAY_MS, nonnegative=bool(
                len(figures["first_ts"]) and figures["first_ts"].min() >= 0))
            day_before = floor_sql(counted_ts_sql("ts", "c.code"), DAY_MS,
                                   nonnegative=bool(len(figures["first_ts"])
                                                    and figures["first_ts"].min() >= 1))
            days = [int(row[0]) for row in cursor.execute(
                f"SELECT DISTINCT {day_of_ts} // {DAY_MS} FROM {table} UNION"
                f" SELECT DISTINCT {day_before} // {DAY_MS} FROM {table} s"
                " JOIN channel_codes c ON c.name = s.channel ORDER BY 1").fetchall()]
        except READ_ERRORS as error:
            if isinstance(error, STORE_FAULTS):
                raise
            raise unreadable(kind, error, path) from error
        accepted = total if table == "staged" else int(
            _one(cursor, "SELECT count(*) FROM deduped")[0])
        kept = cursor.sql(f"SELECT sensor_id, channel, ts, value FROM {table}").to_arrow_table() \
            if keep_readings else None
        with store.writer(cursor):
            keys = store.ensure_sensor_keys(
                cursor, [(community_id, sensor_id) for sensor_id, community_id in allowed.items()])
            by_id = _by_sensor_id(keys, allowed)
            cursor.register("batch_keys", pa.table({
                "sensor_id": pa.array(list(by_id), pa.string()),
                "sensor": pa.array(list(by_id.values()), pa.int32())}))
            cursor.execute(BATCH_VIEW_SQL.format(source=table))
            stats = _keyed_stats(figures, by_id)
            result = _write(store, cursor, stats, days, accepted=accepted, keys=keys)
        return result if kept is None else replace(result, readings=kept)


def _check_upload(cursor: duckdb.DuckDBPyConnection, *, authorize: Authorize,
                  max_future_ms: int) -> tuple[dict[str, int], int, str]:
    """The sensors the caller may write, the reading count and the table to store from
    (`staged`, or `deduped` when the upload may repeat an identity); ReadingsRefused
    listing the first refused readings."""
    sensor_ids = [row[0] for row in cursor.execute(
        "SELECT DISTINCT sensor_id FROM staged WHERE sensor_id IS NOT NULL").fetchall()]
    allowed = _allowed(authorize, sensor_ids)
    cursor.register("allowed_sensors",
                    pa.table({"sensor_id": pa.array(list(allowed), pa.string())}))
    cursor.register("channel_codes", CHANNEL_TABLE)
    max_ts = now_ms() + max_future_ms
    total, refused = _one(cursor, CHECK_SQL, {"max_ts": max_ts})
    if total == 0:
        raise MalformedUpload("the upload holds no readings")
    if refused:
        refusals = cursor.execute(REFUSALS_SQL.format(limit=MAX_REFUSALS),
                                  {"max_ts": max_ts}).fetchall()
        listed = [{"index": int(idx), "code": code, "message": REFUSAL_MESSAGES[code]}
                  for idx, code, _ in refusals]
        raise ReadingsRefused(listed, refused=int(refused), total=int(total))
    if not _may_repeat_identity(cursor, int(total)):
        return allowed, int(total), "staged"
    cursor.execute(DEDUPE_SQL)
    return allowed, int(total), "deduped"


def _may_repeat_identity(cursor: duckdb.DuckDBPyConnection, total: int) -> bool:
    """Whether two staged readings may share (sensor, channel, ts): false when all their
    hashes differ (equal hashes of different identities only cost a deduplication)."""
    identity = "hash(sensor_id, channel, ts)"
    if total <= SORTED_HASH_CHECK_MAX:
        hashes = np.sort(cursor.sql(f"SELECT {identity} AS h FROM staged")
                         .to_arrow_table()["h"].to_numpy())
        return bool((hashes[1:] == hashes[:-1]).any())
    distinct = _one(cursor, f"SELECT count(DISTINCT {identity}) FROM staged")[0]
    return int(distinct) != total


def _keyed_stats(figures: dict[str, Any], keys: dict[str, int]) -> SeriesStats:
    """Per-series figures by sensor id and channel name, with storage keys."""
    codes = {channel.name: channel.code for channel in CATALOG}
    return SeriesStats(
        sensor=np.array([keys[sensor_id] for sensor_id in figures["sensor_id"].tolist()],
                        dtype=np.int32),
        channel=np.array([codes[name] for name in figures["channel"].tolist()], dtype=np.uint8),
        first_ts=np.asarray(figures["first_ts"], dtype=np.int64),
        last_ts=np.asarray(figures["last_ts"], dtype=np.int64),
        last_value=np.asarray(figures["last_value"], dtype=np.float64))


def _write(store: TelemetryStore, cursor: duckdb.DuckDBPyConnection, stats: SeriesStats,
           days: list[int], *, accepted: int, keys: dict[SensorRef, int]) -> IngestResult:
    """Replace the stored readings of the upload's identities, append the upload (`batch`),
    mark its days unsealed; the in-memory figures follow at commit."""
    replaced = _delete_stored(cursor, stats) if _overlaps_stored(store, stats) else 0
    cursor.execute("INSERT INTO readings SELECT sensor, channel, ts, value FROM batch")
    changed_at = store.mark_unsealed(cursor, days)

    def apply() -> None:
        store.remember_sensor_keys(keys)
        store.remember_series(stats, days, changed_at)

    store.on_commit(apply)
    return IngestResult(accepted=accepted, replaced=replaced, sensors=len(keys),
                        first_ms=int(stats.first_ts.min()), last_ms=int(stats.last_ts.max()))


def _overlaps_stored(store: TelemetryStore, stats: SeriesStats) -> bool:
    """Whether some series of the batch starts before the last stored reading of that
    series (only then may a stored reading share an identity with one of the batch)."""
    latest = store.latest
    return any(
        first <= latest.get((sensor, channel), (0, first - 1))[1]
        for sensor, channel, first in zip(stats.sensor.tolist(), stats.channel.tolist(),
                                          stats.first_ts.tolist(), strict=True))


def _delete_stored(cursor: duckdb.DuckDBPyConnection, stats: SeriesStats) -> int:
    """Delete the stored readings sharing an identity with one of `batch`; how many."""
    return int(_one(cursor, """
        DELETE FROM readings r USING batch b
        WHERE r.ts BETWEEN $lo AND $hi
          AND r.sensor = b.sensor AND r.channel = b.channel AND r.ts = b.ts""",
                    {"lo": int(stats.first_ts.min()), "hi": int(stats.last_ts.max())})[0])


def _one(cursor: duckdb.DuckDBPyConnection, sql: str,
         parameters: dict[str, Any] | None = None) -> tuple[Any, ...]:
    row = cursor.execute(sql, parameters or {}).fetchall()[0]
    assert row is not None
    return tuple(row)
