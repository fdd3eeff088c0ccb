"""The hour edge: an energy reading counts for the bucket holding ts - 1 ms (the interval it
ends), in aggregates, daily summaries, metrics and the balance; other channels at ts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from storage.telemetry import balance, queries
from storage.telemetry.compaction import compact
from storage.telemetry.store import TelemetryStore
from tests.storage.telemetry.test_balance_and_buckets import ROME, _ms, _put

HOUR = 3_600_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened
    opened.close()


def _hours(store: TelemetryStore, channel: str, low: str, high: str,
           bucket: str = "hour") -> list[tuple[int, int, float]]:
    found = queries.aggregates(store, sensors={"s": 1}, channel=channel, low=_ms(low),
                               high=_ms(high), bucket=bucket, zone=ROME)
    return [(row.start, row.count, row.total) for row in found.of("s").rows()]


def _both(store: TelemetryStore) -> Iterator[str]:
    """Each answer is checked on raw days, then on the compacted rollup."""
    yield "raw"
    compact(store, quiet_ms=0)
    assert not store.unsealed
    yield "rollup"


def test_a_reading_on_the_hour_counts_for_the_hour_it_ends_if_energy(
        store: TelemetryStore) -> None:
    _put(store, [("s", "energy_import", "2026-03-02T10:00:00Z", 5.0),
                 ("s", "energy_import", "2026-03-02T10:00:00.001Z", 7.0),
                 ("s", "power", "2026-03-02T10:00:00Z", 100.0)])
    for _ in _both(store):
        assert _hours(store, "energy_import", "2026-03-02T08:00:00Z", "2026-03-02T12:00:00Z") \
            == [(_ms("2026-03-02T09:00:00Z"), 1, 5.0), (_ms("2026-03-02T10:00:00Z"), 1, 7.0)]
        assert _hours(store, "energy_import", "2026-03-02T08:00:00Z", "2026-03-02T12:00:00Z",
                      bucket="15min") == [(_ms("2026-03-02T09:45:00Z"), 1, 5.0),
                                          (_ms("2026-03-02T10:00:00Z"), 1, 7.0)]
        assert _hours(store, "power", "2026-03-02T08:00:00Z", "2026-03-02T12:00:00Z") == [
            (_ms("2026-03-02T10:00:00Z"), 1, 100.0)]
        # A range ending at 10:00 holds the energy stamped 10:00, not the power.
        assert _hours(store, "energy_import", "2026-03-02T09:00:00Z",
                      "2026-03-02T10:00:00Z") == [(_ms("2026-03-02T09:00:00Z"), 1, 5.0)]
        assert _hours(store, "power", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z") == []
        # A series keeps the readings stamped in [from, to) of any channel.
        for channel, count in (("energy_import", 1), ("power", 1)):
            found = queries.series(store, sensors={"s": 1}, channel=channel,
                                   low=_ms("2026-03-02T10:00:00Z"),
                                   high=_ms("2026-03-02T10:00:00.001Z"), max_points=10)
            assert found[0].raw_count == count


def test_energy_at_local_midnight_counts_for_the_day_before(store: TelemetryStore) -> None:
    # Local midnight in Rome (23:00Z) and UTC midnight (a day partition's edge).
    _put(store, [("s", "energy_import", "2026-03-02T00:00:00+01:00", 1.0),
                 ("s", "energy_import", "2026-03-02T00:00:00Z", 2.0),
                 ("s", "energy_import", "2026-03-03T00:00:00+01:00", 4.0),
                 ("s", "power", "2026-03-02T00:00:00+01:00", 50.0)])
    for _ in _both(store):
        days = queries.daily_summaries(store, community_id=1, sensor_id="s",
                                       first=date(2026, 3, 1), last=date(2026, 3, 3), zone=ROME)
        assert [(day["day"], day["energy_import_wh"], day["power_max_w"]) for day in days] == [
            (date(2026, 3, 1), 1.0, None), (date(2026, 3, 2), 6.0, 50.0)]
        assert _hours(store, "energy_import", "2026-03-01T00:00:00+01:00",
                      "2026-03-04T00:00:00+01:00", bucket="day") == [
            (_ms("2026-03-01T00:00:00+01:00"), 1, 1.0), (_ms("2026-03-02T00:00:00+01:00"), 2, 6.0)]
        result = balance.energy_balance(
            store, community_id=1, meters=[balance.Meter("s", "m", "north")],
            member_areas={"m": "north"}, first=date(2026, 3, 2), last=date(2026, 3, 2),
            zone=ROME, granularity="day", rate=None)
        assert result["totals"]["withdrawn_wh"] == 6.0
        hourly = balance.energy_balance(
            store, community_id=1, meters=[balance.Meter("s", "m", "north")],
            member_areas={"m": "north"}, first=date(2026, 3, 2), last=date(2026, 3, 2),
            zone=ROME, granularity="hour", rate=None)
        assert [(period["start"], period["withdrawn_wh"]) for period in hourly["periods"]] == [
            (_ms("2026-03-01T23:00:00Z"), 2.0), (_ms("2026-03-02T22:00:00Z"), 4.0)]
        figures = queries.metrics(store, community_id=1, sensor_id="s", zone=ROME,
                                  now=_ms("2026-03-02T12:00:00Z"))
        assert figures["energy_import_wh"] == 6.0


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25)])
def test_hourly_energy_on_the_daylight_saving_days_of_rome(store: TelemetryStore, day: date,
                                                           hours: int) -> None:
    """A meter stamping each hour's energy at the hour's end, from the local midnight
    (which ends the day before) to the next local midnight (which ends this day)."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=ROME).timestamp() * 1000)
    stamps = [start + index * HOUR for index in range(hours + 1)]
    _put(store, [("s", "energy_export", datetime.fromtimestamp(ts / 1000, UTC).isoformat(),
                  float(index)) for index, ts in enumerate(stamps)])
    for _ in _both(store):
        days = queries.daily_summaries(store, community_id=1, sensor_id="s",
                                       first=day - timedelta(days=1), last=day, zone=ROME)
        assert [(found["day"], found["energy_export_wh"]) for found in days] == [
            (day - timedelta(days=1), 0.0), (day, float(sum(range(1, hours + 1))))]
        result = balance.energy_balance(
            store, community_id=1, meters=[balance.Meter("s", "m", "north")],
            member_areas={"m": "north"}, first=day, last=day, zone=ROME, granularity="hour",
            rate=None)
        periods = [(period["start"], period["fed_in_wh"]) for period in result["periods"]]
        assert periods == [(start + index * HOUR, float(index + 1)) for index in range(hours)]


def test_an_older_files_rollups_are_rebuilt_by_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.duckdb"
    store = TelemetryStore(path, memory_limit_mb=256)
    _put(store, [("s", "energy_import", "2026-03-02T00:00:00Z", 3.0)])
    compact(store, quiet_ms=0)
    store.close()
    with duckdb.connect(str(path)) as connection:  # as the rollup of a file before the rule
        connection.execute("UPDATE hourly SET hour = hour + 3600000")
        connection.execute("DELETE FROM days WHERE day <> 20514")
        connection.execute("DELETE FROM upgrades WHERE name = 'energy-counts-before-its-ts'")
    store = TelemetryStore(path, memory_limit_mb=256)
    try:
        assert sorted(store.unsealed) == [20513, 20514]
        compact(store, quiet_ms=0)
        assert _hours(store, "energy_import", "2026-03-01T20:00:00Z",
                      "2026-03-02T04:00:00Z") == [(_ms("2026-03-01T23:00:00Z"), 1, 3.0)]
    finally:
        store.close()
