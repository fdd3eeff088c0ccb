"""Ingest of JSON batches: concurrent batches written together keep their own answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from storage.telemetry import ingest as ingest_module
from storage.telemetry.errors import MalformedUpload
from storage.telemetry.ingest import IngestResult, ingest_table, table_from_json
from storage.telemetry.store import TelemetryStore

SECOND = 1_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield opened
    opened.close()


def batch(sensor: str, first: int, last: int, value: float) -> pa.Table:
    """Power readings of `sensor` at seconds first..last after START, all of one value."""
    count = last - first + 1
    return pa.table({"idx": pa.array(range(count), pa.int64()), "sensor_id": [sensor] * count,
                     "channel": ["power"] * count,
                     "ts": pa.array([START + SECOND * second for second in range(first, last + 1)],
                                    pa.int64()),
                     "value": pa.array([value] * count, pa.float64())})


def ingest(store: TelemetryStore, table: pa.Table) -> IngestResult:
    return ingest_table(store, table, authorize=lambda ids: dict.fromkeys(ids, 1),
                        max_future_ms=10**13)


def stored(store: TelemetryStore) -> list[tuple[str, int, float]]:
    with store.reader() as cursor:
        return [(str(sensor_id), int(second), float(value)) for sensor_id, second, value in
                cursor.execute("""SELECT s.sensor_id, (r.ts - $start) // $second, r.value
                                  FROM readings r JOIN sensors s USING (sensor)
                                  ORDER BY 1, 2""", {"start": START, "second": SECOND}
                               ).fetchall()]


def test_batches_waiting_together_are_written_as_if_one_after_another(
        store: TelemetryStore) -> None:
    assert ingest(store, batch("s1", 0, 9, 1.0)).accepted == 10
    results: dict[str, IngestResult] = {}

    def send(name: str, table: pa.Table) -> None:
        results[name] = ingest(store, table)

    threads = []
    with store.writer():  # another writer (an upload, the compaction) holds the store
        # The first batch to arrive leads the next write; those arriving meanwhile wait.
        for name, table in (("leader", batch("s3", 0, 0, 0.0)),
                            ("first", batch("s1", 5, 14, 2.0)),
                            ("second", batch("s1", 10, 19, 3.0)),
                            ("other", batch("s2", 0, 4, 4.0))):
            threads.append(threading.Thread(target=send, args=(name, table)))
            threads[-1].start()
            deadline = time.monotonic() + 10
            while (len(store._waiting) < len(threads) - 1 or not store._leading) \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
        assert len(store._waiting) == 3  # written in one group after the leader's
    for thread in threads:
        thread.join(timeout=30)

    assert [(results[name].accepted, results[name].replaced, results[name].sensors)
            for name in ("first", "second", "other")] == [(10, 5, 1), (10, 5, 1), (5, 0, 1)]
    assert stored(store) == ([("s1", second, 1.0) for second in range(5)]
                             + [("s1", second, 2.0) for second in range(5, 10)]
                             + [("s1", second, 3.0) for second in range(10, 20)]
                             + [("s2", second, 4.0) for second in range(5)]
                             + [("s3", 0, 0.0)])
    assert store.latest[(store.sensor_keys({"s1": 1})["s1"], 1)][1:] == [START + 19 * SECOND, 3.0]


def test_a_group_failing_again_batch_by_batch_stores_none(
        store: TelemetryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(store, batch("s1", 0, 4, 1.0))
    errors: list[BaseException] = []

    def send(table: pa.Table) -> None:
        try:
            ingest(store, table)
        except BaseException as error:
            errors.append(error)

    with store.writer():
        threads = [threading.Thread(target=send, args=(batch("s1", 100 + 10 * n, 105 + 10 * n,
                                                             2.0),)) for n in range(3)]
        for started, thread in enumerate(threads, start=1):
            thread.start()
            deadline = time.monotonic() + 10
            while len(store._waiting) + store._leading < started \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
        assert len(store._waiting) == 2
        monkeypatch.setattr(pa, "table", _broken_table)
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()
    assert [type(error) for error in errors] == [RuntimeError] * 3
    assert stored(store) == [("s1", second, 1.0) for second in range(5)]


def test_a_group_that_fails_is_written_again_batch_by_batch(
        store: TelemetryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch whose write fails (a storage fault while writing it) fails alone: the
    others of its group are written again one by one and stored."""
    write_batches = ingest_module._write_batches

    def failing_for_s9(store: TelemetryStore, cursor: Any, group: list[Any]) -> Any:
        if any("s9" in pending.allowed for pending in group):
            raise RuntimeError("the disk is full")
        return write_batches(store, cursor, group)

    monkeypatch.setattr(ingest_module, "_write_batches", failing_for_s9)
    outcomes: dict[str, object] = {}

    def send(name: str, table: pa.Table) -> None:
        try:
            outcomes[name] = ingest(store, table).accepted
        except RuntimeError as error:
            outcomes[name] = str(error)

    threads = []
    with store.writer():  # the first leads the next write; bad and third wait: one group
        for name, table in (("first", batch("s1", 0, 9, 1.0)), ("bad", batch("s9", 0, 4, 9.0)),
                            ("third", batch("s2", 0, 4, 2.0))):
            threads.append(threading.Thread(target=send, args=(name, table)))
            threads[-1].start()
            deadline = time.monotonic() + 10
            while len(store._waiting) + store._leading < len(threads) \
                    and time.monotonic() < deadline:
                time.sleep(0.001)
        assert len(store._waiting) == 2
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == {"first": 10, "bad": "the disk is full", "third": 5}
    assert stored(store) == ([("s1", second, 1.0) for second in range(10)]
                             + [("s2", second, 2.0) for second in range(5)])
    assert store.sensor_keys(dict.fromkeys(["s1", "s2", "s9"], 1)).keys() == {"s1", "s2"}


