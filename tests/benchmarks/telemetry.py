"""The telemetry benchmark: ingest and queries over HTTP, each beside raw DuckDB doing the same.

    python -m tests.benchmarks.telemetry [--sensors 800] [--days 90] [--json-days 10]
                                         [--clients 4] [--repeat 30] [--keep]

A synthetic community (one meter per member, one reading per minute each, see
generate_telemetry) is imported into a fresh server (`python -m handlers.cli serve`,
admin created with the CLI, login over HTTP). Its readings go in, in time order: the first
`--json-days` as columnar JSON batches of 10,000 from concurrent keep-alive clients, the
rest as one Parquet upload per day. Then, over HTTP: one sensor's series (M4 to 1,000
points) before and after the background compaction, the hourly aggregate of every sensor for
one day, the daily energy balance of the whole range, and the server's peak memory
(VmHWM). Latencies run from the request until the whole answer is received; the answer is
decoded and checked after the timed part. The same work is then done by DuckDB directly on
a scratch file (2 threads), and both are printed side by side with the issue's targets.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import numpy as np
import orjson
import pyarrow as pa

from storage.telemetry.queries import m4_slicing
from tests.benchmarks.generate_community import dump
from tests.benchmarks.generate_telemetry import (
    CHANNELS,
    DEFAULT_SEED,
    DEFAULT_START,
    MS_PER_MINUTE,
    TIMEZONE,
    Chunk,
    Plan,
    bundle,
    make_plan,
    readings,
    write_parquet,
)
from tests.benchmarks.registry import (
    ADMIN_EMAIL,
    PhaseFailed,
    check,
    cpu_seconds,
    create_admin,
    peak_memory_mb,
    running_server,
    say,
)

BATCH = 10_000
MAX_POINTS = 1_000
WARMUP = 3
RAW_THREADS = 2
TARGET_JSON = 300_000.0  # readings/s, at least
TARGET_PARQUET = 3_000_000.0  # readings/s, at least
TARGET_SERIES_MS = 15.0
TARGET_AGGREGATE_MS = 150.0
TARGET_BALANCE_MS = 150.0
TARGET_PEAK_MB = 1_500.0
COMPACTION_TIMEOUT_S = 3_600.0
REQUEST_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
JSON_TYPE = {"Content-Type": "application/json"}
PARQUET_TYPE = {"Content-Type": "application/vnd.apache.parquet"}
LOCAL = ZoneInfo(TIMEZONE)


@dataclass
class Row:
    """One line of the final table."""

    figure: str
    api: str = ""
    raw: str = ""
    target: str = ""
    verdict: str = ""


@dataclass
class Workload:
    """Everything both sides do: the JSON bodies, the Parquet files, the query windows."""

    plan: Plan
    bodies: list[bytes]
    body_rows: list[int]
    files: list[tuple[Path, int]]
    series_sensor: int
    day_from_ms: int  # the local day of the hourly aggregate, as UTC instants
    day_to_ms: int
    first_day: date  # the energy balance, local days, both included
    last_day: date

    @property
    def json_rows(self) -> int:
        return sum(self.body_rows)

    @property
    def parquet_rows(self) -> int:
        return sum(rows for _, rows in self.files)


@dataclass
class Timings:
    """Seconds of repeated calls; p50/p99 in milliseconds."""

    seconds: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def describe(self) -> str:
        if not self.seconds:
            return "n/a"
        return f"p50 {self.percentile(0.5):.1f} ms, p99 {self.percentile(0.99):.1f} ms"


@dataclass
class Results:
    """The figures of one side (API or raw DuckDB), filled in as the phases run."""

    json_rate: float | None = None
    parquet_rate: float | None = None
    series_before: Timings | None = None
    series: Timings | None = None
    aggregate: Timings | None = None
    balance: Timings | None = None
    aggregate_rollup: Timings | None = None  # raw DuckDB only: from an hourly rollup
    balance_rollup: Timings | None = None
    series_points: int | None = None
    aggregate_sum: float | None = None
    aggregate_buckets: int | None = None
    balance_totals: tuple[float, float, float] | None = None  # withdrawn, fed in, shared
    unsealed: int | None = None  # API only: days not yet compacted right after the ingest
    floor: Timings | None = None  # API only: a request that reads no telemetry
    notes: list[Row] = field(default_factory=list)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=LOCAL).timestamp() * 1000)


def repeat(call: Callable[[], Any], times: int,
           then: Callable[[Any], None] | None = None) -> Timings:
    """Timings of `call`; `then` gets each result outside the timed part (over HTTP: the
    answer is timed until its body is received, and decoded and checked afterwards)."""
    for _ in range(WARMUP):
        result = call()
        if then is not None:
            then(result)
    timings = Timings()
    for _ in range(times):
        started = time.perf_counter()
        result = call()
        timings.seconds.append(time.perf_counter() - started)
        if then is not None:
            then(result)
    return timings


# --- the workload ------------------------------------------------------------------------------


def json_bodies(plan: Plan, days: int) -> tuple[list[bytes], list[int]]:
    """Columnar JSON batches of BATCH readings (the last may be shorter), in time order."""
    minutes = np.array([iso(plan.start_ms + minute * MS_PER_MINUTE)
                        for minute in range(days * 1440)], dtype=object)
    channels = np.array(CHANNELS, dtype=object)
    bodies: list[bytes] = []
    rows: list[int] = []

    def encode(chunk: Chunk) -> None:
        body = {"sensor_id": plan.sensor_ids[chunk.sensor].tolist(),
                "channel": channels[plan.channel[chunk.sensor]].tolist(),
                "ts": minutes[(chunk.ts - plan.start_ms) // MS_PER_MINUTE].tolist(),
                "value": np.ascontiguousarray(chunk.value)}
        bodies.append(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
        rows.append(len(chunk))

    carry: Chunk | None = None
    for day in readings(plan, 0, days):
        if carry is not None:
            day = Chunk(np.concatenate([carry.sensor, day.sensor]),
                        np.concatenate([carry.ts, day.ts]),
                        np.concatenate([carry.value, day.value]))
        whole = len(day) // BATCH * BATCH
        for start in range(0, whole, BATCH):
            encode(day.slice(start, start + BATCH))
        carry = day.slice(whole, len(day)) if whole < len(day) else None
    if carry is not None:
        encode(carry)
    return bodies, rows


def prepare(plan: Plan, json_days: int, work: Path) -> Workload:
    started = time.perf_counter()
    say(f"serialising {json_days} day(s) of readings as JSON batches of {BATCH:,}...")
    bodies, rows = json_bodies(plan, json_days)
    say(f"  {len(bodies):,} bodies, {sum(map(len, bodies)) / 1_048_576:,.0f} MiB, "
        f"{time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    say(f"writing {plan.days - json_days} day(s) of readings as Parquet files...")
    files = write_parquet(plan, work / "parquet", json_days, plan.days - json_days)
    size = sum(path.stat().st_size for path, _ in files)
    say(f"  {len(files)} files, {size / 1_048_576:,.0f} MiB, "
        f"{time.perf_counter() - started:.1f} s")
    middle = plan.start + timedelta(days=plan.days // 2)
    return Workload(plan=plan, bodies=bodies, body_rows=rows, files=files,
                    series_sensor=plan.sensors // 2,
                    day_from_ms=local_midnight_ms(middle),
                    day_to_ms=local_midnight_ms(middle + timedelta(days=1)),
                    first_day=plan.start, last_day=plan.start + timedelta(days=plan.days - 1))


# --- over HTTP ---------------------------------------------------------------------------------


@dataclass
class Upload:
    """What the concurrent clients saw during one ingest phase."""

    elapsed: float = 0.0
    accepted: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def upload(base_url: str, token: str, pid: int, clients: int, count: int,
           send: Callable[[httpx.Client, int], httpx.Response]) -> Upload:
    """Items 0..count-1 taken in order from a shared queue by `clients` keep-alive clients."""
    work: queue.SimpleQueue[int] = queue.SimpleQueue()
    for number in range(count):
        work.put(number)
    result = Upload()
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client_loop() -> None:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            client.get("/api/health")  # open the connection before the clock starts
            ready.wait()
            while True:
                try:
                    number = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    response = send(client, number)
                    accepted = response.json().get("accepted", 0) \
                        if response.status_code == 200 else 0
                    problem = "" if response.status_code == 200 \
                        else f"item {number}: HTTP {response.status_code} {response.text[:300]}"
                except (httpx.HTTPError, ValueError) as error:
                    response, accepted, problem = None, 0, f"item {number}: {error!r}"
                with lock:
                    result.accepted += accepted
                    result.statuses[response.status_code if response is not None else 0] += 1
                    if problem and len(result.problems) < 5:
                        result.problems.append(problem)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    result.server_cpu = cpu_seconds(pid) - server_cpu
    result.client_cpu = time.process_time() - client_cpu
    return result


def ingest_rate(label: str, result: Upload, expected: int, results: Results) -> float:
    statuses = ", ".join(f"{status or 'no answer'}: {n}" for status, n in result.statuses.items())
    rate = result.accepted / result.elapsed if result.elapsed else 0.0
    say(f"  {label}: {result.accepted:,} of {expected:,} readings accepted in "
        f"{result.elapsed:.1f} s = {rate:,.0f}/s (HTTP {statuses}; server "
        f"{result.server_cpu / result.elapsed:.0%} of a core, harness "
        f"{result.client_cpu / result.elapsed:.0%})")
    for problem in result.problems:
        say(f"    {problem}")
    if result.accepted != expected:
        results.notes.append(Row(f"{label}: readings accepted", f"{result.accepted:,}",
                                 f"{expected:,}", "all", "FAIL"))
    return rate


def telemetry_status(client: httpx.Client) -> dict[str, Any]:
    health = client.get("/api/health").json()
    status: dict[str, Any] = health.get("telemetry") or {}
    return status


def series_params(load: Workload) -> dict[str, str]:
    sensor = load.series_sensor
    return {"sensor_id": str(load.plan.sensor_ids[sensor]),
            "channel": load.plan.channel_of(sensor), "from": iso(load.plan.start_ms),
            "to": iso(load.plan.end_ms), "max_points": str(MAX_POINTS)}


def measure_api(client: httpx.Client, base_url: str, token: str, pid: int, load: Workload,
                bundle_yaml: bytes, args: argparse.Namespace, results: Results) -> None:
    plan = load.plan
    say(f"importing the community ({len(bundle_yaml) / 1_048_576:.1f} MiB of YAML)...")
    check(client.post("/api/admin/import/yaml", content=bundle_yaml,
                      headers={"Content-Type": "application/yaml"}), "import")

    say(f"JSON ingest: {len(load.bodies):,} batches, {args.clients} clients...")
    bodies = load.bodies
    result = upload(base_url, token, pid, args.clients, len(bodies),
                    lambda http, n: http.post("/api/telemetry/readings", content=bodies[n],
                                              headers=JSON_TYPE))
    results.json_rate = ingest_rate("JSON ingest", result, load.json_rows, results)

    say(f"Parquet upload: {len(load.files)} files, {args.clients} clients...")
    files = load.files

    def send_file(http: httpx.Client, number: int) -> httpx.Response:
        with files[number][0].open("rb") as handle:  # streamed, with its Content-Length
            return http.post("/api/telemetry/readings", content=handle, headers=PARQUET_TYPE)

    result = upload(base_url, token, pid, args.clients, len(files), send_file)
    results.parquet_rate = ingest_rate("Parquet upload", result, load.parquet_rows, results)
    ingested = time.perf_counter()
    results.notes.append(Row("server peak memory after ingest", mb(peak_memory_mb(pid))))

    def series() -> httpx.Response:
        return client.get("/api/telemetry/series", params=series_params(load))

    def read_series(response: httpx.Response) -> None:
        body = check(response, "series").json()
        results.series_points = len(body["series"][0]["ts"])

    say("series right after the ingest...")
    results.unsealed = telemetry_status(client).get("unsealed_days")
    results.series_before = repeat(series, args.repeat, read_series)
    say(f"  {results.series_before.describe()} ({results.unsealed} unsealed day(s) at the "
        "start; the compaction may run meanwhile)")

    say("waiting for the compaction (GET /api/health: telemetry.unsealed_days and"
        " telemetry.unsorted_rollup_blocks both 0)...")
    while (backlog := [telemetry_status(client).get(name) for name in (
            "unsealed_days", "unsorted_rollup_blocks")]) != [0, 0]:
        if time.perf_counter() - ingested > COMPACTION_TIMEOUT_S:
            raise PhaseFailed(f"still {backlog[0]} unsealed day(s) and {backlog[1]} unsorted"
                              f" rollup block(s) after {COMPACTION_TIMEOUT_S} s")
        time.sleep(0.25)
    waited = time.perf_counter() - ingested
    say(f"  every day compacted {waited:.1f} s after the last upload")
    results.notes.append(Row("every day compacted, after the last upload", f"{waited:.1f} s"))
    status = telemetry_status(client)
    if status.get("readings") != plan.readings:
        results.notes.append(Row("readings in the store (health)", f"{status.get('readings')}",
                                 f"{plan.readings:,}", "all", "FAIL"))

    say("the HTTP floor: GET /api/telemetry/channels...")
    results.floor = repeat(lambda: check(client.get("/api/telemetry/channels"), "channels"),
                           args.repeat)
    say(f"  {results.floor.describe()}")

    say("series after compaction...")
    results.series = repeat(series, args.repeat, read_series)
    say(f"  {results.series.describe()}")

    say("hourly aggregate of every sensor for one day...")
    aggregate_params = {"community": plan.community, "channel": "energy_import",
                        "from": iso(load.day_from_ms), "to": iso(load.day_to_ms),
                        "bucket": "hour"}

    def aggregate() -> httpx.Response:
        return client.get("/api/telemetry/aggregates", params=aggregate_params)

    def read_aggregate(response: httpx.Response) -> None:
        body = check(response, "aggregates").json()
        buckets = [bucket for series in body["series"] for bucket in series["buckets"]]
        results.aggregate_sum = sum(bucket["sum"] for bucket in buckets)
        results.aggregate_buckets = len(buckets)

    results.aggregate = repeat(aggregate, args.repeat, read_aggregate)
    say(f"  {results.aggregate.describe()}")

    say("daily energy balance of the whole range...")
    balance_url = f"/api/telemetry/communities/{plan.community}/energy-balance"
    balance_params = {"from": load.first_day.isoformat(), "to": load.last_day.isoformat(),
                      "granularity": "day"}

    def balance() -> httpx.Response:
        return client.get(balance_url, params=balance_params)

    def read_balance(response: httpx.Response) -> None:
        totals = check(response, "energy balance").json()["totals"]
        results.balance_totals = (totals["withdrawn_wh"], totals["fed_in_wh"],
                                  totals["shared_wh"])

    results.balance = repeat(balance, max(5, args.repeat // 3), read_balance)
    say(f"  {results.balance.describe()}")


def mb(value: float | None) -> str:
    return f"{value:,.0f} MB" if value is not None else "n/a"


def store_size(data_dir: Path) -> str:
    """The DuckDB files (and write-ahead logs) in the data directory, in MB."""
    sizes: Counter[str] = Counter()
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix in (".duckdb", ".wal"):
            sizes[path.suffix] += path.stat().st_size
    return f"{sizes['.duckdb'] / 1e6:,.1f} MB + {sizes['.wal'] / 1e6:,.1f} MB WAL"


def run_server(load: Workload, data_dir: Path, args: argparse.Namespace) -> Results:
    plan = load.plan
    bundle_yaml = dump(bundle(plan))
    biggest_body = max([len(body) for body in load.bodies]
                       + [path.stat().st_size for path, _ in load.files])
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("COMMONWATT_")}
    env.update({
        "COMMONWATT_DATA_DIR": str(data_dir),
        "COMMONWATT_JWT_SECRET": secrets.token_urlsafe(48),
        "COMMONWATT_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "COMMONWATT_MAX_BODY_BYTES": str(max(64 * 1_048_576, 2 * biggest_body)),
        "COMMONWATT_LOG_LEVEL": args.log_level,
        "COMMONWATT_TELEMETRY_COMPACT_INTERVAL_SECONDS": "1",
        "COMMONWATT_TELEMETRY_COMPACT_QUIET_SECONDS": "2",
    })
    password = secrets.token_urlsafe(16)
    say("creating the admin account...")
    create_admin(env, password)
    with running_server(env, data_dir / "server.log") as (process, base_url):
        say(f"server pid {process.pid} at {base_url}")
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
            login = check(client.post("/api/auth/login",
                                      json={"email": ADMIN_EMAIL, "password": password}), "login")
            token = login.json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            results = Results()
            try:
                measure_api(client, base_url, token, process.pid, load, bundle_yaml, args,
                            results)
            except (PhaseFailed, httpx.HTTPError, KeyError, IndexError, TypeError) as error:
                say(f"the API phases stopped: {error!r}")
                results.notes.append(Row("API phases", f"stopped: {error!r}"[:200]))
        peak = peak_memory_mb(process.pid)
        results.notes.append(Row("server peak memory (VmHWM, whole run)", mb(peak), "",
                                 f"<= {TARGET_PEAK_MB:,.0f} MB",
                                 verdict(peak, TARGET_PEAK_MB, at_most=True)))
        results.notes.append(Row("telemetry DuckDB file, server running", store_size(data_dir)))
    results.notes.append(Row("telemetry DuckDB file, server stopped", store_size(data_dir)))
    return results


# --- raw DuckDB --------------------------------------------------------------------------------

M4_SQL = """
WITH r AS (
    SELECT ts, value, (ts - $origin) // $width AS k
    FROM sorted
    WHERE sensor = $sensor AND channel = $channel AND ts >= $lo AND ts < $hi),
