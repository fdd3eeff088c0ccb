"""Batched loaders of a GraphQL request (aiodataloader): the sensors a query names in many
places are read from the telemetry store in one call per kind of question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiodataloader import DataLoader

from handlers.instants import iso_many, zone_of
from handlers.runtime import in_thread
from storage.telemetry import queries
from storage.telemetry.store import TelemetryStore


class LatestKey(NamedTuple):
    sensor_id: str
    community_id: int


class AggregateKey(NamedTuple):
    sensor_id: str
    community_id: int
    channel: str
    bucket: str
    low: int
    high: int
    zone: str


class SeriesKey(NamedTuple):
    sensor_id: str
    community_id: int
    channel: str
    low: int
    high: int
    max_points: int


def _grouped(keys: Sequence[Any], question: Any) -> dict[tuple[Any, int], list[Any]]:
    """The keys grouped by what one storage call can answer together (a sensor is asked
    once per group, in the community its key names)."""
    groups: dict[tuple[Any, int], list[Any]] = {}
    for key in keys:
        groups.setdefault((question(key), key.community_id), []).append(key)
    return groups


@dataclass
class Loaders:
    """The loaders of one request (never shared between requests or callers)."""

    store: TelemetryStore
    latest: DataLoader = field(init=False)
    aggregates: DataLoader = field(init=False)
    series: DataLoader = field(init=False)

    def __post_init__(self) -> None:
        self.latest = DataLoader(self._load_latest)
        self.aggregates = DataLoader(self._load_aggregates)
        self.series = DataLoader(self._load_series)

    async def _load_latest(self, keys: Sequence[LatestKey]) -> list[list[tuple[str, int, float]]]:
        """Every channel's newest reading of each sensor: one pass over the store's
        in-memory index of newest readings."""
        found: dict[LatestKey, list[tuple[str, int, float]]] = {key: [] for key in keys}
        for (_, community_id), group in _grouped(keys, lambda key: None).items():
            for sensor_id, channel, ts, value in queries.latest(
                    self.store, sensors={key.sensor_id: community_id for key in group},
                    channel=None):
                found[LatestKey(sensor_id, community_id)].append((channel, ts, value))
        return [found[key] for key in keys]

    async def _load_aggregates(self, keys: Sequence[AggregateKey]) -> list[Any]:
        """Each sensor's buckets as answered (dicts, instants as text): one aggregates query
        per (channel, bucket, range, zone); the bucket edges, shared by the sensors, are
        written as text once."""
        found: dict[AggregateKey, Any] = {}
        groups = _grouped(keys, lambda key: (key.channel, key.bucket, key.low, key.high,
                                             key.zone))
        for ((channel, bucket, low, high, zone), community_id), group in groups.items():
            sensors = {key.sensor_id: community_id for key in group}
            answer = await in_thread(queries.aggregates, self.store, sensors=sensors,
                                     channel=channel, low=low, high=high, bucket=bucket,
                                     zone=zone_of(zone))
            columns = answer.columns
            edges = sorted({*columns["start"], *columns["end"]})
            names = dict(zip(edges, iso_many(edges), strict=True))
            for key in group:
                begin, end = answer.spans[key.sensor_id]
                found[key] = [
                    {"start": names[start], "end": names[finish], "count": count, "avg": avg,
                     "min": low_value, "max": high_value, "sum": total, "first": first,
                     "last": last}
                    for start, finish, count, avg, low_value, high_value, total, first, last
                    in zip(*(columns[name][begin:end] for name in queries.BUCKET_FIELDS),
                           strict=True)]
        return [found[key] for key in keys]

    async def _load_series(self, keys: Sequence[SeriesKey]) -> list[queries.Series]:
        """Each sensor's readings: one series query (M4 past max_points) per (channel, range,
        max_points)."""
        found: dict[SeriesKey, queries.Series] = {}
        groups = _grouped(keys, lambda key: (key.channel, key.low, key.high, key.max_points))
        for ((channel, low, high, max_points), community_id), group in groups.items():
            sensors = {key.sensor_id: community_id for key in group}
            answer = await in_thread(queries.series, self.store, sensors=sensors,
                                     channel=channel, low=low, high=high,
                                     max_points=max_points)
            by_id = {item.sensor_id: item for item in answer}
            for key in group:
                found[key] = by_id[key.sensor_id]
        return [found[key] for key in keys]
