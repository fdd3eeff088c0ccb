"""The registry benchmark: bundle import and export, and request rates, against the real server.

    python -m tests.benchmarks.registry [--backend sqlite|postgresql|both] [--members 10000]
                                        [--clients 8] [--seconds 10]

For each backend: a fresh data directory and database, the admin created with the CLI, the
server started as a subprocess (`python -m handlers.cli serve`), then over HTTP on loopback:
YAML import (new, then `force=true`), export (twice, compared; then re-imported as a dry
run), requests per second of concurrent keep-alive clients on an asset detail and on a
500-member page, the server's peak memory (VmHWM), and for context the same member page
query done directly with SQLAlchemy. It prints figures and never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from tests.benchmarks.generate_community import (
    DEFAULT_ASSETS_PER_MEMBER,
    DEFAULT_COMMUNITY,
    DEFAULT_SEED,
    dump,
    generate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ADMIN_EMAIL = "bench-admin@commonwatt.test"
HOST = "127.0.0.1"
PAGE_SIZE = 500
TARGET_IMPORT_S = 10.0
TARGET_EXPORT_S = 5.0
TARGET_PEAK_MB = 600.0
LONG_TIMEOUT = httpx.Timeout(900.0, connect=10.0)
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
WARMUP_REQUESTS = 3


@dataclass
class Row:
    """One line of the final table."""

    backend: str
    figure: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Bundle:
    """The generated community: its YAML and the keys the load phases pick from."""

    key: str
    data: bytes
    asset_keys: list[str]
    members: int
    assets: int


@dataclass
class LoadResult:
    """What the concurrent clients saw during one timed phase."""

    elapsed: float
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300) \
            + sum(self.failures.values())

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


class PhaseFailed(Exception):
    """A phase got an answer it cannot measure (non-2xx, unreachable server)."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def check(response: httpx.Response, what: str) -> httpx.Response:
    if not 200 <= response.status_code < 300:
        summary = response.text[:300]
        with suppress(ValueError, AttributeError):
            problem = response.json()
            summary = f"{problem.get('code') or problem.get('title')}: {problem.get('detail')}"
        raise PhaseFailed(f"{what}: HTTP {response.status_code} {summary}")
    return response


