"""JSON ingest with 0 and with 1,000 active threshold rules, side by side in one run.

    python -m tests.benchmarks.rules [--sensors 200] [--rounds 6] [--batches 4]

Two apps run in this process (each its own temporary data directory and SQLite registry),
holding the same community (`--sensors` meters). App B has 1,000 enabled rules: four per
sensor on `power` (gt, lt, between, not_between), community-wide ones on the other channels,
and ten community-wide ones on `power`, one of which fires now and then (a cooldown of an
hour). The rounds are interleaved: each round posts `--batches` columnar JSON batches of
10,000 readings to A and to B (which goes first alternates), through the in-process HTTP
client (routing, validation, access check, ingest, and for B the evaluation and recording of
firings). Readings/s per app = readings accepted / seconds spent in its requests. The ratio
B / A is printed beside the target (>= 0.9). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import SecretStr

from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api, community_doc, member_doc

COMMUNITY = "rules"
BATCH = 10_000
RULES = 1_000
TARGET_RATIO = 0.9
START = datetime(2026, 3, 1, tzinfo=UTC)
OTHER_CHANNELS = ("energy_import", "energy_export", "voltage", "current", "soc",
                  "temperature")


def rule_bodies(sensors: list[str], peak: float = 999.0) -> list[dict[str, Any]]:
    """1,000 rules: four per sensor on power, community-wide ones for the rest."""
    bodies: list[dict[str, Any]] = []
    for sensor in sensors:
        bodies += [
            {"name": f"{sensor} spike", "sensor_id": sensor, "channel": "power",
             "operator": "gt", "threshold": 1e9},
            {"name": f"{sensor} reverse", "sensor_id": sensor, "channel": "power",
             "operator": "lt", "threshold": -1e9, "for_seconds": 300},
            {"name": f"{sensor} band", "sensor_id": sensor, "channel": "power",
             "operator": "between", "threshold": 1e9, "threshold_high": 2e9},
            {"name": f"{sensor} range", "sensor_id": sensor, "channel": "power",
             "operator": "not_between", "threshold": -1e12, "threshold_high": 1e12},
        ]
    bodies.append({"name": "community peak", "channel": "power", "operator": "gt",
                   "threshold": peak, "cooldown_seconds": 3600})
    bodies += [{"name": f"community power {index}", "channel": "power", "operator": "gt",
                "threshold": 1e6 + index} for index in range(9)]
    index = 0
    while len(bodies) < RULES:
        bodies.append({"name": f"community {index}", "channel": OTHER_CHANNELS[
            index % len(OTHER_CHANNELS)], "operator": "gt", "threshold": 1e6 + index})
        index += 1
    return bodies[:RULES]


def batches(sensors: list[str], count: int, seed: int = 14) -> list[bytes]:
    """Columnar JSON batches of 10,000 power readings, one per sensor and minute, in time
    order (values 0-1000 W)."""
    random = np.random.default_rng(seed)
    minutes_per_batch = BATCH // len(sensors)
    bodies = []
    for number in range(count):
        first = number * minutes_per_batch
        stamps = [(START + timedelta(minutes=first + minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
                  for minute in range(minutes_per_batch)]
        bodies.append(orjson.dumps({
            "sensor_id": [sensor for _ in stamps for sensor in sensors],
            "channel": "power",
            "ts": [stamp for stamp in stamps for _ in sensors],
            "value": np.round(random.uniform(0, 1000, len(stamps) * len(sensors)),
                              1).tolist()}))
    return bodies


class Side:
    """One in-process app and the time and readings its requests took."""

    def __init__(self, name: str, data_dir: Path, sensors: list[str]) -> None:
        self.name = name
        settings = Settings(data_dir=data_dir, jwt_secret=SecretStr("bench-" + "x" * 40),
                            telemetry_compact_interval_seconds=0, log_level="ERROR")
        self.app = create_app(settings)
        self.context = self.app.test_client()
        client = self.context.__enter__()
        self.api = Api(client=client, engine=self.app.runtime.engine,  # type: ignore[attr-defined]
                       runtime=self.app.runtime)  # type: ignore[attr-defined]
        members = {f"m{index}": member_doc(f"m{index}", sensors=(sensor,))
                   for index, sensor in enumerate(sensors)}
        self.api.import_yaml(community_doc(COMMUNITY, members))
        self.headers = self.api.admin()
        self.seconds = 0.0
        self.readings = 0

    def add_rules(self, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            answer = self.api.client.post(f"/api/admin/communities/{COMMUNITY}/rules",
                                          headers=self.headers, json=body)
            assert answer.status_code == 201, answer.text

    def send(self, body: bytes) -> None:
        began = time.perf_counter()
        answer = self.api.client.post("/api/telemetry/readings", content=body, headers={
            **self.headers, "Content-Type": "application/json"})
        self.seconds += time.perf_counter() - began
        if answer.status_code != 200:
            raise SystemExit(f"{self.name}: ingest answered {answer.status_code}: "
                             f"{answer.text[:300]}")
        self.readings += int(answer.json()["accepted"])

    def fired(self) -> int:
        total = 0
        cursor: str | None = None
        while True:
            page = self.api.client.get(f"/api/admin/communities/{COMMUNITY}/rules",
                                       params={"limit": 500, **({"cursor": cursor}
                                                                if cursor else {})},
                                       headers=self.headers).json()
            for rule in page["items"]:
                if rule["name"].startswith("community peak"):
                    events = self.api.client.get(
                        f"/api/admin/communities/{COMMUNITY}/rules/{rule['id']}/events",
                        params={"limit": 500}, headers=self.headers).json()
                    total += len(events["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return total

    def close(self) -> None:
        self.context.__exit__(None, None, None)
        self.app.runtime.close()  # type: ignore[attr-defined]

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.rules",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=4, help="batches per app and round")
    parser.add_argument("--peak", type=float, default=999.0,
                        help="threshold of the one rule that fires (values are 0-1000 W); "
                             "above 1000 nothing fires")
    args = parser.parse_args(argv)
    sensors = [f"rule-s{index:04d}" for index in range(args.sensors)]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cw-rules-") as scratch:
        plain = Side("0 rules", Path(scratch) / "a", sensors)
        ruled = Side(f"{RULES} rules", Path(scratch) / "b", sensors)
        try:
            began = time.perf_counter()
            ruled.add_rules(rule_bodies(sensors, args.peak))
            print(f"created {RULES} rules over HTTP in {time.perf_counter() - began:.1f} s")
            bodies = batches(sensors, args.rounds * args.batches + 1)
            plain.send(bodies[-1])  # warm-up, not counted: first opening of each store
            ruled.send(bodies[-1])
            plain.seconds = ruled.seconds = 0.0
            plain.readings = ruled.readings = 0
            for number in range(args.rounds):
                chunk = bodies[number * args.batches:(number + 1) * args.batches]
                order = (plain, ruled) if number % 2 == 0 else (ruled, plain)
                for side in order:
                    for body in chunk:
                        side.send(body)
                print(f"round {number + 1}: {plain.name} {plain.rate:,.0f} readings/s, "
                      f"{ruled.name} {ruled.rate:,.0f} readings/s")
            ratio = ruled.rate / plain.rate if plain.rate else 0.0
            print()
            print(f"{'figure':40} {'value':>16} {'target':>10} verdict")
            print(f"{'JSON ingest, 0 rules (readings/s)':40} {plain.rate:16,.0f}")
            print(f"{'JSON ingest, 1,000 rules (readings/s)':40} {ruled.rate:16,.0f}")
            print(f"{'ratio (1,000 rules / 0 rules)':40} {ratio:16.3f} "
                  f"{'>= ' + str(TARGET_RATIO):>10} "
                  f"{'ok' if ratio >= TARGET_RATIO else 'MISSED'}")
            print(f"{'firings recorded (community peak)':40} {ruled.fired():16,d}")
            print(f"{'readings per app':40} {plain.readings:16,d}")
            print(f"load average (1 min): {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
        finally:
            plain.close()
            ruled.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
