"""The GraphQL benchmark: a community's 800 sensors with their latest value and one day's
hourly aggregates, in one GraphQL query beside the same data through REST calls.

    python -m tests.benchmarks.graphql [--members 40] [--per-member 20] [--repeat 5]

In process (the app's ASGI test client, no network), on a fresh SQLite registry and telemetry
file in a temporary directory. Prints figures (best and median of --repeat runs) and never
asserts timings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api, community_doc
from tests.handlers.test_graphql import BIG_QUERY, DAY, big_community, big_readings

SPAN = {"from": f"{DAY}T00:00:00Z", "to": "2026-03-03T00:00:00Z"}


def timed(label: str, repeat: int, run: Callable[[], int]) -> None:
    """Run `run` repeat times and print its best and median time, and what it returned."""
    times = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        size = run()
        times.append(time.perf_counter() - start)
    print(f"{label:<58} best {min(times) * 1000:8.1f} ms  median "
          f"{statistics.median(times) * 1000:8.1f} ms  ({size:,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--per-member", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), jwt_secret=SecretStr("b" * 48),
                            telemetry_compact_interval_seconds=0,
                            graphql_expensive_per_minute=1000)
        app = create_app(settings)
        with app.test_client() as client:
            api = Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                      runtime=app.runtime)  # type: ignore[attr-defined]
            run(api, options.members, options.per_member, options.repeat)
        app.runtime.close()  # type: ignore[attr-defined]


def run(api: Api, members: int, per_member: int, repeat: int) -> None:
    document = big_community(members, per_member)
    sensors = sorted(meter["sensor_id"] for member in document["members"].values()
                     for meter in member["assets"]["meter"].values())
    api.import_yaml(document, community_doc("other"))
    rows = big_readings(sensors)
    for start in range(0, len(rows), 6400):
        response = api.client.post("/api/telemetry/readings",
                                   json={"readings": rows[start:start + 6400]},
                                   headers=api.admin())
        assert response.status_code == 200, response.text
    headers = api.admin()
    client = api.client
    print(f"{len(sensors)} sensors, {len(rows):,} readings; latest power and 24 hourly "
          f"aggregates of {DAY} for each")

    def graphql() -> int:
        response = client.post("/api/graphql", json={"query": BIG_QUERY, "variables": SPAN},
                               headers=headers)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return len(response.content)

    def rest_two_calls() -> int:
        listed = client.get("/api/telemetry/communities/big/sensors", headers=headers)
        buckets = client.get("/api/telemetry/aggregates", params={
            "community": "big", "channel": "power", "bucket": "hour", **SPAN}, headers=headers)
        assert listed.status_code == buckets.status_code == 200
        return len(listed.content) + len(buckets.content)

    def rest_per_sensor() -> int:
        size = 0
        for sensor in sensors:
            latest = client.get("/api/telemetry/latest",
                                params={"sensor_id": sensor, "channel": "power"},
                                headers=headers)
            buckets = client.get("/api/telemetry/aggregates", params={
                "sensor_id": sensor, "channel": "power", "bucket": "hour", **SPAN},
                headers=headers)
            assert latest.status_code == buckets.status_code == 200
            size += len(latest.content) + len(buckets.content)
        return size

    timed("GraphQL, one query", repeat, graphql)
    timed("REST, 2 calls (community sensors + community aggregates)", repeat, rest_two_calls)
    timed(f"REST, {2 * len(sensors)} calls (latest + aggregates per sensor)",
          max(1, repeat // 5), rest_per_sensor)


if __name__ == "__main__":
    main()
