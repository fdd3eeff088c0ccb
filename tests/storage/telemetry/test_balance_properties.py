"""Properties of the energy balance on random communities and readings (Hypothesis): shared
energy never exceeds what was fed in or withdrawn, members' parts add up to it, and every
granularity, raw or compacted, tells the same totals."""

from __future__ import annotations

import math
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.telemetry import balance
from storage.telemetry.compaction import compact
from storage.telemetry.store import TelemetryStore
from tests.storage.telemetry.test_balance_and_buckets import _put

ROME = ZoneInfo("Europe/Rome")
FIRST, LAST = date(2026, 3, 28), date(2026, 3, 30)  # Rome's spring DST day in the middle
FIRST_MS = 1_774_652_400_000  # 2026-03-28T00:00 in Rome (23:00 UTC the day before)
SPAN_MS = 71 * 3_600_000  # the three local days last 71 hours
CHANNELS = ("energy_import", "energy_export", "energy_produced")


@st.composite
def communities(draw: Any) -> tuple[list[balance.Meter], list[tuple[str, str, str, float]]]:
    """Members in one to three areas, each with one or two meters, and readings of every
    energy channel over three local days (DST included), some exactly on hour edges."""
    member_count = draw(st.integers(1, 5))
    meters = []
    for member in range(member_count):
        area = f"area-{draw(st.integers(0, 2))}"
        for meter in range(draw(st.integers(1, 2))):
            meters.append(balance.Meter(f"s{member}-{meter}", f"member-{member}", area))
    reading = st.tuples(
        st.sampled_from([meter.sensor_id for meter in meters]), st.sampled_from(CHANNELS),
        st.one_of(st.integers(1, SPAN_MS), st.integers(1, 71).map(lambda h: h * 3_600_000)),
        st.floats(0, 5_000, allow_nan=False).map(lambda value: round(value, 1)))
    rows = draw(st.lists(reading, min_size=1, max_size=40,
                         unique_by=lambda row: (row[0], row[1], row[2])))
    readings = [(sensor, channel, _iso(FIRST_MS + offset), value)
                for sensor, channel, offset, value in rows]
    return meters, readings


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _balance(store: TelemetryStore, meters: list[balance.Meter],
             granularity: str) -> dict[str, Any]:
    areas = {meter.member_key: meter.area for meter in meters}
    return balance.energy_balance(store, community_id=1, meters=meters, member_areas=areas,
                                  first=FIRST, last=LAST, zone=ROME, granularity=granularity,
                                  rate=None)


def _close(left: float, right: float) -> bool:
    return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(communities())
def test_shared_energy_is_bounded_split_among_members_and_the_same_at_every_granularity(
        community: tuple[list[balance.Meter], list[tuple[str, str, str, float]]]) -> None:
    meters, readings = community
    with tempfile.TemporaryDirectory() as scratch:
        store = TelemetryStore(Path(scratch) / "telemetry.duckdb", memory_limit_mb=128,
                               threads=1)
        try:
            _put(store, readings)
            raw = {granularity: _balance(store, meters, granularity)
                   for granularity in ("hour", "day", "month")}
            compact(store, quiet_ms=0)
            compacted = {granularity: _balance(store, meters, granularity)
                         for granularity in ("hour", "day", "month")}
        finally:
            store.close()
    hourly = raw["hour"]
    totals = hourly["totals"]
    for figures in [totals, *hourly["periods"],
                    *(period for area in hourly["areas"] for period in area["periods"])]:
        assert 0 <= figures["shared_wh"] <= min(figures["withdrawn_wh"],
                                                figures["fed_in_wh"]) + 1e-6
    # Every hour's shared energy goes to its withdrawers, and to its feeders, in full.
    parts = hourly["members"]
    assert _close(sum(part["shared_as_consumer_wh"] for part in parts), totals["shared_wh"])
    assert _close(sum(part["shared_as_producer_wh"] for part in parts), totals["shared_wh"])
    assert _close(sum(part["withdrawn_wh"] for part in parts), totals["withdrawn_wh"])
    # Areas add up to the community, periods to the totals; every granularity, raw or
    # compacted, has the same totals and member parts.
    for name in ("withdrawn_wh", "fed_in_wh", "produced_wh", "shared_wh"):
        assert _close(sum(area["totals"][name] for area in hourly["areas"]), totals[name])
        for result in [*raw.values(), *compacted.values()]:
            assert _close(sum(period[name] for period in result["periods"]), totals[name])
            assert _close(result["totals"][name], totals[name])
    for granularity, result in [*raw.items(), *compacted.items()]:
        assert result["contributors"] == raw[granularity]["contributors"]
        for part, expected in zip(result["members"], parts, strict=True):
            assert part["member_key"] == expected["member_key"]
            assert all(_close(part[name], expected[name]) for name in (
                "withdrawn_wh", "fed_in_wh", "shared_as_consumer_wh", "shared_as_producer_wh"))

