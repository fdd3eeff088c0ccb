"""Downsampled series: M4 over raw readings and over the hourly rollup, against brute force."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from storage.telemetry import partials, queries
from storage.telemetry.compaction import compact
from storage.telemetry.ingest import ingest_table
from storage.telemetry.store import HOUR_MS, TelemetryStore

START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
STEP = 7 * 60_000
DAYS = 30


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened
    opened.close()


def _readings(store: TelemetryStore) -> list[tuple[int, float]]:
    """30 days of a reading every 7 minutes; values with many ties, so that which of equal
    extremes M4 keeps matters."""
    generator = random.Random(7)
    points = [(START + index * STEP, float(generator.randint(0, 40)))
              for index in range(DAYS * 86_400_000 // STEP)]
    ingest_table(store, pa.table({
        "idx": pa.array(range(len(points)), pa.int64()),
        "sensor_id": ["s"] * len(points), "channel": ["power"] * len(points),
        "ts": pa.array([ts for ts, _ in points], pa.int64()),
        "value": pa.array([value for _, value in points], pa.float64())}),
        authorize=lambda ids: dict.fromkeys(ids, 1), max_future_ms=10**13)
    return points


def _brute_m4(points: list[tuple[int, float]], slice_of: dict[int, int]) -> list[tuple[int, float]]:
    """Per slice the first, last, lowest and highest reading (the earliest of equal ones)."""
    slices: dict[int, list[tuple[int, float]]] = {}
    for ts, value in points:
        slices.setdefault(slice_of[ts], []).append((ts, value))
    kept: dict[int, float] = {}
    for members in slices.values():
        for ts, value in (members[0], members[-1],
                          min(members, key=lambda point: (point[1], point[0])),
                          max(members, key=lambda point: (point[1], -point[0]))):
            kept[ts] = value
    return sorted(kept.items())


def _series(store: TelemetryStore, low: int, high: int, max_points: int) -> queries.Series:
    return queries.series(store, sensors={"s": 1}, channel="power", low=low, high=high,
                          max_points=max_points)[0]


def test_a_long_range_is_sliced_in_whole_hours_and_reads_the_rollup_once_sealed(
        store: TelemetryStore) -> None:
    points = _readings(store)
    low, high = START + 17 * 60_000 + 3_000, START + DAYS * 86_400_000 - 5 * 60_000 - 1
    inside = [(ts, value) for ts, value in points if low <= ts < high]
    slicing = queries.m4_slicing(low, high, 100)
    assert slicing is not None
    origin, width, slices = slicing
    assert width % HOUR_MS == 0 and width >= 2 * HOUR_MS and slices <= 25
    expected = _brute_m4(inside, {ts: (ts - origin) // width for ts, _ in inside})

    before = _series(store, low, high, 100)
    assert list(zip(before.ts, before.value, strict=True)) == expected
    assert before.downsampled and before.raw_count == len(inside) and len(before.ts) <= 100
    assert before.ts[0] == inside[0][0] and before.ts[-1] == inside[-1][0]
    assert min(before.value) == min(v for _, v in inside)
    assert max(before.value) == max(v for _, v in inside)

    assert compact(store, quiet_ms=0) == DAYS and not store.unsealed
    assert _series(store, low, high, 100) == before


def test_a_short_range_is_sliced_exactly(store: TelemetryStore) -> None:
    points = _readings(store)
    low, high = START + 5 * 86_400_000 + 1, START + 6 * 86_400_000 + 13 * 60_000
    assert queries.m4_slicing(low, high, 100) is None
    inside = [(ts, value) for ts, value in points if low <= ts < high]
    expected = _brute_m4(inside, {ts: (ts - low) * 25 // (high - low) for ts, _ in inside})
    found = _series(store, low, high, 100)
    assert list(zip(found.ts, found.value, strict=True)) == expected
    compact(store, quiet_ms=0)
    assert _series(store, low, high, 100) == found


def test_few_readings_come_back_whole(store: TelemetryStore) -> None:
    points = _readings(store)
    low, high = START, START + 10 * STEP
    found = _series(store, low, high, 10)
    assert not found.downsampled and found.raw_count == 10
    assert list(zip(found.ts, found.value, strict=True)) == points[:10]


def test_sensors_asked_together_get_what_each_gets_alone(store: TelemetryStore) -> None:
    """Keys in few runs are filtered as ranges, keys scattered over more runs than
    MAX_SENSOR_RANGES by a semi join: both give each sensor its own buckets."""
    names = [f"s{number:03d}" for number in range(80)]
    minutes = 180
    ingest_table(store, pa.table({
        "idx": pa.array(range(len(names) * minutes), pa.int64()),
        "sensor_id": [name for name in names for _ in range(minutes)],
        "channel": ["power"] * (len(names) * minutes),
        "ts": pa.array([START + minute * 60_000 for _ in names for minute in range(minutes)],
                       pa.int64()),
        "value": pa.array([float(number * 1000 + minute) for number in range(len(names))
                           for minute in range(minutes)], pa.float64())}),
        authorize=lambda ids: dict.fromkeys(ids, 1), max_future_ms=10**13)
    scattered = names[::2]  # 40 runs of one key
    assert len(scattered) > partials.MAX_SENSOR_RANGES
    for asked in (scattered, names[10:15], [names[3], names[40]]):
        together = queries.aggregates(store, sensors=dict.fromkeys([*asked, "unknown"], 1),
                                      channel="power",
                                      low=START, high=START + 3 * HOUR_MS, bucket="hour",
                                      zone=ZoneInfo("UTC"))
        assert together.of("unknown").rows() == []
        for name in asked:
            alone = queries.aggregates(store, sensors={name: 1}, channel="power", low=START,
                                       high=START + 3 * HOUR_MS, bucket="hour",
                                       zone=ZoneInfo("UTC"))
            buckets = together.of(name).rows()
            assert buckets == alone.of(name).rows()
            number = int(name[1:])
            assert [(bucket.count, bucket.first, bucket.last) for bucket in buckets] == [
                (60, number * 1000 + hour * 60, number * 1000 + hour * 60 + 59)
                for hour in range(3)]
