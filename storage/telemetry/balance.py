"""The community energy balance: per hour and area, withdrawn, fed in, produced and shared
energy (the smaller of fed in and withdrawn, the Italian CER rule), folded into periods, and
each member's part of the shared energy, and how many members are behind each figure (see
storage.telemetry.balance_view).

DuckDB reads the partials (one row per meter, channel and hour, mostly from the hourly
rollup); the folding is done with numpy, by counting into arrays indexed by area and hour,
member, or period: grouping 1.7 million meter-hours by member and period took DuckDB's hash
aggregates about 100 ms of the 140 ms the balance cost, counting into arrays a few each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from storage.telemetry import partials
from storage.telemetry.buckets import QUARTER_MS, day_buckets
from storage.telemetry.channels import ENERGY_CHANNELS, code_of
from storage.telemetry.store import HOUR_MS, TelemetryStore

# (area or None for the community, period start or None for the totals) -> how many members
# have energy withdrawn, fed in, produced in those figures.
Contributors = dict[tuple[str | None, int | None], tuple[int, int, int]]
_Counts = dict[tuple[int | None, int | None], tuple[int, int, int]]  # as Contributors, by index
FIGURES = 3  # withdrawn, fed in, produced: the codes of ENERGY_CHANNELS, in that order
WITHDRAWN, FED_IN, PRODUCED = range(FIGURES)
# Distinct (member, figure, period) cells are found by marking a dense array up to this many
# cells (one byte each), by sorting beyond (a year of hours for thousands of members).
DENSE_CELLS = 16_000_000


@dataclass(frozen=True)
class Meter:
    """A sensor counted in the balance: the member and area it belongs to."""

    sensor_id: str
    member_key: str
    area: str


@dataclass(frozen=True)
class _Units:
    """The members behind the meters, one unit per (member, area), numbered from 0."""

    of_sensor: dict[int, int]  # sensor key -> unit
    member: np.ndarray  # unit -> member index (into the sorted member keys)
    area: np.ndarray  # unit -> area index (into the sorted area names)
    alone: np.ndarray  # unit -> whether it has one meter (its rows are its hours already)


def figures(sums: list[float], rate: float | None) -> dict[str, Any]:
    """The balance figures of one period or total, from (withdrawn, fed in, produced,
    shared)."""
    withdrawn, fed_in, produced, shared = sums
    return {
        "withdrawn_wh": withdrawn, "fed_in_wh": fed_in, "produced_wh": produced,
        "shared_wh": shared,
        "self_consumption_rate": shared / fed_in if fed_in > 0 else None,
        "self_sufficiency_rate": shared / withdrawn if withdrawn > 0 else None,
        "incentive_eur": None if rate is None else shared / 1_000_000 * rate,
    }


def energy_balance(store: TelemetryStore, *, community_id: int, meters: list[Meter],
                   member_areas: dict[str, str], first: date, last: date, zone: ZoneInfo,
                   granularity: str, rate: float | None) -> dict[str, Any]:
    """Totals, periods, areas and member parts of the local days first..last, from the
    community's series of its meters, and under "contributors" how many members are behind
    each figure (Contributors)."""
    buckets = day_buckets(first, last, zone, granularity)
    keys = store.sensor_keys({meter.sensor_id: community_id for meter in meters})
    counted = [meter for meter in meters if meter.sensor_id in keys]
    members = sorted(member_areas)
    if not counted:
        return {**_shape([], [], members, member_areas, rate), "contributors": {}}
    area_names = sorted({meter.area for meter in counted})
    units = _units(counted, keys, members, area_names)
    slots, _, _ = buckets.slot_mapping()  # the local hours of the range
    low, high = int(buckets.edges[0]), int(buckets.edges[-1])
    # Energy is shared per local hour: where the zone's hours are UTC hours (Rome, every
    # whole-hour offset) the hourly rollup holds them; elsewhere (India's +05:30, Adelaide's
    # +09:30) quarter-hour partials of the raw readings are folded into local hours.
    slot_ms = HOUR_MS if bool(np.all(buckets.edges % HOUR_MS == 0)) else QUARTER_MS
    with store.reader() as cursor:
        sql = partials.partials_sql(
            store, cursor, sensors=sorted(units.of_sensor),
            channels=[code_of(name) for name in ENERGY_CHANNELS], low=low, high=high,
            slot_ms=slot_ms)
        # Each row's figure and local hour of the range, computed by DuckDB as it reads.
        figure = " ".join(f"WHEN {code_of(name)} THEN {index}"
                          for index, name in enumerate(ENERGY_CHANNELS))
        table = cursor.sql(
            f"SELECT sensor, (CASE channel {figure} END)::INTEGER AS figure,"
            f" ((slot - {low}) // {HOUR_MS})::INTEGER AS hour, total"
            f" FROM ({sql}) WHERE slot >= {low} AND slot < {high}").to_arrow_table()
    sensor, figure_of_row, hour, energy = (table.column(name).to_numpy() for name in
                                           ("sensor", "figure", "hour", "total"))
    del table
    unit_of = np.zeros(max(units.of_sensor) + 1, np.int32)  # rows hold only these sensors
    unit_of[list(units.of_sensor)] = list(units.of_sensor.values())
    rows = _Rows(unit=unit_of[sensor], figure=figure_of_row, hour=hour, energy=energy)
    period_of_hour = np.searchsorted(buckets.edges, slots, side="right") - 1
    area_rows, member_rows, contributors = _fold(rows, units, period_of_hour,
                                                 len(buckets.edges) - 1, len(members))
    starts = [int(start) for start in buckets.edges[:-1]]
    area_rows = [(area_names[area], starts[period], *sums)
                 for area, period, *sums in area_rows]
    named: Contributors = {
        (None if area is None else area_names[area],
         None if period is None else starts[period]): counts
        for (area, period), counts in contributors.items()}
    return {**_shape(area_rows, member_rows, members, member_areas, rate),
            "contributors": named}


@dataclass(frozen=True)
class _Rows:
    """Partials as arrays: per row its unit, figure, hour (index in the range) and energy.
    Indexes are 32-bit (half the memory); codes that can outgrow them are made 64-bit."""

    unit: np.ndarray
    figure: np.ndarray
    hour: np.ndarray
    energy: np.ndarray


def _units(counted: list[Meter], keys: dict[str, int], members: list[str],
           area_names: list[str]) -> _Units:
    member_index = {key: index for index, key in enumerate(members)}
    area_index = {area: index for index, area in enumerate(area_names)}
    unit_index: dict[tuple[str, str], int] = {}
    meters_of: list[int] = []
    of_sensor: dict[int, int] = {}
    for meter in counted:
        unit = unit_index.setdefault((meter.member_key, meter.area), len(unit_index))
        if unit == len(meters_of):
            meters_of.append(0)
        meters_of[unit] += 1
        of_sensor[keys[meter.sensor_id]] = unit
    pairs = list(unit_index)
    return _Units(of_sensor=of_sensor,
                  member=np.array([member_index[member] for member, _ in pairs], np.int32),
                  area=np.array([area_index[area] for _, area in pairs], np.int32),
                  alone=np.array(meters_of, np.int64) == 1)


def _distinct(codes: np.ndarray, size: int) -> np.ndarray:
    """The distinct values of `codes` (each in 0..size-1), ascending."""
    if size <= DENSE_CELLS:
        marked = np.zeros(size, np.bool_)
        marked[codes] = True
        return np.flatnonzero(marked)
    return np.unique(codes)


def _fold(rows: _Rows, units: _Units, period_of_hour: np.ndarray, periods: int,
          members: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], _Counts]:
    """Area periods (area, period, withdrawn, fed in, produced, shared), member parts
    (member, withdrawn, fed in, shared as consumer, shared as producer) and contributors,
    by area and period index."""
    areas, hours = int(units.area.max()) + 1, len(period_of_hour)
    # Energy is shared within an area and an hour.
    area_hour = units.area[rows.unit] * hours + rows.hour
    cell = rows.figure * (areas * hours) + area_hour
    sums = np.bincount(cell, rows.energy, FIGURES * areas * hours).reshape(FIGURES, areas, hours)
    held = np.bincount(area_hour, minlength=areas * hours).reshape(areas, hours)
    shared = np.minimum(sums[WITHDRAWN], sums[FED_IN])
    # Area periods.
    period_cell = (np.arange(areas)[:, None] * periods + period_of_hour[None, :]).ravel()
    area_periods = [np.bincount(period_cell, figure.ravel(), areas * periods)
                    for figure in (*sums, shared)]
    held_periods = np.bincount(period_cell, held.ravel(), areas * periods) > 0
    area_rows = [(index // periods, index % periods,
                  *(float(figure[index]) for figure in area_periods))
                 for index in np.flatnonzero(held_periods)]
    # Member parts: a member's part of an hour's shared energy is in proportion to what it
    # withdrew (fed in) of its area's withdrawn (fed in) energy in that hour. Summed by unit,
    # then by member.
    part = np.zeros((FIGURES, areas, hours))
    np.divide(shared, sums[WITHDRAWN], out=part[WITHDRAWN], where=sums[WITHDRAWN] > 0)
    np.divide(shared, sums[FED_IN], out=part[FED_IN], where=sums[FED_IN] > 0)
    count = len(units.member)
    unit_cell = rows.figure * count + rows.unit
    by_member = (np.arange(FIGURES)[:, None] * members + units.member[None, :]).ravel()
    energy, shares = (
        np.bincount(by_member, np.bincount(unit_cell, weights, FIGURES * count),
                    FIGURES * members).reshape(FIGURES, members)
        for weights in (rows.energy, rows.energy * part.ravel()[cell]))
    member_rows = [(member, energy[WITHDRAWN, member], energy[FED_IN, member],
                    shares[WITHDRAWN, member], shares[FED_IN, member])
                   for member in range(members)]
    contributors = _contributors(rows, units, period_of_hour, periods, areas,
                                 held_periods.reshape(areas, periods), members)
    return area_rows, member_rows, contributors


def _contributors(rows: _Rows, units: _Units, period_of_hour: np.ndarray, periods: int,
                  areas: int, held: np.ndarray, members: int) -> _Counts:
    """How many members have a non-zero figure in some hour of each (area, period), area,
    period, and in all: a member's hour is the sum of its meters' (a correction on one
    meter may cancel another's energy)."""
    hours = len(period_of_hour)
    nonzero = rows.energy != 0
    if units.alone.all():
        several = None
    else:
        alone = units.alone[rows.unit]
        nonzero &= alone
        several = ~alone
    unit, figure, hour = rows.unit[nonzero], rows.figure[nonzero], rows.hour[nonzero]
    if several is not None:
        codes = ((rows.unit[several].astype(np.int64) * FIGURES + rows.figure[several]) * hours
                 + rows.hour[several])
        distinct, inverse = np.unique(codes, return_inverse=True)
        summed = distinct[np.bincount(inverse, rows.energy[several]) != 0]
        unit = np.concatenate([unit, summed // (FIGURES * hours)])
        figure = np.concatenate([figure, summed // hours % FIGURES])
        hour = np.concatenate([hour, summed % hours])
    period = period_of_hour[hour]
    count = len(units.member)
    in_units = _distinct((unit.astype(np.int64) * FIGURES + figure) * periods + period,
                         count * FIGURES * periods)
    unit, figure, period = (in_units // (FIGURES * periods), in_units // periods % FIGURES,
                            in_units % periods)
    by_area_period = np.bincount((units.area[unit] * periods + period) * FIGURES + figure,
                                 minlength=areas * periods * FIGURES).reshape(areas, periods,
                                                                              FIGURES)
    unit_figures = _distinct(unit * FIGURES + figure, count * FIGURES)
    by_area = np.bincount(units.area[unit_figures // FIGURES] * FIGURES
                          + unit_figures % FIGURES, minlength=areas * FIGURES).reshape(
        areas, FIGURES)
    in_members = _distinct((units.member[unit].astype(np.int64) * FIGURES + figure) * periods
                           + period,
                           members * FIGURES * periods)
    by_period = np.bincount(in_members % periods * FIGURES + in_members // periods % FIGURES,
                            minlength=periods * FIGURES).reshape(periods, FIGURES)
    member_figures = _distinct(in_members // periods, members * FIGURES)
    in_all = np.bincount(member_figures % FIGURES, minlength=FIGURES)

    def counts(values: np.ndarray) -> tuple[int, int, int]:
        return int(values[0]), int(values[1]), int(values[2])

    result: _Counts = {}
    for area_index, period_index in zip(*np.nonzero(held), strict=True):
        result[(int(area_index), int(period_index))] = counts(
            by_area_period[area_index, period_index])
    for area_index in np.flatnonzero(held.any(axis=1)):
        result[(int(area_index), None)] = counts(by_area[area_index])
    for period_index in np.flatnonzero(held.any(axis=0)):
        result[(None, int(period_index))] = counts(by_period[period_index])
    if held.any():
        result[(None, None)] = counts(in_all)
    return result


def _shape(area_rows: list[tuple[Any, ...]], member_rows: list[tuple[Any, ...]],
           members: list[str], member_areas: dict[str, str],
           rate: float | None) -> dict[str, Any]:
    areas: dict[str, list[tuple[int, list[float]]]] = {}
    community: dict[int, list[float]] = {}
    for area, start, withdrawn, fed_in, produced, shared in area_rows:
        sums = [float(withdrawn), float(fed_in), float(produced), float(shared)]
        areas.setdefault(area, []).append((int(start), sums))
        total = community.setdefault(int(start), [0.0, 0.0, 0.0, 0.0])
        for index, amount in enumerate(sums):
            total[index] += amount

    def add_up(periods: list[tuple[int, list[float]]]) -> list[float]:
        return [sum(sums[index] for _, sums in periods) for index in range(4)]

    community_periods = sorted(community.items())
    parts = {members[int(row[0])]: row[1:] for row in member_rows}
    member_shares = []
    for member_key in members:
        withdrawn, fed_in, consumer, producer = (
            float(value) for value in parts.get(member_key, (0.0, 0.0, 0.0, 0.0)))
        member_shares.append({
            "member_key": member_key, "area": member_areas[member_key],
            "withdrawn_wh": withdrawn, "fed_in_wh": fed_in,
            "shared_as_consumer_wh": consumer, "shared_as_producer_wh": producer,
            "incentive_eur": None if rate is None
            else (consumer + producer) / 2 / 1_000_000 * rate,
        })
    return {
        "totals": figures(add_up(community_periods), rate),
        "periods": [{"start": start, **figures(sums, rate)} for start, sums in community_periods],
        "areas": [{"area": area, "totals": figures(add_up(periods), rate),
                   "periods": [{"start": start, **figures(sums, rate)}
                               for start, sums in periods]}
                  for area, periods in sorted(areas.items())],
        "members": member_shares,
    }
