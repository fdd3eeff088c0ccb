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