def _broken_table(*_args: object, **_kwargs: object) -> pa.Table:
    raise RuntimeError("the disk is full")


def good_row(**changes: object) -> dict[str, object]:
    return {"sensor_id": "s1", "channel": "power", "ts": "2026-01-01T00:00:00Z",
            "value": 1.5, **changes}


@pytest.mark.parametrize(("document", "pointer"), [
    ({"readings": [good_row(), good_row(value=True)]}, "body/readings/1/value: expected a number"),
    ({"readings": [good_row(), good_row(value="2")]}, "body/readings/1/value: expected a number"),
    ({"readings": [good_row(), good_row(sensor_id=None)]},
     "body/readings/1/sensor_id: expected a string"),
    ({"readings": [good_row(), good_row(), {**good_row(), "extra": 1}]},
     "body/readings/2: expected an object"),
    ({"readings": [good_row(), {"sensor_id": "s1", "channel": "power", "ts": "x", "valu": 1}]},
     "body/readings/1: expected an object"),
    ({"readings": [good_row(), ["s1", "power"]]}, "body/readings/1: expected an object"),
    ({"sensor_id": "s1", "channel": "power", "ts": ["2026-01-01T00:00:00Z", 5],
      "value": [1, 2]}, "body/ts/1: expected a string"),
    ({"sensor_id": "s1", "channel": "power", "ts": ["2026-01-01T00:00:00Z"] * 2,
      "value": [1, False]}, "body/value/1: expected a number"),
])
def test_a_malformed_json_batch_names_its_first_bad_item(document: dict, pointer: str) -> None:
    with pytest.raises(MalformedUpload, match="^" + pointer):
        table_from_json(document)


def test_a_json_batch_becomes_columns_with_instants_in_utc_milliseconds() -> None:
    table = table_from_json({"readings": [
        good_row(ts="2026-01-01T01:00:00.0015+01:00", value=2),
        good_row(ts="1969-12-31T23:59:59.9995Z"), good_row(ts="2026-01-01T00:00:00")]})
    assert table.column("ts").to_pylist() == [START + 1, -1, None]
    assert table.column("value").to_pylist() == [2.0, 1.5, 1.5]
