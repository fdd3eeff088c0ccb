"""Sensors of a telemetry file from before community keys, given to their community."""

from __future__ import annotations

from sqlmodel import Session

from storage.sensors import sensor_holders
from storage.telemetry.store import TelemetryStore


def assign_legacy_sensors(store: TelemetryStore, *, session: Session) -> dict[str, int]:
    """Give each unassigned sensor of the store (written before readings were kept per
    community) to the one community whose active member holds it; a sensor no active member
    holds, or active members of several communities hold, stays unassigned: its readings
    are then read by nobody. Returns the sensors assigned, with their community."""
    unassigned = store.unassigned_sensor_ids()
    if not unassigned:
        return {}
    communities: dict[str, set[int]] = {}
    for holder in sensor_holders(session, sensor_ids=unassigned):
        if holder.member_status == "active":
            communities.setdefault(holder.sensor_id, set()).add(holder.community_id)
    owners = {sensor_id: next(iter(found)) for sensor_id, found in communities.items()
              if len(found) == 1}
    return store.assign_communities(owners)
