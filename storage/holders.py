"""Sensor holders remembered between registry changes: who holds each sensor, and every
sensor of a community, asked by every telemetry query."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from sqlmodel import Session

from storage.memo import MAX_AGE_S, RegistryMemo
from storage.sensors import SensorHolder, sensor_holders

# Communities whose holders are remembered at most (each may hold thousands of sensors).
MAX_COMMUNITIES = 256


class HolderCache:
    """sensor_holders, read once and reused while the registry is unchanged."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._by_sensor: RegistryMemo[str, tuple[SensorHolder, ...]] = RegistryMemo(
            max_age_s=max_age_s, clock=clock)
        self._by_community: RegistryMemo[int, tuple[SensorHolder, ...]] = RegistryMemo(
            max_age_s=max_age_s, max_entries=MAX_COMMUNITIES, clock=clock)

    def of_sensors(self, session: Session, *,
                   sensor_ids: Collection[str]) -> list[SensorHolder]:
        """The assets carrying these sensors, as sensor_holders gives them."""
        found = self._by_sensor.get(sorted(set(sensor_ids)), lambda missing: _by_sensor_id(
            sensor_holders(session, sensor_ids=missing)), missing=())
        return [holder for holders in found.values() for holder in holders]

    def of_community(self, session: Session, *, community_id: int) -> list[SensorHolder]:
        """Every asset of the community carrying a sensor, as sensor_holders gives them."""
        found = self._by_community.get([community_id], lambda _: {
            community_id: tuple(sensor_holders(session, community_id=community_id))},
            missing=())
        return list(found[community_id])


def _by_sensor_id(holders: list[SensorHolder]) -> dict[str, tuple[SensorHolder, ...]]:
    grouped: dict[str, list[SensorHolder]] = {}
    for holder in holders:
        grouped.setdefault(holder.sensor_id, []).append(holder)
    return {sensor_id: tuple(found) for sensor_id, found in grouped.items()}
