"""Compaction: computed from a snapshot outside the write lock, never losing a later write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from storage.telemetry.compaction import compact, compact_day
from storage.telemetry.store import DAY_MS, TelemetryStore
from tests.storage.telemetry.test_ingest import START, batch, ingest, stored


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened
    opened.close()


class WriteAfterSnapshot:
    """A scratch cursor that lets one more batch in right after the compaction's snapshot."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, late: Any) -> None:
        self._cursor = cursor
        self._late = late

    def execute(self, sql: str, *args: Any) -> Any:
        result = self._cursor.execute(sql, *args)
        if sql == "COMMIT" and self._late is not None:
            late, self._late = self._late, None
            late()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def test_a_day_written_during_its_compaction_stays_unsealed_and_keeps_the_write(
        store: TelemetryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(store, batch("s1", 0, 99, 1.0))
    day = START // DAY_MS
    scratch = store.scratch

    @contextmanager
    def late_scratch() -> Iterator[Any]:
        with scratch() as cursor:
            yield WriteAfterSnapshot(cursor, lambda: ingest(store, batch("s1", 50, 149, 2.0)))

    monkeypatch.setattr(store, "scratch", late_scratch)
    assert compact_day(store, day) is None
    monkeypatch.undo()
    assert day in store.unsealed
    expected = ([("s1", second, 1.0) for second in range(50)]
                + [("s1", second, 2.0) for second in range(50, 150)])
    assert stored(store) == expected
    assert compact(store, quiet_ms=0) == 1 and day not in store.unsealed
    assert stored(store) == expected
    with store.reader() as cursor:
        assert cursor.execute("SELECT sum(n), sum(total) FROM hourly").fetchall() == [
            (150, 250.0)]


def rollup_order(store: TelemetryStore) -> list[tuple[int, int]]:
    """(sensor key, hour) of the hourly rollup in the order its rows are stored."""
    with store.reader() as cursor:
        return [(int(sensor), int(hour)) for sensor, hour in cursor.execute(
            "SELECT sensor, hour FROM hourly ORDER BY rowid").fetchall()]


def test_a_rollup_block_left_unsorted_by_a_restart_is_sorted_by_the_next_compaction(
        tmp_path: Path) -> None:
    path = tmp_path / "telemetry.duckdb"
    store = TelemetryStore(path, memory_limit_mb=256)
    day_seconds = DAY_MS // 1000
    for day in range(2):  # two sensors, two days, each day compacted (sorted) on its own
        ingest(store, batch("s1", day * day_seconds, day * day_seconds + 3599, 1.0))
        ingest(store, batch("s2", day * day_seconds, day * day_seconds + 3599, 2.0))
    for day in sorted(store.unsealed):
        assert compact_day(store, day) is not None  # the server stops before sorting
    assert store.status()["unsorted_rollup_blocks"] == 1
    stored_by_day = rollup_order(store)
    assert stored_by_day != sorted(stored_by_day)  # day by day: s1, s2, s1, s2
    store.close()

    reopened = TelemetryStore(path, memory_limit_mb=256)
    try:
        assert reopened.status()["unsorted_rollup_blocks"] == 1
        assert compact(reopened, quiet_ms=0) == 0  # no day to compact, a block to sort
        assert reopened.status()["unsorted_rollup_blocks"] == 0
        assert rollup_order(reopened) == sorted(stored_by_day)
    finally:
        reopened.close()