def within(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


# --- the bundle ----------------------------------------------------------------------------


def make_bundle(args: argparse.Namespace) -> Bundle:
    if args.bundle:
        data = Path(args.bundle).read_bytes()
        say(f"parsing {args.bundle} for its keys...")
        safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a safe loader either way
        document = yaml.load(data, Loader=safe_loader)  # noqa: S506
    else:
        say(f"generating {args.members} members x {args.assets_per_member} assets...")
        document = generate(members=args.members, assets_per_member=args.assets_per_member,
                            seed=args.seed, community=args.community)
        data = dump(document)
    asset_keys = [key for member in document["members"].values()
                  for assets in member.get("assets", {}).values() for key in assets]
    say(f"bundle: {len(data) / 1_048_576:.1f} MiB, {len(document['members'])} members, "
        f"{len(asset_keys)} assets")
    return Bundle(key=document["community"]["id"], data=data, asset_keys=asset_keys,
                  members=len(document["members"]), assets=len(asset_keys))


# --- databases and the server ----------------------------------------------------------------


def postgres_unreachable(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    engine = create_engine(admin_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except (SQLAlchemyError, ImportError) as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        engine.dispose()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh, uniquely named database; dropped afterwards."""
    name = f"cw_bench_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(data_dir: Path, database_url: str, args: argparse.Namespace,
               body_bytes: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("COMMONWATT_")}
    env.update({
        "COMMONWATT_DATA_DIR": str(data_dir),
        "COMMONWATT_DATABASE_URL": database_url,
        "COMMONWATT_JWT_SECRET": secrets.token_urlsafe(48),
        "COMMONWATT_MAX_BODY_BYTES": str(max(64 * 1_048_576, 2 * body_bytes)),
        "COMMONWATT_ACCESS_TOKEN_TTL_SECONDS": "3600",
        "COMMONWATT_LOG_LEVEL": args.log_level,
    })
    return env


def create_admin(env: dict[str, str], password: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "handlers.cli", "users", "create", ADMIN_EMAIL, "--role", "admin"],
        input=password + "\n", env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300, check=False)
    if done.returncode != 0:
        raise PhaseFailed(f"users create: exit {done.returncode}: {done.stderr.strip()[-500:]}")


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes],
                                                                              str]]:
    """The real server as a subprocess, healthy; SIGTERM and wait afterwards."""
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", "serve", "--host", HOST, "--port", str(port)],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            unhealthy = 0
            while True:
                if process.poll() is not None:
                    raise PhaseFailed(f"server exited with {process.returncode}: "
                                      f"{tail(log_path)}")
                with suppress(httpx.HTTPError):
                    status = httpx.get(f"{base_url}/api/health", timeout=2).status_code
                    if status == 200:
                        break
                    unhealthy += 1
                    if unhealthy >= 5:
                        raise PhaseFailed(f"GET /api/health answers {status}: {tail(log_path)}")
                if time.monotonic() > deadline:
                    raise PhaseFailed(f"server not healthy after 60 s: {tail(log_path)}")
                time.sleep(0.2)
            yield process, base_url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            show_tracebacks(log_path)


def show_tracebacks(log_path: Path, limit: int = 14) -> None:
    """The end of the server's last traceback, on stderr, before the log is deleted."""
    with suppress(OSError):
        lines = log_path.read_text(errors="replace").splitlines()
        starts = [number for number, line in enumerate(lines) if line.startswith("Traceback")]
        if not starts:
            return
        end = starts[-1] + 1
        while end < len(lines) and lines[end].startswith(" "):
            end += 1
        say(f"  the server logged {len(starts)} traceback(s); the end of the last one:")
        for line in lines[max(starts[-1], end - limit):end + 1]:
            say(f"  | {line}")


def tail(path: Path) -> str:
    """The last non-blank line of the server's log (the exception, when it failed)."""
    with suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "(empty log)"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when unreadable)."""
    with suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def peak_memory_mb(pid: int) -> float | None:
    """VmHWM, the resident-set high-water mark of a process, in MB (10^6 bytes)."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1_000_000
    return None


# --- the phases -------------------------------------------------------------------------------


def timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> tuple[float,
                                                                                 httpx.Response]:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    return time.perf_counter() - started, response


def import_yaml(client: httpx.Client, body: bytes, **params: str) -> tuple[float, dict[str, Any]]:
    seconds, response = timed(client, "POST", "/api/admin/import/yaml", content=body,
                              params=params, headers={"Content-Type": "application/yaml"},
                              timeout=LONG_TIMEOUT)
    report: dict[str, Any] = check(response, f"import {params or ''}".strip()).json()
    return seconds, report


def member_cursors(client: httpx.Client, community: str) -> list[str | None]:
    """The cursors of every 500-member page, walked from the first page."""
    cursors: list[str | None] = [None]
    while True:
        params = {"limit": str(PAGE_SIZE)}
        if cursors[-1] is not None:
            params["cursor"] = cursors[-1]
        response = check(client.get(f"/api/admin/communities/{community}/members",
                                    params=params), "member page")
        following = response.json().get("next_cursor")
        if not following:
            return cursors
        cursors.append(following)


def run_load(base_url: str, token: str, *, pid: int, clients: int, seconds: float,
             max_requests: int,
             request_of: Callable[[random.Random], tuple[str, dict[str, str]]]) -> LoadResult:
    """`clients` threads, each with its own keep-alive httpx.Client, for `seconds`."""
    per_client = max(1, max_requests // clients)
    barrier = threading.Barrier(clients + 1)
    results: list[LoadResult] = [LoadResult(0.0) for _ in range(clients)]
    stop_at = [0.0]

    def client_loop(number: int) -> None:
        rng = random.Random(number)
        result = results[number]
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(WARMUP_REQUESTS):
                path, params = request_of(rng)
                with suppress(httpx.HTTPError):
                    client.get(path, params=params)
            barrier.wait()
            for _ in range(per_client):
                if time.perf_counter() >= stop_at[0]:
                    break
                path, params = request_of(rng)
                started = time.perf_counter()
                try:
                    response = client.get(path, params=params)
                    response.read()
                    result.statuses[response.status_code] += 1
                except httpx.HTTPError as error:
                    result.failures[type(error).__name__] += 1
                result.latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client_loop, args=(number,), daemon=True)
               for number in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds + 3600  # until everyone is warmed up
    barrier.wait(timeout=120)
    server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    for thread in threads:
        thread.join(timeout=seconds + 120)
    total = LoadResult(time.perf_counter() - started, server_cpu=cpu_seconds(pid) - server_cpu,
                       client_cpu=time.process_time() - client_cpu)
    for result in results:
        total.latencies.extend(result.latencies)
        total.statuses.update(result.statuses)
        total.failures.update(result.failures)
    return total


def engine_rates(database_url: str, community: str, seconds: float) -> tuple[float, float]:
    """Queries/s of the member-page query, raw SQL rows and SQLModel objects, one thread."""
    from storage.models import Member

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            community_id = connection.execute(
                text("SELECT id FROM community WHERE key = :key"), {"key": community}).scalar_one()
        query = text("SELECT * FROM member WHERE community_id = :community_id "
                     "ORDER BY id LIMIT :limit")
        parameters = {"community_id": community_id, "limit": PAGE_SIZE + 1}
        with engine.connect() as connection:
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                connection.execute(query, parameters).all()
                count += 1
            raw = count / (time.perf_counter() - started)
        statement = (select(Member).where(Member.community_id == community_id)
                     .order_by(Member.id).limit(PAGE_SIZE + 1))  # type: ignore[arg-type]
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            with Session(engine) as session:
                session.scalars(statement).all()
            count += 1
        orm = count / (time.perf_counter() - started)
        return raw, orm
    finally:
        engine.dispose()


def load_rows(backend: str, label: str, result: LoadResult) -> list[Row]:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.statuses.items()))
    failures = ", ".join(f"{name}: {count}" for name, count in result.failures.items())
    say(f"  {label}: {result.requests} requests in {result.elapsed:.1f} s; {statuses} {failures}")
    rate = result.requests / result.elapsed if result.elapsed else 0.0
    non_2xx = {status: count for status, count in result.statuses.items()
               if not 200 <= status < 300}
    detail = ", ".join(f"HTTP {status} x{count}" for status, count in sorted(non_2xx.items()))
    if failures:
        detail = ", ".join(part for part in (detail, failures) if part)
    return [
        Row(backend, f"{label}: requests/s", f"{rate:,.0f}"),
        Row(backend, f"{label}: latency p50", f"{result.percentile(0.50) * 1000:.1f} ms"),
        Row(backend, f"{label}: latency p99", f"{result.percentile(0.99) * 1000:.1f} ms"),
        Row(backend, f"{label}: server CPU per request",
            f"{result.server_cpu / max(1, result.requests) * 1000:.2f} ms "
            f"(server {result.server_cpu / result.elapsed:.0%} of a core, "
            f"clients {result.client_cpu / result.elapsed:.0%})"),
        Row(backend, f"{label}: errors", f"{result.errors} of {result.requests}"
            + (f" ({detail})" if detail else ""), "0", "ok" if result.errors == 0 else "FAIL"),
    ]


