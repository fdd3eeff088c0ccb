"""The costliest telemetry requests a member or operator can send, and what each costs the
server: CPU seconds and peak memory, measured in process around one request each.

    python -m tests.benchmarks.worst_case [--sensors 5] [--keep DIR]

Prints one line per request: status and code, wall and CPU seconds (the whole process, so
DuckDB's and the worker threads' too), the rise of peak resident memory (VmHWM, reset
before each request through /proc/self/clear_refs) and the tracemalloc peak of a second,
traced run. No assertion: figures to read.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api, community_doc, member_doc

COMMUNITY = "worst"
ZONE = "Asia/Kolkata"  # a half-hour offset: calendar buckets need 15-minute slots
BALANCE = f"/api/telemetry/communities/{COMMUNITY}/energy-balance"
TEN_MILLENNIA = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}
# The widest range of instants the API keeps: refused by the bucket count, not by the instants.
WIDEST = {"from": "1900-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"}


@dataclass(frozen=True)
class Case:
    """One request: what it is and its query."""

    name: str
    path: str
    params: dict[str, Any]


def cases(sensors: list[str]) -> list[Case]:
    """The refused extremes and the largest request each operation still answers."""
    few = sensors[:4]
    aggregate = {"community": COMMUNITY, "channel": "energy_import", "timezone": ZONE}
    return [
        Case("aggregates 15min, years 1-9999 (refused)", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "15min", **TEN_MILLENNIA}),
        Case("aggregates day, years 1-9999 (refused)", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "day", **TEN_MILLENNIA}),
        Case("aggregates month, years 1-9999 (refused)", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "month", **TEN_MILLENNIA}),
        Case("aggregates 15min, years 1900-2199 (refused)", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "15min", **WIDEST}),
        Case("aggregates day, years 1900-2199 (refused)", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "day", **WIDEST}),
        Case("aggregates 15min, 400 days, 4 sensors", "/api/telemetry/aggregates",
             {**aggregate, "community": None, "sensor_id": few, "bucket": "15min",
              "from": "2025-01-01T00:00:00Z", "to": "2026-02-05T00:00:00Z"}),
        Case("aggregates hour, 1830 days, 4 sensors", "/api/telemetry/aggregates",
             {**aggregate, "community": None, "sensor_id": few, "bucket": "hour",
              "from": "2021-01-01T00:00:00Z", "to": "2026-01-04T00:00:00Z"}),
        Case("aggregates day, 3660 days, community", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "day", "from": "2016-01-01T00:00:00Z",
              "to": "2026-01-08T00:00:00Z"}),
        Case("aggregates month, 7320 days, community", "/api/telemetry/aggregates",
             {**aggregate, "bucket": "month", "from": "2006-01-01T00:00:00Z",
              "to": "2026-01-15T00:00:00Z"}),
        Case("series, years 1-9999 (refused)", "/api/telemetry/series",
             {"sensor_id": sensors, "channel": "energy_import", "max_points": 5000,
              **TEN_MILLENNIA}),
        Case("series, years 1900-2199 (refused)", "/api/telemetry/series",
             {"sensor_id": sensors, "channel": "energy_import", "max_points": 5000,
              **WIDEST}),
        Case("series, 7320 days, max_points 5000", "/api/telemetry/series",
             {"sensor_id": sensors, "channel": "energy_import", "max_points": 5000,
              "from": "2006-01-01T00:00:00Z", "to": "2026-01-15T00:00:00Z"}),
        Case("daily, 401 days (refused)", "/api/telemetry/daily",
             {"sensor_id": sensors[0], "from": "2025-01-01", "to": "2026-02-05"}),
        Case("daily, 400 days", "/api/telemetry/daily",
             {"sensor_id": sensors[0], "from": "2025-01-01", "to": "2026-02-04"}),
        Case("balance, 367 days (refused)", BALANCE,
             {"from": "2025-01-01", "to": "2026-01-02", "granularity": "hour"}),
        Case("balance, 366 days by hour", BALANCE,
             {"from": "2025-01-01", "to": "2026-01-01", "granularity": "hour"}),
    ]


def peak_rss_kb() -> int:
    """VmHWM of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current resident size (Linux 4.0+); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(send: Callable[[], Any]) -> tuple[Any, float, float, int, int]:
    """The response, wall and CPU seconds, VmHWM rise (KiB), tracemalloc peak (bytes)."""
    reset_peak_rss()
    before_kb = peak_rss_kb()
    wall, cpu = time.perf_counter(), time.process_time()
    response = send()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rise_kb = peak_rss_kb() - before_kb
    tracemalloc.start()
    send()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return response, wall, cpu, rise_kb, traced_peak


def load(api: Api, sensors: list[str]) -> None:
    """A community holding the sensors, with a day of quarter-hourly energy each."""
    members = {f"m{index}": member_doc(f"m{index}", sensors=(sensor,))
               for index, sensor in enumerate(sensors)}
    document = community_doc(COMMUNITY, members)
    document["community"]["settings"]["timezone"] = ZONE
    api.import_yaml(document)
    stamps = [f"2025-06-01T{minute // 60:02d}:{minute % 60:02d}:00Z"
              for minute in range(0, 24 * 60, 15)]
    for channel in ("energy_import", "energy_export"):
        for sensor in sensors:
            response = api.client.post("/api/telemetry/readings", headers=api.admin(), json={
                "sensor_id": sensor, "channel": channel, "ts": stamps,
                "value": [float(index % 7) for index in range(len(stamps))]})
            assert response.status_code == 200, response.text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.worst_case",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sensors", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="data directory (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cw-worst-") as scratch:
        data_dir = Path(args.keep or scratch)
        settings = Settings(data_dir=data_dir, jwt_secret=SecretStr("bench-" + "x" * 40),
                            telemetry_compact_interval_seconds=0, log_level="WARNING")
        app = create_app(settings)
        with app.test_client() as client:
            api = Api(client=client, engine=app.runtime.engine)  # type: ignore[attr-defined]
            sensors = [f"worst-{index:03d}" for index in range(args.sensors)]
            load(api, sensors)
            headers = api.admin()
            print(f"{'request':46} {'answer':24} {'wall s':>7} {'CPU s':>7} "
                  f"{'VmHWM +MiB':>10} {'traced MiB':>10}")
            for case in cases(sensors):
                params = {key: value for key, value in case.params.items() if value is not None}

                def send(case: Case = case, params: dict[str, Any] = params) -> Any:
                    return client.get(case.path, params=params, headers=headers)

                response, wall, cpu, rise_kb, traced = measure(send)
                answer = str(response.status_code)
                if response.status_code >= 400:
                    answer += " " + response.json().get("code", "")
                print(f"{case.name:46} {answer:24} {wall:7.3f} {cpu:7.3f} "
                      f"{rise_kb / 1024:10.1f} {traced / 1_048_576:10.1f}")
        app.runtime.close()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
