"""Properties of the downsampled series (Hypothesis): for any readings of several sensors, any
range and any point budget, each sensor's series is its readings whole when they fit, and
otherwise M4 of them: every slice keeps its first, last, lowest and highest reading (the
earliest of equal ones), nothing else, within the budget; the same before and after the
compaction that makes long ranges read the hourly rollup."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storage.telemetry import queries
from storage.telemetry.compaction import compact
from storage.telemetry.store import HOUR_MS, TelemetryStore
from tests.storage.telemetry.loading import put_readings
from tests.storage.telemetry.test_queries import _brute_m4

MINUTE_MS = 60_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Case:
    """Readings (ts, value) of each sensor, a range [low, high) and a point budget."""

    readings: tuple[tuple[tuple[int, float], ...], ...]
    low: int
    high: int
    max_points: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """One to three sensors with up to 600 readings each around a range from ten minutes to
    three weeks long (so that both the exact slicing and the whole-hour slicing over the
    rollup are reached)."""
    year = draw(st.integers(2000, 2030))
    base = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1000 + draw(
        st.integers(0, 300)) * DAY_MS
    # Drawn from typical sizes as often as at random: Hypothesis leans to the low end of a
    # range, where every reading would fit the budget and no slice would be cut.
    length = draw(st.sampled_from([10 * MINUTE_MS, HOUR_MS, 5 * HOUR_MS, 30 * HOUR_MS,
                                   4 * DAY_MS, 21 * DAY_MS])
                  | st.integers(10 * MINUTE_MS, 21 * DAY_MS))
    low = base + draw(st.integers(0, HOUR_MS))
    high = low + length
    margin = length // 10 + 1
    max_points = draw(st.sampled_from([10, 17, 40, 100, 120]) | st.integers(10, 120))
    # Mostly more readings than the budget (M4 then applies), at random instants of the range
    # and a little around it: many ties of small integers, or values of any size.
    generator = random.Random(draw(st.integers(0, 2**32)))
    readings = []
    for _ in range(draw(st.integers(1, 3))):
        count = draw(st.sampled_from([1, max_points, 2 * max_points, 4 * max_points + 7, 600])
                     | st.integers(1, 600))
        stamps = generator.sample(range(low - margin, high + margin), count)
        ties = draw(st.booleans())
        readings.append(tuple(sorted(
            (ts, float(generator.randint(0, 4)) if ties
             else round(generator.uniform(-1e6, 1e6), 2)) for ts in stamps)))
    return Case(tuple(readings), low, high, max_points)


NUMBERS = itertools.count()


def expected_series(readings: tuple[tuple[int, float], ...], case: Case) -> list[tuple[int, float]]:
    """The readings of [low, high) when they fit the budget; M4 of them otherwise, sliced as
    the documented grid says: whole hours from the hour of `low` when that makes slices of two
    hours or more, else max_points / 4 equal parts of the range."""
    inside = [(ts, value) for ts, value in readings if case.low <= ts < case.high]
    if len(inside) <= case.max_points:
        return inside
    slicing = queries.m4_slicing(case.low, case.high, case.max_points)
    if slicing is None:
        parts = max(1, case.max_points // 4)
        slice_of = {ts: math.floor((ts - case.low) * parts / (case.high - case.low))
                    for ts, _ in inside}
    else:
        origin, width, _ = slicing
        slice_of = {ts: (ts - origin) // width for ts, _ in inside}
    return _brute_m4(inside, slice_of)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(Case(readings=(tuple((1_767_225_600_000 + minute * MINUTE_MS, float(minute % 3))
                              for minute in range(0, 3 * 24 * 60, 13)),),
              low=1_767_225_600_000 + 7, high=1_767_225_600_000 + 3 * DAY_MS - 1,
              max_points=10))
def test_every_slice_keeps_its_first_last_lowest_and_highest_reading(
        module_store: TelemetryStore, case: Case) -> None:
    names = [f"m4-{next(NUMBERS)}" for _ in case.readings]
    put_readings(module_store, [(name, "power", ts, value)
                         for name, readings in zip(names, case.readings, strict=True)
                         for ts, value in readings])
    answers = []
    for compacted in (False, True):
        if compacted:
            compact(module_store, quiet_ms=0)
        found = queries.series(module_store, sensors=dict.fromkeys([*names, "m4-absent"], 1),
                               channel="power", low=case.low, high=case.high,
                               max_points=case.max_points)
        assert [item.sensor_id for item in found] == [*names, "m4-absent"]
        assert found[-1].ts == [] and found[-1].raw_count == 0
        for item, readings in zip(found, case.readings, strict=False):
            inside = [point for point in readings if case.low <= point[0] < case.high]
            expected = expected_series(readings, case)
            assert list(zip(item.ts, item.value, strict=True)) == expected
            assert item.raw_count == len(inside)
            assert item.downsampled == (len(inside) > case.max_points)
            assert len(item.ts) <= case.max_points
            if inside:  # the range's first and last reading always stay
                assert item.ts[0] == inside[0][0] and item.ts[-1] == inside[-1][0]
                assert min(item.value) == min(value for _, value in inside)
                assert max(item.value) == max(value for _, value in inside)
        answers.append(found)
    assert answers[0] == answers[1]
