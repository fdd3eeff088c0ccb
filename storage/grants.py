"""Write grants remembered between registry changes: in which communities an active member
holds each sensor and which communities a user administers, asked on every ingest batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from sqlmodel import Session

from storage.access import administered_community_ids
from storage.memo import MAX_AGE_S, RegistryMemo
from storage.sensors import active_sensor_communities


class WriteGrants:
    """The registry facts a write check needs, read once and reused while they hold."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._holders: RegistryMemo[str, frozenset[int]] = RegistryMemo(
            max_age_s=max_age_s, clock=clock)
        self._administered: RegistryMemo[str, frozenset[int]] = RegistryMemo(
            max_age_s=max_age_s, clock=clock)

    def writable_sensor_ids(self, session: Session, *, user_id: str, is_platform_admin: bool,
                            sensor_ids: Collection[str]) -> dict[str, int]:
        """Those of these sensors the user may write readings of, each with the community
        whose series is written: only through a holding of an active member, in any
        community for a platform admin, in a community they administer for anyone else.
        (Should a registry from before one-community-per-sensor have two active holdings
        within reach, the lowest community id is taken.)"""
        holders = self._holders.get(
            sensor_ids, lambda missing: {
                sensor_id: frozenset(communities) for sensor_id, communities in
                active_sensor_communities(session, sensor_ids=missing).items()},
            missing=frozenset())
        own = None if is_platform_admin else self._administered.get(
            [user_id], lambda users: {
                users[0]: frozenset(administered_community_ids(session, user_id=users[0]))},
            missing=frozenset())[user_id]
        writable: dict[str, int] = {}
        for sensor_id in sensor_ids:
            reachable = holders[sensor_id] if own is None else holders[sensor_id] & own
            if reachable:
                writable[sensor_id] = min(reachable)
        return writable