def run_backend(backend: str, database_url: str, data_dir: Path, bundle: Bundle,
                args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    env = server_env(data_dir, database_url, args, len(bundle.data))
    password = secrets.token_urlsafe(16)
    say(f"[{backend}] creating the admin account...")
    create_admin(env, password)
    log_path = data_dir / "server.log"
    with running_server(env, log_path) as (process, base_url):
        say(f"[{backend}] server pid {process.pid} at {base_url} (log: {log_path})")
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
            login = check(client.post("/api/auth/login",
                                      json={"email": ADMIN_EMAIL, "password": password}), "login")
            token = login.json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            rows.extend(measure(backend, client, base_url, token, bundle, args, process.pid))
        say(f"[{backend}] the member page query directly through SQLAlchemy...")
        try:
            raw, orm = engine_rates(database_url, bundle.key, min(args.seconds, 5.0))
            rows.append(Row(backend, "engine: member page query/s (raw rows, 1 thread)",
                            f"{raw:,.0f}"))
            rows.append(Row(backend, "engine: member page query/s (SQLModel, 1 thread)",
                            f"{orm:,.0f}"))
        except SQLAlchemyError as error:
            rows.append(Row(backend, "engine: member page query/s",
                            f"failed: {type(error).__name__}: {str(error).splitlines()[0]}"))
        peak = peak_memory_mb(process.pid)
        rows.append(Row(backend, "server peak memory (VmHWM, whole run)",
                        f"{peak:.0f} MB" if peak is not None else "n/a",
                        f"<= {TARGET_PEAK_MB:.0f} MB",
                        within(peak, TARGET_PEAK_MB) if peak is not None else ""))
    return rows


def measure(backend: str, client: httpx.Client, base_url: str, token: str, bundle: Bundle,
            args: argparse.Namespace, pid: int) -> list[Row]:
    rows: list[Row] = []
    target = f"<= {TARGET_IMPORT_S:.0f} s"
    say(f"[{backend}] importing {len(bundle.data) / 1_048_576:.1f} MiB of YAML...")
    try:
        seconds, _ = import_yaml(client, bundle.data)
    except PhaseFailed as error:
        rows.append(Row(backend, "YAML import (new community)", f"failed: {error}"))
        return rows
    rows.append(Row(backend, "YAML import (new community)", f"{seconds:.2f} s", target,
                    within(seconds, TARGET_IMPORT_S)))
    peak = peak_memory_mb(pid)
    rows.append(Row(backend, "server peak memory after first import",
                    f"{peak:.0f} MB" if peak is not None else "n/a"))
    say(f"[{backend}] importing again with force=true...")
    try:
        seconds, _ = import_yaml(client, bundle.data, force="true")
        rows.append(Row(backend, "YAML import (force=true, replace)", f"{seconds:.2f} s", target,
                        within(seconds, TARGET_IMPORT_S)))
    except PhaseFailed as error:
        rows.append(Row(backend, "YAML import (force=true, replace)", f"failed: {error}"))

    say(f"[{backend}] exporting...")
    try:
        url = "/api/admin/export"
        seconds, first = timed(client, "GET", url, params={"community": bundle.key},
                               timeout=LONG_TIMEOUT)
        check(first, "export")
        rows.append(Row(backend, "export", f"{seconds:.2f} s", f"<= {TARGET_EXPORT_S:.0f} s",
                        within(seconds, TARGET_EXPORT_S)))
        rows.append(Row(backend, "export size", f"{len(first.content):,} bytes"))
        again = check(client.get(url, params={"community": bundle.key}, timeout=LONG_TIMEOUT),
                      "second export")
        same = again.content == first.content
        rows.append(Row(backend, "two exports byte-identical", "yes" if same else "NO", "yes",
                        "ok" if same else "FAIL"))
        try:
            seconds, _ = import_yaml(client, first.content, dry_run="true", force="true")
            rows.append(Row(backend, "export re-imports (dry run)", f"yes, {seconds:.2f} s",
                            "yes", "ok"))
        except PhaseFailed as error:
            rows.append(Row(backend, "export re-imports (dry run)", f"NO: {error}", "yes",
                            "FAIL"))
    except PhaseFailed as error:
        rows.append(Row(backend, "export", f"failed: {error}"))

    community = bundle.key
    say(f"[{backend}] asset detail, {args.clients} clients x {args.seconds:g} s...")
    asset_keys = bundle.asset_keys
    result = run_load(base_url, token, pid=pid, clients=args.clients, seconds=args.seconds,
                      max_requests=args.max_requests,
                      request_of=lambda rng: (
                          f"/api/admin/communities/{community}/assets/{rng.choice(asset_keys)}",
                          {}))
    rows.extend(load_rows(backend, "asset detail", result))

    say(f"[{backend}] member pages of {PAGE_SIZE}, {args.clients} clients x {args.seconds:g} s...")
    try:
        cursors = member_cursors(client, community)
    except PhaseFailed as error:
        rows.append(Row(backend, f"member page ({PAGE_SIZE})", f"failed: {error}"))
        return rows
    say(f"  {len(cursors)} pages; each request picks one at random")

    def page_request(rng: random.Random) -> tuple[str, dict[str, str]]:
        cursor = rng.choice(cursors)
        params = {"limit": str(PAGE_SIZE)}
        if cursor is not None:
            params["cursor"] = cursor
        return f"/api/admin/communities/{community}/members", params

    result = run_load(base_url, token, pid=pid, clients=args.clients, seconds=args.seconds,
                      max_requests=args.max_requests, request_of=page_request)
    rows.extend(load_rows(backend, f"member page ({PAGE_SIZE})", result))
    return rows


def run(backend: str, bundle: Bundle, args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix=f"cw-bench-{backend}-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        try:
            if backend == "sqlite":
                url = f"sqlite:///{data_dir / 'registry.sqlite3'}"
                return run_backend(backend, url, data_dir, bundle, args)
            unreachable = postgres_unreachable(args.postgres_url)
            if unreachable:
                note = f"skipped: PostgreSQL unreachable at {args.postgres_url} ({unreachable})"
                say(f"[{backend}] {note}")
                return [Row(backend, "all figures", note)]
            with postgres_database(args.postgres_url) as url:
                return run_backend(backend, url, data_dir, bundle, args)
        except PhaseFailed as error:
            say(f"[{backend}] failed: {error}")
            return [Row(backend, "setup", f"failed: {error}")]


def print_table(rows: list[Row], bundle: Bundle, args: argparse.Namespace) -> None:
    headers = ("backend", "figure", "value", "target", "")
    table = [headers] + [(row.backend, row.figure, row.value, row.target, row.verdict)
                         for row in rows]
    widths = [min(90, max(len(line[column]) for line in table)) for column in range(5)]
    print()
    print(f"CommonWatt registry benchmark: {bundle.members:,} members, {bundle.assets:,} "
          f"assets, {len(bundle.data) / 1_048_576:.1f} MiB YAML; {args.clients} clients x "
          f"{args.seconds:g} s; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print(f"load average (1 min) at start {args.load_at_start:.2f}, at end "
          f"{os.getloadavg()[0]:.2f}: anything above ~0.5 means other work shared the CPUs")
    rule = "-+-".join("-" * width for width in widths)
    for number, line in enumerate(table):
        print(" | ".join(cell[:width].ljust(width) for cell, width in zip(line, widths,
                                                                              strict=True)))
        if number == 0:
            print(rule)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.registry",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--assets-per-member", type=int, default=DEFAULT_ASSETS_PER_MEMBER)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--community", default=DEFAULT_COMMUNITY)
    parser.add_argument("--bundle", metavar="FILE",
                        help="use this generated YAML file instead of generating one")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000,
                        help="upper bound on requests per load phase, all clients together")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="a database to create (and drop) the benchmark database from")
    parser.add_argument("--log-level", default="WARNING",
                        help="the server's COMMONWATT_LOG_LEVEL (INFO logs every request)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    args.load_at_start = os.getloadavg()[0]
    bundle = make_bundle(args)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows: list[Row] = []
    for backend in backends:
        rows.extend(run(backend, bundle, args))
    print_table(rows, bundle, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
