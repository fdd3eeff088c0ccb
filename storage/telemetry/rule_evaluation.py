"""Rules evaluated over a stored batch with NumPy, series by series (every reading, not only
the last), and silence found from the store's latest readings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.rules import ActiveRule, Firing, RuleBook
from storage.telemetry.channels import code_of
from storage.telemetry.store import TelemetryStore

HISTORY_SQL = """
SELECT ts, value FROM readings
WHERE sensor = $sensor AND channel = $channel AND ts < $first AND ts >= coalesce(
    (SELECT max(ts) FROM readings WHERE sensor = $sensor AND channel = $channel
       AND ts <= $since), $since)
ORDER BY ts
"""


@dataclass(frozen=True)
class Readings:
    """A stored batch in any order: per reading its community, sensor and channel (codes
    into `sensor_ids` and `channels`), ts (epoch ms) and value."""

    community_id: np.ndarray
    sensor: np.ndarray
    sensor_ids: list[str]
    channel: np.ndarray
    channels: list[str]
    ts: np.ndarray
    value: np.ndarray

    @classmethod
    def from_table(cls, table: pa.Table, communities: dict[str, int]) -> Readings:
        """From a table of sensor_id, channel, ts and value, each sensor's community
        given by `communities` (strings are hashed by Arrow, never compared in Python)."""
        sensors = pc.dictionary_encode(table["sensor_id"]).combine_chunks()
        channels = pc.dictionary_encode(table["channel"]).combine_chunks()
        sensor_ids = sensors.dictionary.to_pylist()
        sensor = sensors.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        community = np.array([communities[sensor_id] for sensor_id in sensor_ids],
                             np.int64)[sensor] if sensor_ids else np.empty(0, np.int64)
        return cls(community, sensor, sensor_ids,
                   channels.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                   channels.dictionary.to_pylist(),
                   table["ts"].to_numpy().astype(np.int64),
                   table["value"].to_numpy().astype(np.float64))


def condition(rule: ActiveRule, values: np.ndarray) -> np.ndarray:
    """Where the rule's condition holds on one series' values (as RuleBook.holds)."""
    low = float(rule.threshold if rule.threshold is not None else np.nan)
    high = float(rule.threshold_high if rule.threshold_high is not None else low)
    match rule.operator:
        case "gt":
            return values > low
        case "gte":
            return values >= low
        case "lt":
            return values < low
        case "lte":
            return values <= low
        case "eq":
            return values == low
        case "between":
            return (values >= low) & (values <= high)
        case "not_between":
            return (values < low) | (values > high)
    return np.zeros(len(values), dtype=bool)


def held_for(holds: np.ndarray, ts: np.ndarray, span_ms: int) -> np.ndarray:
    """Where the condition has held on every reading for at least `span_ms`: since the
    first reading of the current unbroken run."""
    index = np.arange(len(holds))
    run_start = np.maximum.accumulate(np.where(holds, -1, index)) + 1
    run_start = np.minimum(run_start, len(holds) - 1)
    return holds & (ts - ts[run_start] >= span_ms)


def _after_cooldown(candidates: np.ndarray, ts: np.ndarray, last: int | None,
                    cooldown_ms: int) -> list[int]:
    """The candidate positions that fire: a reading after the last firing by at least the
    cooldown (a reading at or before the last firing never fires again)."""
    chosen: list[int] = []
    times = ts[candidates]
    gap = max(cooldown_ms, 1)
    start = 0 if last is None else int(np.searchsorted(times, last + gap, side="left"))
    while start < len(candidates):
        chosen.append(int(candidates[start]))
        if cooldown_ms <= 0:
            chosen.extend(int(position) for position in candidates[start + 1:])
            break
        start = int(np.searchsorted(times, times[start] + gap, side="left"))
    return chosen


class Evaluator:
    """Evaluates a stored batch against a rule book."""

    def __init__(self, store: TelemetryStore, book: RuleBook) -> None:
        self.store = store
        self.book = book

    def firings(self, readings: Readings) -> list[Firing]:
        """Every firing of the batch. Each series of the batch is paired with every rule
        watching it, and all pairs are screened at once on the series' lowest and highest
        value; only a pair whose rule some reading may meet is then looked at reading by
        reading, in time order (`for` spans, cooldowns)."""
        book = self.book
        count = len(readings.ts)
        if not book.watches_readings or count == 0:
            return []
        communities, community_index = np.unique(readings.community_id, return_inverse=True)
        series_key = (community_index * len(readings.sensor_ids) + readings.sensor) \
            * len(readings.channels) + readings.channel
        series, series_of_row = np.unique(series_key, return_inverse=True)
        watching = []
        for key in series.tolist():
            rest, channel = divmod(key, len(readings.channels))
            community, sensor = divmod(rest, len(readings.sensor_ids))
            watching.append(book.watching(int(communities[community]),
                                          readings.sensor_ids[sensor],
                                          readings.channels[channel]))
        per_series = np.array([len(found) for found in watching], np.int64)
        if not per_series.any():
            return []
        order = np.lexsort((readings.ts, series_of_row))
        starts = np.flatnonzero(np.diff(series_of_row[order], prepend=-1))
        lowest = np.minimum.reduceat(readings.value[order], starts)
        highest = np.maximum.reduceat(readings.value[order], starts)
        pair_series = np.repeat(np.arange(len(series)), per_series)
        pair_rule = np.concatenate(watching)
        maybe = book.may_hold(pair_rule, lowest[pair_series], highest[pair_series])
        fired: list[Firing] = []
        ends = np.append(starts[1:], count)
        for series_index, position in zip(pair_series[maybe].tolist(),
                                          pair_rule[maybe].tolist(), strict=True):
            rows = order[starts[series_index]:ends[series_index]]
            first = int(rows[0])
            fired.extend(self._fire(
                book.rules[position], int(readings.community_id[first]),
                readings.sensor_ids[int(readings.sensor[first])], readings.ts[rows],
                readings.value[rows]))
        return sorted(fired, key=lambda firing: (firing.sensor_id, firing.ts_ms,
                                                 firing.rule.id))

    def _fire(self, rule: ActiveRule, community_id: int, sensor_id: str, ts: np.ndarray,
              values: np.ndarray) -> list[Firing]:
        holds = condition(rule, values)
        if not holds.any():
            return []
        prefix = 0
        if rule.for_ms > 0:
            if holds[0]:
                before_ts, before_values = self._history(rule, community_id, sensor_id,
                                                         int(ts[0]))
                prefix = len(before_ts)
                ts = np.concatenate((before_ts, ts))
                values = np.concatenate((before_values, values))
                holds = np.concatenate((condition(rule, before_values), holds))
            holds = held_for(holds, ts, rule.for_ms)
            holds[:prefix] = False
        candidates = np.flatnonzero(holds)
        last = self.book.last_fired.get((rule.id, sensor_id))
        return [Firing(rule, sensor_id, int(ts[position]), float(values[position]))
                for position in _after_cooldown(candidates, ts, last, rule.cooldown_ms)]

    def _history(self, rule: ActiveRule, community_id: int, sensor_id: str,
                 first_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored readings of the series over the rule's span before `first_ms`, and
        the last one at or before the span's start."""
        key = self.store.sensor_keys({sensor_id: community_id}).get(sensor_id)
        if key is None:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        with self.store.reader() as cursor:
            found = cursor.execute(HISTORY_SQL, {
                "sensor": key, "channel": code_of(rule.channel), "first": first_ms,
                "since": first_ms - rule.for_ms}).fetchnumpy()
        return (np.asarray(found["ts"], np.int64), np.asarray(found["value"], np.float64))


def silent_sensors(store: TelemetryStore, book: RuleBook, *,
                   sensors_of: dict[int, list[str]], now_ms: int) -> list[Firing]:
    """The silence rules that fire now: a watched sensor whose last reading on the channel
    is older than the rule's silence span, once per silence (until it sends again).
    `sensors_of` gives each community's sensor ids (for rules on every sensor); a sensor
    that never sent a reading on the channel is not watched."""
    fired: list[Firing] = []
    for rule in book.silence:
        watched = [rule.sensor_id] if rule.sensor_id is not None else \
            sensors_of.get(rule.community_id, [])
        keys = store.sensor_keys(dict.fromkeys(watched, rule.community_id))
        code = code_of(rule.channel)
        for sensor_id, key in sorted(keys.items()):
            latest = store.latest.get((key, code))
            if latest is None:
                continue
            last_ts, last_value = int(latest[1]), float(latest[2])
            if now_ms - last_ts < rule.silence_ms:
                continue
            if book.last_fired.get((rule.id, sensor_id), -2**62) >= last_ts:
                continue  # this silence was told already
            fired.append(Firing(rule, sensor_id, last_ts, last_value))
    return fired
