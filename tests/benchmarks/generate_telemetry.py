"""A deterministic synthetic community with one energy meter per member, and its readings.

    python -m tests.benchmarks.generate_telemetry --sensors 800 --days 90 \\
        --bundle FILE [--parquet DIR] [--start 2026-01-01] [--seed N]

For the telemetry benchmark. The bundle (format v0.7, timezone Europe/Rome, an incentive
rate) has one active member per sensor, each with one `meter` asset whose `sensor_id` is
`bench-s0001`.... Every sensor sends one reading per minute on one channel, the energy of
that minute in Wh: consumers and prosumers `energy_import` (a household day, prosumers with
a dip at noon from their own panels), producers `energy_export` (a solar day, zero at night,
cloudier on some days than others). Readings come in time order (every sensor's reading of
a minute, then the next minute) as numpy columns, one UTC day at a time; each day has its
own seeded random stream, so a day's readings do not depend on which other days are asked.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.benchmarks.generate_community import dump

DEFAULT_SENSORS = 800
DEFAULT_DAYS = 90
DEFAULT_START = date(2026, 1, 1)
DEFAULT_SEED = 20_260_101
DEFAULT_COMMUNITY = "telemetry-bench"
TIMEZONE = "Europe/Rome"
INCENTIVE_EUR_PER_MWH = 110
AREAS = 4
MINUTES = 1440
MS_PER_MINUTE = 60_000
MS_PER_DAY = MINUTES * MS_PER_MINUTE
ROLES = ("consumer", "prosumer", "producer")
ROLE_WEIGHTS = (0.6, 0.25, 0.15)
METER_TYPES = {"consumer": "consumption", "prosumer": "bidirectional", "producer": "production"}
IMPORT, EXPORT = "energy_import", "energy_export"
CHANNELS = (IMPORT, EXPORT)  # a reading's channel is CHANNELS[Plan.channel[sensor]]
SOLAR_NOON_UTC_H = 11.2  # central Italy, about 12.5 degrees east
READING_SCHEMA = pa.schema([("sensor_id", pa.string()), ("channel", pa.string()),
                            ("ts", pa.timestamp("ms", tz="UTC")), ("value", pa.float64())])


@dataclass(frozen=True)
class Plan:
    """The sensors: per-sensor columns indexed by sensor number (0-based)."""

    community: str
    start: date
    days: int
    seed: int
    sensor_ids: np.ndarray  # object: "bench-s0001"...
    member_keys: np.ndarray  # object: "m0001"...
    roles: np.ndarray  # object: consumer, prosumer, producer
    areas: np.ndarray  # int: 0..AREAS-1
    channel: np.ndarray  # uint8: index into CHANNELS
    load_kw: np.ndarray  # mean household load (0 for producers)
    pv_kwp: np.ndarray  # peak power of the panels (0 for consumers)

    @property
    def sensors(self) -> int:
        return len(self.sensor_ids)

    @property
    def readings(self) -> int:
        return self.sensors * self.days * MINUTES

    @property
    def start_ms(self) -> int:
        return day_start_ms(self.start)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * MS_PER_DAY

    def area_key(self, area: int) -> str:
        return f"area-{area + 1}"

    def channel_of(self, sensor: int) -> str:
        return CHANNELS[int(self.channel[sensor])]


@dataclass(frozen=True)
class Chunk:
    """Readings in time order as columns; `sensor` indexes the plan's sensors."""

    sensor: np.ndarray  # int32
    ts: np.ndarray  # int64, epoch milliseconds
    value: np.ndarray  # float64, Wh

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start: int, stop: int) -> Chunk:
        return Chunk(self.sensor[start:stop], self.ts[start:stop], self.value[start:stop])


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def make_plan(*, sensors: int = DEFAULT_SENSORS, days: int = DEFAULT_DAYS,
              start: date = DEFAULT_START, seed: int = DEFAULT_SEED,
              community: str = DEFAULT_COMMUNITY) -> Plan:
    """The same arguments always give the same plan."""
    if sensors < 2 or days < 1:
        raise ValueError("at least 2 sensors and 1 day")
    rng = np.random.default_rng([seed, 0])
    roles = rng.choice(np.array(ROLES, dtype=object), size=sensors, p=ROLE_WEIGHTS)
    roles[0], roles[1] = "consumer", "producer"  # both channels, whatever the draw
    width = max(4, len(str(sensors)))
    numbers = [f"{number + 1:0{width}d}" for number in range(sensors)]
    producing = roles != "consumer"
    load = rng.uniform(0.25, 1.2, sensors) * np.where(rng.random(sensors) < 0.08, 5.0, 1.0)
    return Plan(
        community=community, start=start, days=days, seed=seed,
        sensor_ids=np.array([f"bench-s{number}" for number in numbers], dtype=object),
        member_keys=np.array([f"m{number}" for number in numbers], dtype=object),
        roles=roles,
        areas=np.arange(sensors) % AREAS,
        channel=np.where(roles == "producer", 1, 0).astype(np.uint8),
        load_kw=np.where(roles == "producer", 0.0, load),
        pv_kwp=np.where(roles == "producer", rng.uniform(3.0, 30.0, sensors),
                        np.where(producing, rng.uniform(2.0, 6.0, sensors), 0.0)),
    )