e AS (
    SELECT k, min(ts) AS t_first, max(ts) AS t_last, arg_min(ts, (value, ts)) AS t_low,
           arg_max(ts, (value, -ts)) AS t_high
    FROM r GROUP BY k)
SELECT r.ts, r.value FROM r JOIN e USING (k)
WHERE r.ts IN (e.t_first, e.t_last, e.t_low, e.t_high)
ORDER BY r.ts
"""
AGGREGATE_SQL = """
SELECT sensor, ts // 3600000 AS hour, count(*) AS count, sum(value) AS sum,
       min(value) AS min, max(value) AS max, avg(value) AS avg,
       arg_min(value, ts) AS first, arg_max(value, ts) AS last
FROM sorted
WHERE channel = $channel AND ts >= $lo AND ts < $hi
GROUP BY ALL ORDER BY ALL
"""
ROLLUP_SQL = """
CREATE TABLE rollup AS
SELECT * FROM (
    SELECT sensor, channel, ts // 3600000 AS hour, count(*) AS n, sum(value) AS total,
           min(value) AS low, max(value) AS high, arg_min(value, ts) AS first,
           arg_max(value, ts) AS last
    FROM sorted GROUP BY ALL)
ORDER BY hour // 24, sensor, channel, hour
"""
AGGREGATE_ROLLUP_SQL = """
SELECT sensor, hour, n, total, low, high, total / n, first, last
FROM rollup
WHERE channel = $channel AND hour >= $lo // 3600000 AND hour < $hi // 3600000
ORDER BY ALL
"""
# {hourly}: (sensor, channel, hour, value) of [$lo, $hi), value the energy of an hour or less
BALANCE_SQL = """
WITH hourly AS (
    SELECT s.area, r.hour,
           coalesce(sum(r.value) FILTER (WHERE r.channel = 0), 0) AS withdrawn,
           coalesce(sum(r.value) FILTER (WHERE r.channel = 1), 0) AS fed_in
    FROM ({hourly}) r JOIN sensors s ON s.sensor = r.sensor
    WHERE s.active
    GROUP BY ALL)
