"""Energy balance rules a silent bug would break: areas never pool, energy is shared per hour."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage.telemetry import balance
from storage.telemetry.compaction import compact
from storage.telemetry.store import TelemetryStore
from tests.storage.telemetry.test_balance_and_buckets import _put

ROME = ZoneInfo("Europe/Rome")
DAY = date(2026, 3, 2)


@pytest.fixture
def store(tmp_path: Path) -> TelemetryStore:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened  # type: ignore[misc]
    opened.close()


def _balance(store: TelemetryStore, meters: list[balance.Meter], granularity: str) -> dict:
    areas = {meter.member_key: meter.area for meter in meters}
    return balance.energy_balance(store, community_id=1, meters=meters, member_areas=areas,
                                  first=DAY, last=DAY, zone=ROME, granularity=granularity,
                                  rate=None)


@pytest.mark.parametrize("compacted", [False, True])
def test_areas_share_energy_each_within_itself_never_pooled(
        store: TelemetryStore, compacted: bool) -> None:
    # North: a consumer; south: a producer and a consumer; all in the same hour. The north
    # consumer shares nothing (its area feeds nothing in); south shares min(500, 2000).
    _put(store, [
        ("north-c", "energy_import", "2026-03-02T09:30:00Z", 3000.0),
        ("south-p", "energy_export", "2026-03-02T09:30:00Z", 2000.0),
        ("south-c", "energy_import", "2026-03-02T09:30:00Z", 500.0),
    ])
    if compacted:
        compact(store, quiet_ms=0)
    meters = [balance.Meter("north-c", "nc", "north"), balance.Meter("south-p", "sp", "south"),
              balance.Meter("south-c", "sc", "south")]

    result = _balance(store, meters, "day")

    areas = {area["area"]: area["totals"] for area in result["areas"]}
    assert set(areas) == {"north", "south"}
    assert areas["north"]["withdrawn_wh"] == 3000 and areas["north"]["shared_wh"] == 0
    assert areas["south"]["withdrawn_wh"] == 500 and areas["south"]["fed_in_wh"] == 2000
    assert areas["south"]["shared_wh"] == 500
    assert result["totals"]["shared_wh"] == 500  # pooled, it would be 2000
    parts = {share["member_key"]: share for share in result["members"]}
    assert parts["nc"]["shared_as_consumer_wh"] == 0


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_energy_is_shared_hour_by_hour_at_every_granularity(
        store: TelemetryStore, granularity: str) -> None:
    # The consumer withdraws in one hour, the producer feeds in the next: nothing is shared,
    # although the day's totals alone would say 1,000 Wh.
    _put(store, [
        ("c", "energy_import", "2026-03-02T09:30:00Z", 1000.0),
        ("p", "energy_export", "2026-03-02T10:30:00Z", 1000.0),
        ("c", "energy_import", "2026-03-02T11:30:00Z", 400.0),
        ("p", "energy_export", "2026-03-02T11:40:00Z", 600.0),
    ])
    meters = [balance.Meter("c", "consumer", "north"), balance.Meter("p", "plant", "north")]

    result = _balance(store, meters, granularity)

    assert result["totals"]["withdrawn_wh"] == 1400 and result["totals"]["fed_in_wh"] == 1600
    assert result["totals"]["shared_wh"] == 400
    assert sum(period["shared_wh"] for period in result["periods"]) == 400


@pytest.mark.parametrize("compacted", [False, True])
def test_a_member_with_two_meters_counts_once_by_its_hourly_sum(
        store: TelemetryStore, compacted: bool) -> None:
    # "duo" has a house and a garage meter. 09:00-10:00 UTC: both withdraw (1,000 + 3,000),
    # the plant feeds in 2,000: all shared energy is duo's. 10:00-11:00: the garage sends a
    # correction that nets duo's hour to zero, and "solo" withdraws 100.
    _put(store, [
        ("duo-house", "energy_import", "2026-03-02T09:30:00Z", 1000.0),
        ("duo-garage", "energy_import", "2026-03-02T09:45:00Z", 3000.0),
        ("plant", "energy_export", "2026-03-02T09:50:00Z", 2000.0),
        ("duo-house", "energy_import", "2026-03-02T10:30:00Z", 500.0),
        ("duo-garage", "energy_import", "2026-03-02T10:31:00Z", -500.0),
        ("solo", "energy_import", "2026-03-02T10:40:00Z", 100.0),
    ])
    if compacted:
        compact(store, quiet_ms=0)
    meters = [balance.Meter("duo-house", "duo", "north"),
              balance.Meter("duo-garage", "duo", "north"),
              balance.Meter("plant", "plant", "north"), balance.Meter("solo", "solo", "north")]

    result = _balance(store, meters, "hour")

    parts = {share["member_key"]: share for share in result["members"]}
    assert parts["duo"]["withdrawn_wh"] == 4000 and parts["duo"]["shared_as_consumer_wh"] == 2000
    assert parts["plant"]["shared_as_producer_wh"] == 2000
    assert parts["solo"]["shared_as_consumer_wh"] == 0  # nothing fed in during its hour
    starts = sorted(start for area, start in result["contributors"]
                    if area == "north" and start is not None)
    nine, ten = starts[:2]
    # Withdrawn, fed in, produced: duo is one member, however many meters it has; in the
    # hour its meters net to zero it withdrew nothing, and only solo did.
    assert result["contributors"][("north", nine)] == (1, 1, 0)
    assert result["contributors"][("north", ten)] == (1, 0, 0)
    assert result["contributors"][("north", None)] == (2, 1, 0)


def test_contributors_are_the_same_when_counted_by_sorting(
        store: TelemetryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past DENSE_CELLS (a year of hours for thousands of members) distinct cells are found
    # by sorting instead of marking an array: both ways give the same counts.
    _put(store, [
        ("a1", "energy_import", "2026-03-02T09:30:00Z", 100.0),
        ("a2", "energy_import", "2026-03-02T09:40:00Z", 50.0),
        ("a2", "energy_import", "2026-03-02T10:40:00Z", 0.0),
        ("b1", "energy_export", "2026-03-02T10:30:00Z", 300.0),
        ("c1", "energy_produced", "2026-03-02T11:30:00Z", 20.0),
    ])
    meters = [balance.Meter("a1", "ann", "north"), balance.Meter("a2", "bea", "north"),
              balance.Meter("b1", "ann", "north"), balance.Meter("c1", "cy", "south")]
    marked = _balance(store, meters, "hour")
    monkeypatch.setattr(balance, "DENSE_CELLS", 0)

    sorted_ = _balance(store, meters, "hour")

    assert sorted_["contributors"] == marked["contributors"]
    assert marked["contributors"][("north", None)] == (2, 1, 0)
    assert marked["contributors"][(None, None)] == (2, 1, 1)


@pytest.mark.parametrize("compacted", [False, True])
def test_energy_is_shared_per_local_hour_in_a_half_hour_zone(
        store: TelemetryStore, compacted: bool) -> None:
    # Kolkata is UTC+05:30: 10:00-11:00 there is 04:30-05:30 UTC. The consumer withdraws at
    # 04:40 UTC and the producer feeds in at 05:20 UTC: the same local hour, two UTC hours.
    _put(store, [
        ("c", "energy_import", "2026-03-02T04:40:00Z", 1000.0),
        ("p", "energy_export", "2026-03-02T05:20:00Z", 600.0),
        ("c", "energy_import", "2026-03-02T05:40:00Z", 300.0),  # 11:10 local: nothing fed in
    ])
    if compacted:
        compact(store, quiet_ms=0)
    meters = [balance.Meter("c", "consumer", "north"), balance.Meter("p", "plant", "north")]
    areas = {meter.member_key: meter.area for meter in meters}

    result = balance.energy_balance(store, community_id=1, meters=meters, member_areas=areas,
                                    first=DAY, last=DAY, zone=ZoneInfo("Asia/Kolkata"),
                                    granularity="hour", rate=None)

    assert result["totals"]["withdrawn_wh"] == 1300 and result["totals"]["fed_in_wh"] == 600
    assert result["totals"]["shared_wh"] == 600
    shared = {period["start"]: period["shared_wh"] for period in result["periods"]}
    assert shared == {1_772_425_800_000: 600.0, 1_772_429_400_000: 0.0}  # 04:30, 05:30 UTC
    parts = {share["member_key"]: share for share in result["members"]}
    assert parts["consumer"]["shared_as_consumer_wh"] == 600