def bundle(plan: Plan) -> dict[str, Any]:
    """The community bundle (v0.7) of the plan: one active member and meter per sensor."""
    areas: dict[str, Any] = {}
    topology: list[dict[str, Any]] = []
    for area in range(AREAS):
        substation = f"AC{201 + area:03d}E{10_000 + area:05d}"
        areas[plan.area_key(area)] = {"name": f"Zona {area + 1}",
                                      "boundary": {"source": "gse_cabine_primarie",
                                                   "id": substation},
                                      "topology": [substation]}
        topology.append({"id": substation, "type": "primary_substation",
                         "name": f"CP {area + 1}", "operator_id": "edistribuzione"})
    members: dict[str, Any] = {}
    for sensor in range(plan.sensors):
        key, role = str(plan.member_keys[sensor]), str(plan.roles[sensor])
        pod = f"IT001E{sensor + 1:08d}"
        members[key] = {
            "user_id": f"{key}@{plan.community}.example.org",
            "name": f"Socio {key}",
            "type": "schema:LocalBusiness" if role == "producer" else "schema:Person",
            "role": role,
            "area": plan.area_key(int(plan.areas[sensor])),
            "status": "active",
            "delivery_points": [{"id": pod, "type": "pod"}],
            "assets": {"meter": {f"{key}-meter": {
                "name": f"Contatore {key}", "sensor_id": str(plan.sensor_ids[sensor]),
                "meter_type": METER_TYPES[role], "pod": pod, "protocol": "mqtt"}}},
        }
    return {
        "version": "1.0",
        "schema_version": "0.7",
        "metadata": {"created": plan.start.isoformat(), "updated": plan.start.isoformat(),
                     "updated_by": "tests.benchmarks.generate_telemetry",
                     "description": f"Synthetic telemetry benchmark community: {plan.sensors} "
                                    f"meters, seed {plan.seed}."},
        "community": {
            "id": plan.community,
            "name": f"CER {plan.community}",
            "legal": {"name": f"CER {plan.community} APS", "vat": "IT09876543210",
                      "legal_form": "APS"},
            "contact": {"email": f"info@{plan.community}.example.org"},
            "settings": {"timezone": TIMEZONE, "currency": "EUR", "energy_unit": "kWh",
                         "power_unit": "kW", "incentive_eur_per_mwh": INCENTIVE_EUR_PER_MWH},
            "operators": {"edistribuzione": {"name": "E-Distribuzione", "country": "IT"}},
            "areas": areas,
            "topology": topology,
        },
        "members": members,
    }


