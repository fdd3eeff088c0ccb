"""Registry facts remembered between registry changes, for checks asked on every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from storage.db import registry_version

# A change committed by this process is seen at once (registry_version); one committed by
# another process (a CLI import beside the server) within this many seconds.
MAX_AGE_S = 2.0
# Keys remembered at most (unknown ones included); beyond, the memo starts over.
MAX_ENTRIES = 200_000

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class RegistryMemo(Generic[Key, Value]):
    """Values read from the registry by key, reused while the registry has not changed: a
    write this process commits clears them at once, a write of another process is seen once
    they are `max_age_s` old."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._version = -1
        self._since = 0.0
        self._values: dict[Key, Value] = {}

    def get(self, keys: Iterable[Key], load: Callable[[list[Key]], Mapping[Key, Value]], *,
            missing: Value) -> dict[Key, Value]:
        """The value of each key: remembered ones as they are, the others from `load` (given
        the keys not remembered, it answers those it finds; `missing` stands for the rest)."""
        wanted = list(dict.fromkeys(keys))
        version = registry_version()
        known = self._current(version)
        absent = [key for key in wanted if key not in known]
        learned: dict[Key, Value] = {}
        if absent:
            found = load(absent)
            learned = {key: found.get(key, missing) for key in absent}
            self._remember(version, learned)
        return {key: learned[key] if key in learned else known[key] for key in wanted}

    def _current(self, version: int) -> dict[Key, Value]:
        with self._lock:
            if version != self._version or self._clock() - self._since > self.max_age_s:
                return {}
            return self._values

    def _remember(self, version: int, values: dict[Key, Value]) -> None:
        """Keep what was read, unless the registry changed since `version` was taken (what
        was read may then be stale already)."""
        with self._lock:
            if registry_version() != version:
                return
            now = self._clock()
            if (version != self._version or now - self._since > self.max_age_s
                    or len(self._values) + len(values) > self.max_entries):
                # Start over (a copy, so that readers of the old dictionary are unharmed).
                self._version, self._since, self._values = version, now, dict(values)
                return
            self._values = {**self._values, **values}
