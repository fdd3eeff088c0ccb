"""The community energy balance: per hour and area, withdrawn, fed in, produced and shared
energy (the smaller of fed in and withdrawn, the Italian CER rule), folded into periods, and
each member's part of the shared energy, and how many members are behind each figure (see
storage.telemetry.balance_view)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from storage.telemetry import partials
from storage.telemetry.buckets import day_buckets
from storage.telemetry.channels import ENERGY_CHANNELS, code_of
from storage.telemetry.store import HOUR_MS, TelemetryStore

# (area or None for the community, period start or None for the totals) -> how many members
# have energy withdrawn, fed in, produced in those figures.
Contributors = dict[tuple[str | None, int | None], tuple[int, int, int]]


@dataclass(frozen=True)
class Meter:
    """A sensor counted in the balance: the member and area it belongs to."""

    sensor_id: str
    member_key: str
    area: str


# A member's hours: the partials of its meters, summed per hour and channel only for members
# with several meters (the rollup already holds one row per meter, channel and hour), so that
# the large passes below group by few keys. Read twice, never stored: storing a row per
# member and hour cost more than reading the rollup again.
MEMBER_HOURS_SQL = """
SELECT m.member, m.area, p.slot, p.channel, p.total
FROM ({partials}) p JOIN meter_members m ON m.sensor = p.sensor
WHERE m.alone
UNION ALL
SELECT m.member, m.area, p.slot, p.channel, sum(p.total)
FROM ({partials}) p JOIN meter_members m ON m.sensor = p.sensor
WHERE NOT m.alone
GROUP BY ALL
"""
# Each area's hours, with the period each belongs to: energy is shared within an hour.
AREA_HOURS_SQL = """
CREATE OR REPLACE TEMP TABLE area_hours AS
SELECT h.area, h.slot, b.bucket_start, h.withdrawn, h.fed_in, h.produced,
       least(h.withdrawn, h.fed_in) AS shared
FROM (
    SELECT area, slot,
           coalesce(sum(total) FILTER (WHERE channel = {import_}), 0) AS withdrawn,
           coalesce(sum(total) FILTER (WHERE channel = {export}), 0) AS fed_in,
           coalesce(sum(total) FILTER (WHERE channel = {produced}), 0) AS produced
    FROM ({member_hours}) GROUP BY ALL
) h JOIN slot_buckets b ON b.slot = h.slot
"""
AREA_PERIODS_SQL = """
SELECT area, bucket_start, sum(withdrawn), sum(fed_in), sum(produced), sum(shared)
FROM area_hours
GROUP BY ALL ORDER BY 1, 2
"""
# Each member's periods: its energy, its part of the shared energy (an area's shared energy
# of an hour split in proportion to what each member withdrew, or fed in, in that hour), and
# whether each figure is non-zero in some hour (a figure of one or two members would be their
# own to anyone else who sees it: storage.telemetry.balance_view).
MEMBER_PERIODS_SQL = """
CREATE OR REPLACE TEMP TABLE member_periods AS
SELECT h.member, h.area, a.bucket_start,
       coalesce(sum(h.total) FILTER (WHERE h.channel = {import_}), 0) AS withdrawn,
       coalesce(sum(h.total) FILTER (WHERE h.channel = {export}), 0) AS fed_in,
       coalesce(sum(CASE WHEN a.withdrawn > 0 THEN a.shared * h.total / a.withdrawn ELSE 0 END)
                FILTER (WHERE h.channel = {import_}), 0) AS shared_as_consumer,
       coalesce(sum(CASE WHEN a.fed_in > 0 THEN a.shared * h.total / a.fed_in ELSE 0 END)
                FILTER (WHERE h.channel = {export}), 0) AS shared_as_producer,
       coalesce(bool_or(h.total <> 0) FILTER (WHERE h.channel = {import_}), false) AS withdraws,
       coalesce(bool_or(h.total <> 0) FILTER (WHERE h.channel = {export}), false) AS feeds,
       coalesce(bool_or(h.total <> 0) FILTER (WHERE h.channel = {produced}), false) AS produces
FROM ({member_hours}) h JOIN area_hours a ON a.area = h.area AND a.slot = h.slot
GROUP BY ALL
"""
MEMBERS_SQL = """
SELECT member, sum(withdrawn), sum(fed_in), sum(shared_as_consumer), sum(shared_as_producer)
FROM member_periods
GROUP BY ALL
"""
# How many members have energy in each figure (withdrawn, fed in, produced) of each
# (area, period), area, period, and in all.
CONTRIBUTORS_SQL = """
SELECT area, bucket_start,
       count(DISTINCT member) FILTER (WHERE withdraws),
       count(DISTINCT member) FILTER (WHERE feeds),
       count(DISTINCT member) FILTER (WHERE produces)
FROM member_periods
GROUP BY GROUPING SETS ((area, bucket_start), (area), (bucket_start), ())
"""


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
    member_index = {key: index for index, key in enumerate(members)}
    area_rows: list[tuple[Any, ...]] = []
    member_rows: list[tuple[Any, ...]] = []
    contributors: Contributors = {}
    if counted:
        with store.reader() as cursor:
            sql = partials.partials_sql(
                store, cursor, sensors=[keys[meter.sensor_id] for meter in counted],
                channels=[code_of(name) for name in ENERGY_CHANNELS], low=int(buckets.edges[0]),
                high=int(buckets.edges[-1]), slot_ms=HOUR_MS)
            partials.register_slot_mapping(cursor, buckets.slot_mapping())
            # Areas go by number in SQL (grouping by an integer costs less than by text).
            area_names = sorted({meter.area for meter in counted})
            area_index = {area: index for index, area in enumerate(area_names)}
            meters_of = Counter(meter.member_key for meter in counted)
            cursor.register("meter_members", pa.table({
                "sensor": pa.array([keys[meter.sensor_id] for meter in counted], pa.int32()),
                "member": pa.array([member_index[meter.member_key] for meter in counted],
                                   pa.int32()),
                "area": pa.array([area_index[meter.area] for meter in counted], pa.int32()),
                "alone": pa.array([meters_of[meter.member_key] == 1 for meter in counted],
                                  pa.bool_())}))
            codes = {"import_": code_of("energy_import"), "export": code_of("energy_export"),
                     "produced": code_of("energy_produced")}
            member_hours = MEMBER_HOURS_SQL.format(partials=sql)
            cursor.execute(AREA_HOURS_SQL.format(member_hours=member_hours, **codes))
            cursor.execute(MEMBER_PERIODS_SQL.format(member_hours=member_hours, **codes))
            area_rows = [(area_names[int(area)], *rest)
                         for area, *rest in cursor.execute(AREA_PERIODS_SQL).fetchall()]
            member_rows = cursor.execute(MEMBERS_SQL).fetchall()
            contributors = {
                (None if area is None else area_names[int(area)],
                 None if start is None else int(start)): (int(w), int(f), int(p))
                for area, start, w, f, p in cursor.execute(CONTRIBUTORS_SQL).fetchall()}
            cursor.execute("DROP TABLE area_hours; DROP TABLE member_periods")
    return {**_shape(area_rows, member_rows, members, member_areas, rate),
            "contributors": contributors}


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