def utc_offset_hours(day: date) -> float:
    """Europe/Rome's offset from UTC at noon of that day (the day of a switch is approximate)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    offset = noon.astimezone(ZoneInfo(TIMEZONE)).utcoffset()
    return offset.total_seconds() / 3600 if offset is not None else 0.0


def day_readings(plan: Plan, day_index: int) -> Chunk:
    """Every reading of one UTC day, minute by minute, every sensor within a minute."""
    day = plan.start + timedelta(days=day_index)
    rng = np.random.default_rng([plan.seed, 1, day_index])
    hours_utc = np.arange(MINUTES) / 60.0
    local = (hours_utc + utc_offset_hours(day)) % 24
    weekend = day.weekday() >= 5
    household = (0.45 + (0.5 if weekend else 0.9) * np.exp(-(((local - 7.8) / 1.3) ** 2))
                 + 1.4 * np.exp(-(((local - 19.8) / 2.0) ** 2))
                 + (0.35 if weekend else 0.1) * np.exp(-(((local - 13.0) / 2.5) ** 2)))
    year_day = day.timetuple().tm_yday
    daylight = 12.0 - 3.1 * math.cos(2 * math.pi * (year_day + 10) / 365)
    strength = 0.62 - 0.28 * math.cos(2 * math.pi * (year_day + 10) / 365)
    sunrise = SOLAR_NOON_UTC_H - daylight / 2
    sun = np.clip(np.sin(np.pi * (hours_utc - sunrise) / daylight), 0.0, None) ** 1.3
    sun[(hours_utc < sunrise) | (hours_utc > sunrise + daylight)] = 0.0
    clouds = rng.uniform(0.15, 1.0, AREAS)[plan.areas]  # one sky per area and day
    shape = (MINUTES, plan.sensors)
    noise = rng.lognormal(0.0, 0.3, shape)
    solar = sun[:, None] * (strength * clouds * plan.pv_kwp)[None, :] \
        * np.clip(rng.normal(1.0, 0.08, shape), 0.0, None)
    load = household[:, None] * plan.load_kw[None, :] * noise
    kw = np.where(plan.channel[None, :] == 1, solar, np.clip(load - 0.7 * solar, 0.0, None))
    value = np.round(kw * (1000.0 / 60.0), 2)  # kW for a minute, in Wh
    ts = day_start_ms(day) + np.arange(MINUTES, dtype=np.int64) * MS_PER_MINUTE
    return Chunk(sensor=np.tile(np.arange(plan.sensors, dtype=np.int32), MINUTES),
                 ts=np.repeat(ts, plan.sensors), value=value.reshape(-1))


def readings(plan: Plan, first_day: int = 0, days: int | None = None) -> Iterator[Chunk]:
    """Day after day, in time order."""
    last = plan.days if days is None else min(plan.days, first_day + days)
    for day_index in range(first_day, last):
        yield day_readings(plan, day_index)


def to_arrow(plan: Plan, chunk: Chunk) -> pa.Table:
    """The chunk as the upload columns: sensor_id, channel (strings), ts (ms, UTC), value."""
    indices = pa.array(chunk.sensor, type=pa.int32())
    sensor_ids = pa.DictionaryArray.from_arrays(indices, pa.array(plan.sensor_ids.tolist()))
    channels = pa.DictionaryArray.from_arrays(pa.array(plan.channel[chunk.sensor], pa.int8()),
                                              pa.array(list(CHANNELS)))
    return pa.Table.from_arrays(
        [sensor_ids.cast(pa.string()), channels.cast(pa.string()),
         pa.array(chunk.ts, type=pa.timestamp("ms", tz="UTC")), pa.array(chunk.value)],
        schema=READING_SCHEMA)


def write_parquet(plan: Plan, directory: Path, first_day: int, days: int,
                  days_per_file: int = 1) -> list[tuple[Path, int]]:
    """One Parquet file per `days_per_file` days from `first_day`; (path, rows) each."""
    directory.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, int]] = []
    last = min(plan.days, first_day + days)
    for first in range(first_day, last, days_per_file):
        day = plan.start + timedelta(days=first)
        path = directory / f"readings-{day.isoformat()}.parquet"
        rows = 0
        with pq.ParquetWriter(path, READING_SCHEMA) as writer:
            for chunk in readings(plan, first, min(days_per_file, last - first)):
                writer.write_table(to_arrow(plan, chunk))
                rows += len(chunk)
        files.append((path, rows))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.generate_telemetry",
        description="Write the telemetry benchmark's community bundle and, optionally, its "
                    "readings as Parquet files (one per day).")
    parser.add_argument("--sensors", type=int, default=DEFAULT_SENSORS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START,
                        help="the first day (UTC midnight), YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--community", default=DEFAULT_COMMUNITY, help="the community key")
    parser.add_argument("--bundle", metavar="FILE", help="write the YAML bundle here")
    parser.add_argument("--parquet", metavar="DIR", help="write the readings here")
    parser.add_argument("--validate", action="store_true",
                        help="check the bundle against the v0.7 JSON Schema and import rules")
    args = parser.parse_args(argv)
    plan = make_plan(sensors=args.sensors, days=args.days, start=args.start, seed=args.seed,
                     community=args.community)
    document = bundle(plan)
    if args.validate:
        from tests.benchmarks.generate_community import problems

        errors = problems(document)
        for error in errors[:50]:
            print(f"invalid: {error}", file=sys.stderr)
        if errors:
            return 1
    if args.bundle:
        Path(args.bundle).write_bytes(dump(document))
        print(f"wrote {args.bundle}: {plan.sensors} members and meters", file=sys.stderr)
    if args.parquet:
        files = write_parquet(plan, Path(args.parquet), 0, plan.days)
        size = sum(path.stat().st_size for path, _ in files)
        print(f"wrote {len(files)} Parquet files to {args.parquet}: {plan.readings:,} readings, "
              f"{size / 1_048_576:.1f} MiB", file=sys.stderr)
    if not (args.bundle or args.parquet or args.validate):
        sys.stdout.buffer.write(dump(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
