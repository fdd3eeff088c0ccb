"""Write grants remembered between registry changes: which communities hold each sensor and
which communities a user administers, asked on every ingest batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from sqlmodel import Session

from storage.access import administered_community_ids
from storage.db import registry_version
from storage.sensors import sensor_communities

# A change committed by this process is seen at once (registry_version); one committed by
# another process (a CLI import beside the server) within this many seconds.
MAX_AGE_S = 2.0
# Sensor ids remembered at most (unknown ids included); beyond, the cache starts over.
MAX_SENSORS = 200_000


class WriteGrants:
    """The registry facts a write check needs, read once and reused while they hold."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._version = -1
        self._since = 0.0
        self._holders: dict[str, frozenset[int]] = {}  # sensor id -> communities (maybe none)
        self._administered: dict[str, frozenset[int]] = {}  # user id -> communities

    def writable_sensor_ids(self, session: Session, *, user_id: str, is_platform_admin: bool,
                            sensor_ids: Collection[str]) -> set[str]:
        """Those of these sensors the user may write readings of: a platform admin those any
        community holds, anyone else those of the communities they administer."""
        version = registry_version()
        holders, administered = self._current(version)
        missing = [sensor_id for sensor_id in set(sensor_ids) if sensor_id not in holders]
        found = sensor_communities(session, sensor_ids=missing) if missing else {}
        learned = {sensor_id: frozenset(found.get(sensor_id, ())) for sensor_id in missing}
        own = None if is_platform_admin else administered.get(user_id)
        if own is None and not is_platform_admin:
            own = frozenset(administered_community_ids(session, user_id=user_id))
        self._remember(version, learned, {} if own is None else {user_id: own})
        writable = set()
        for sensor_id in sensor_ids:
            communities = learned.get(sensor_id)
            if communities is None:
                communities = holders[sensor_id]
            if communities and (own is None or communities & own):
                writable.add(sensor_id)
        return writable

    def _current(self, version: int) -> tuple[dict[str, frozenset[int]],
                                               dict[str, frozenset[int]]]:
        with self._lock:
            if version != self._version or self._clock() - self._since > self.max_age_s:
                return {}, {}
            return self._holders, self._administered

    def _remember(self, version: int, holders: dict[str, frozenset[int]],
                  administered: dict[str, frozenset[int]]) -> None:
        """Keep what was read, unless the registry changed since `version` was taken (what
        was read may then be stale already)."""
        if not holders and not administered:
            return
        with self._lock:
            if registry_version() != version:
                return
            now = self._clock()
            if (version != self._version or now - self._since > self.max_age_s
                    or len(self._holders) + len(holders) > MAX_SENSORS):
                # Start over (copies, so that readers of the old dictionaries are unharmed).
                self._version, self._since = version, now
                self._holders, self._administered = dict(holders), dict(administered)
                return
            self._holders = {**self._holders, **holders}
            self._administered = {**self._administered, **administered}