SELECT h.day, hourly.area, sum(withdrawn), sum(fed_in), sum(least(withdrawn, fed_in))
FROM hourly JOIN hours h USING (hour)
GROUP BY ALL ORDER BY ALL
"""
HOURLY_FROM_ROWS = ("SELECT sensor, channel, ts // 3600000 AS hour, value FROM sorted "
                    "WHERE ts >= $lo AND ts < $hi")
HOURLY_FROM_ROLLUP = ("SELECT sensor, channel, hour, total AS value FROM rollup "
                      "WHERE hour >= $lo // 3600000 AND hour < $hi // 3600000")


def scratch_database(path: Path, plan: Plan) -> duckdb.DuckDBPyConnection:
    """The scratch file: readings, and the sensor, channel and local-hour lookup tables."""
    con = duckdb.connect(str(path))
    con.execute(f"SET threads = {RAW_THREADS}")
    con.execute("CREATE TABLE readings (sensor INTEGER, channel UTINYINT, ts BIGINT, "
                "value DOUBLE)")
    sensors = pa.table({
        "sensor": pa.array(np.arange(plan.sensors, dtype=np.int32)),
        "sensor_id": pa.array(plan.sensor_ids.tolist()),
        "member": pa.array(plan.member_keys.tolist()),
        "area": pa.array([plan.area_key(int(area)) for area in plan.areas]),
        "active": pa.array(np.ones(plan.sensors, dtype=bool)),
    })
    channels = pa.table({"channel": pa.array(range(len(CHANNELS)), pa.uint8()),
                         "name": pa.array(list(CHANNELS))})
    first_hour = plan.start_ms // 3_600_000 - 24
    hour_numbers = range(first_hour, plan.end_ms // 3_600_000 + 24)
    hours = pa.table({"hour": pa.array(hour_numbers, pa.int64()),
                      "day": pa.array([datetime.fromtimestamp(hour * 3600, tz=LOCAL).date()
                                       for hour in hour_numbers], pa.date32())})
    for name, table in (("sensors", sensors), ("channels", channels), ("hours", hours)):
        con.register("source", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM source")  # noqa: S608
        con.unregister("source")
    return con


def measure_raw(load: Workload, work: Path, args: argparse.Namespace) -> Results:
    results = Results()
    plan = load.plan
    path = work / "scratch.duckdb"
    con = scratch_database(path, plan)
    try:
        say(f"raw DuckDB ({RAW_THREADS} threads, {path}): JSON batches...")
        insert = ("INSERT INTO readings SELECT s.sensor, c.channel, epoch_ms(b.ts), b.value "
                  "FROM batch b JOIN sensors s USING (sensor_id) JOIN channels c "
                  "ON c.name = b.channel")
        started = time.perf_counter()
        for body in load.bodies:
            columns = orjson.loads(body)
            batch = pa.table({
                "sensor_id": pa.array(columns["sensor_id"], pa.string()),
                "channel": pa.array(columns["channel"], pa.string()),
                "ts": pa.array(columns["ts"], pa.string()).cast(pa.timestamp("ms", tz="UTC")),
                "value": pa.array(columns["value"], pa.float64())})
            con.register("batch", batch)
            con.execute(insert)
            con.unregister("batch")
        elapsed = time.perf_counter() - started
        results.json_rate = load.json_rows / elapsed if load.json_rows else None
        say(f"  {load.json_rows:,} readings in {elapsed:.1f} s")

        say("raw DuckDB: Parquet files...")
        started = time.perf_counter()
        for file, _ in load.files:
            con.execute("INSERT INTO readings SELECT s.sensor, c.channel, epoch_ms(p.ts), "
                        "p.value FROM read_parquet($file) p JOIN sensors s USING (sensor_id) "
                        "JOIN channels c ON c.name = p.channel", {"file": str(file)})
        elapsed = time.perf_counter() - started
        results.parquet_rate = load.parquet_rows / elapsed if load.parquet_rows else None
        say(f"  {load.parquet_rows:,} readings in {elapsed:.1f} s")
        stored = con.execute("SELECT count(*) FROM readings").fetchone()
        if stored is None or stored[0] != plan.readings:
            results.notes.append(Row("raw DuckDB: readings stored", "", f"{stored}",
                                     f"{plan.readings:,}", "FAIL"))

        say("raw DuckDB: series before sorting...")
        con.execute("CREATE VIEW sorted AS SELECT * FROM readings")
        sensor = load.series_sensor
        slicing = m4_slicing(plan.start_ms, plan.end_ms, MAX_POINTS)
        origin, width = slicing[:2] if slicing else (plan.start_ms, max(
            1, -(-(plan.end_ms - plan.start_ms) // (MAX_POINTS // 4))))
        m4 = {"lo": plan.start_ms, "hi": plan.end_ms, "origin": origin, "width": width,
              "sensor": sensor, "channel": int(plan.channel[sensor])}
        results.series_before = repeat(lambda: con.execute(M4_SQL, m4).fetchall(), args.repeat)
        say(f"  {results.series_before.describe()}")

        say("raw DuckDB: sorting by day, sensor, channel, ts...")
        started = time.perf_counter()
        con.execute("DROP VIEW sorted")
        con.execute("CREATE TABLE sorted AS SELECT * FROM readings "
                    "ORDER BY ts // 86400000, sensor, channel, ts")
        con.execute("CHECKPOINT")
        elapsed = time.perf_counter() - started
        results.notes.append(Row("raw DuckDB: CREATE TABLE sorted (ORDER BY day, sensor, "
                                 "channel, ts)", "", f"{elapsed:.1f} s"))
        say(f"  {elapsed:.1f} s")

        results.series = repeat(lambda: con.execute(M4_SQL, m4).fetchall(), args.repeat)
        results.series_points = len(con.execute(M4_SQL, m4).fetchall())
        say(f"  series: {results.series.describe()}, {results.series_points} points")

        day = {"lo": load.day_from_ms, "hi": load.day_to_ms, "channel": 0}
        results.aggregate = repeat(lambda: con.execute(AGGREGATE_SQL, day).fetchall(),
                                   args.repeat)
        buckets = con.execute(AGGREGATE_SQL, day).fetchall()
        results.aggregate_sum = sum(row[3] for row in buckets)
        results.aggregate_buckets = len(buckets)
        say(f"  hourly aggregate: {results.aggregate.describe()}, {len(buckets):,} buckets")

        window = {"lo": local_midnight_ms(load.first_day),
                  "hi": local_midnight_ms(load.last_day + timedelta(days=1))}
        from_rows = BALANCE_SQL.format(hourly=HOURLY_FROM_ROWS)
        results.balance = repeat(lambda: con.execute(from_rows, window).fetchall(),
                                 max(5, args.repeat // 3))
        days = con.execute(from_rows, window).fetchall()
        results.balance_totals = (sum(row[2] for row in days), sum(row[3] for row in days),
                                  sum(row[4] for row in days))
        say(f"  energy balance: {results.balance.describe()}, {len(days):,} area-days")

        say("raw DuckDB: an hourly rollup, and the same two queries on it...")
        started = time.perf_counter()
        con.execute(ROLLUP_SQL)
        con.execute("CHECKPOINT")
        elapsed = time.perf_counter() - started
        results.notes.append(Row("raw DuckDB: CREATE TABLE rollup (per sensor, channel, hour)",
                                 "", f"{elapsed:.1f} s"))
        results.aggregate_rollup = repeat(
            lambda: con.execute(AGGREGATE_ROLLUP_SQL, day).fetchall(), args.repeat)
        from_rollup = BALANCE_SQL.format(hourly=HOURLY_FROM_ROLLUP)
        results.balance_rollup = repeat(lambda: con.execute(from_rollup, window).fetchall(),
                                        max(5, args.repeat // 3))
        say(f"  {elapsed:.1f} s; aggregate {results.aggregate_rollup.describe()}, balance "
            f"{results.balance_rollup.describe()}")
    finally:
        con.close()
    results.notes.append(Row("raw DuckDB: scratch file", "",
                             f"{path.stat().st_size / 1_000_000:,.1f} MB"))
    return results


# --- the table ---------------------------------------------------------------------------------


def verdict(value: float | None, target: float, *, at_most: bool) -> str:
    if value is None:
        return ""
    return "ok" if (value <= target if at_most else value >= target) else "MISSED"


def rate(value: float | None) -> str:
    return f"{value:,.0f}/s" if value is not None else "n/a"


def timing(value: Timings | None, fraction: float) -> str:
    return f"{value.percentile(fraction):,.1f} ms" if value and value.seconds else "n/a"


def p50(value: Timings | None) -> float | None:
    return value.percentile(0.5) if value and value.seconds else None


def agree(api: float | None, raw: float | None) -> str:
    if api is None or raw is None:
        return ""
    return "ok" if abs(api - raw) <= 1e-6 * max(1.0, abs(raw)) else "DIFFER"


def rows_of(api: Results, raw: Results) -> list[Row]:
    rows = [
        Row("HTTP floor: GET /api/telemetry/channels, p50", timing(api.floor, 0.5)),
        Row("JSON batch ingest, readings/s", rate(api.json_rate), rate(raw.json_rate),
            f">= {TARGET_JSON:,.0f}/s", verdict(api.json_rate, TARGET_JSON, at_most=False)),
        Row("Parquet upload, readings/s", rate(api.parquet_rate), rate(raw.parquet_rate),
            f">= {TARGET_PARQUET:,.0f}/s",
            verdict(api.parquet_rate, TARGET_PARQUET, at_most=False)),
        Row(f"series right after ingest ({api.unsealed} days unsealed; raw: unsorted), p50",
            timing(api.series_before, 0.5), timing(raw.series_before, 0.5)),
        Row("series right after ingest, p99", timing(api.series_before, 0.99),
            timing(raw.series_before, 0.99)),
        Row(f"series, 1 sensor, whole range, {MAX_POINTS:,} points, p50",
            timing(api.series, 0.5), timing(raw.series, 0.5), f"<= {TARGET_SERIES_MS:g} ms",
            verdict(p50(api.series), TARGET_SERIES_MS, at_most=True)),
        Row("series, p99", timing(api.series, 0.99), timing(raw.series, 0.99)),
        Row("hourly aggregate, all sensors, one day, p50", timing(api.aggregate, 0.5),
            timing(raw.aggregate, 0.5), f"<= {TARGET_AGGREGATE_MS:g} ms",
            verdict(p50(api.aggregate), TARGET_AGGREGATE_MS, at_most=True)),
        Row("hourly aggregate, p99", timing(api.aggregate, 0.99), timing(raw.aggregate, 0.99)),
        Row("hourly aggregate, p50, raw from an hourly rollup", "",
            timing(raw.aggregate_rollup, 0.5)),
        Row("daily energy balance, whole range, p50", timing(api.balance, 0.5),
            timing(raw.balance, 0.5), f"<= {TARGET_BALANCE_MS:,.0f} ms",
            verdict(p50(api.balance), TARGET_BALANCE_MS, at_most=True)),
        Row("daily energy balance, p99", timing(api.balance, 0.99), timing(raw.balance, 0.99)),
        Row("daily energy balance, p50, raw from an hourly rollup", "",
            timing(raw.balance_rollup, 0.5)),
        Row("check: series points", count(api.series_points), count(raw.series_points),
            "same", agree(api.series_points, raw.series_points)),
        Row("check: hourly aggregate, buckets", count(api.aggregate_buckets),
            count(raw.aggregate_buckets), "same",
            agree(api.aggregate_buckets, raw.aggregate_buckets)),
        Row("check: hourly aggregate, sum of sums (Wh)", number(api.aggregate_sum),
            number(raw.aggregate_sum), "same", agree(api.aggregate_sum, raw.aggregate_sum)),
    ]
    for name, index in (("withdrawn", 0), ("fed in", 1), ("shared", 2)):
        left = api.balance_totals[index] if api.balance_totals else None
        right = raw.balance_totals[index] if raw.balance_totals else None
        rows.append(Row(f"check: balance totals, {name} (Wh)", number(left), number(right),
                        "same", agree(left, right)))
    return rows + api.notes + raw.notes


def count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "n/a"


def number(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "n/a"


def print_table(rows: list[Row], plan: Plan, args: argparse.Namespace) -> None:
    headers = Row("figure", "API", "raw DuckDB", "target", "")
    table = [headers, *rows]
    cells = [(row.figure, row.api, row.raw, row.target, row.verdict) for row in table]
    widths = [min(70, max(len(line[column]) for line in cells)) for column in range(5)]
    print()
    print(f"CommonWatt telemetry benchmark: {plan.sensors:,} sensors x {plan.days} days = "
          f"{plan.readings:,} readings ({args.json_days} day(s) as JSON, {args.clients} "
          f"clients); {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; DuckDB "
          f"{duckdb.__version__}")
    print(f"load average (1 min) at start {args.load_at_start:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}; latencies over {args.repeat} calls after {WARMUP} "
          f"warm-up calls (the balance over max(5, repeat / 3))")
    for number_, line in enumerate(cells):
        print(" | ".join(cell[:width].ljust(width) for cell, width in zip(line, widths,
                                                                              strict=True)))
        if number_ == 0:
            print("-+-".join("-" * width for width in widths))


@dataclass
class Workspace:
    """The temporary directory: kept with --keep, removed otherwise."""

    root: Path
    keep: bool

    @classmethod
    def create(cls, keep: bool) -> Workspace:
        return cls(Path(tempfile.mkdtemp(prefix="cw-bench-telemetry-")), keep)

    def close(self) -> None:
        if self.keep:
            say(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def run(workspace: Workspace, plan: Plan, args: argparse.Namespace) -> list[Row]:
    say(f"{plan.sensors:,} sensors x {plan.days} days = {plan.readings:,} readings")
    load = prepare(plan, args.json_days, workspace.root)
    data_dir = workspace.root / "data"
    data_dir.mkdir()
    try:
        api = run_server(load, data_dir, args)
    except PhaseFailed as error:
        say(f"the server phases failed: {error}")
        api = Results(notes=[Row("server", f"failed: {error}"[:200])])
    raw = measure_raw(load, workspace.root, args)
    return rows_of(api, raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.telemetry",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sensors", type=int, default=800)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--json-days", type=int, default=10,
                        help="the first days go in as JSON batches, the rest as Parquet")
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START,
                        help="the first day (UTC midnight), YYYY-MM-DD")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=30, help="calls per query figure")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directory, the Parquet files and the scratch file")
    parser.add_argument("--log-level", default="WARNING", help="the server's log level")
    args = parser.parse_args(argv)
    if not 0 <= args.json_days <= args.days or args.clients < 1 or args.repeat < 1:
        parser.error("need 0 <= --json-days <= --days, --clients >= 1 and --repeat >= 1")
    args.load_at_start = os.getloadavg()[0]
    plan = make_plan(sensors=args.sensors, days=args.days, start=args.start, seed=args.seed)
    workspace = Workspace.create(args.keep)
    try:
        print_table(run(workspace, plan, args), plan, args)
    finally:
        workspace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
