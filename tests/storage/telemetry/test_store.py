"""The telemetry store's file: a store written by an earlier version opens and is rebuilt."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from storage.telemetry import queries
from storage.telemetry.compaction import compact
from storage.telemetry.ingest import ingest_table, table_from_json
from storage.telemetry.store import DAY_MS, TelemetryStore
from tests.storage.telemetry.old_files import old_store_with


def test_a_rollup_without_extremes_is_rebuilt_by_the_compaction(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.duckdb"
    old = duckdb.connect(str(path))
    old.execute("""
        CREATE TABLE sensors (sensor INTEGER PRIMARY KEY, sensor_id VARCHAR NOT NULL UNIQUE);
        CREATE TABLE readings (sensor INTEGER NOT NULL, channel UTINYINT NOT NULL,
                               ts BIGINT NOT NULL, value DOUBLE NOT NULL);
        CREATE TABLE latest (sensor INTEGER NOT NULL, channel UTINYINT NOT NULL,
                             first_ts BIGINT NOT NULL, ts BIGINT NOT NULL, value DOUBLE NOT NULL);
        CREATE TABLE days (day BIGINT PRIMARY KEY, sealed BOOLEAN NOT NULL,
                           changed_at BIGINT NOT NULL);
        CREATE TABLE hourly (sensor INTEGER NOT NULL, channel UTINYINT NOT NULL,
                             hour BIGINT NOT NULL, n BIGINT NOT NULL, total DOUBLE NOT NULL,
                             low DOUBLE NOT NULL, high DOUBLE NOT NULL,
                             first_ts BIGINT NOT NULL, first_value DOUBLE NOT NULL,
                             last_ts BIGINT NOT NULL, last_value DOUBLE NOT NULL);
        INSERT INTO sensors VALUES (1, 's');
        INSERT INTO readings SELECT 1, 1, range * 600000, range % 7 FROM range(144 * 20);
        INSERT INTO latest VALUES (1, 1, 0, 2879 * 600000, 2879 % 7);
        INSERT INTO days SELECT range, true, 0 FROM range(20);
        INSERT INTO hourly SELECT 1, 1, range * 3600000, 6, 0, 0, 0, 0, 0, 0, 0 FROM range(480);
    """)
    old.close()

    store = TelemetryStore(path, memory_limit_mb=256)
    try:
        assert sorted(store.unsealed) == list(range(20))
        assert store.unassigned_sensor_ids() == ["s"]
        assert store.assign_communities({"s": 1}) == {"s": 1}
        exact = queries.series(store, sensors={"s": 1}, channel="power", low=0,
                               high=20 * 86_400_000, max_points=40)
        assert compact(store, quiet_ms=0) == 20
        assert queries.series(store, sensors={"s": 1}, channel="power", low=0,
                              high=20 * 86_400_000, max_points=40) == exact
        assert exact[0].raw_count == 2880 and max(exact[0].value) == 6.0
    finally:
        store.close()


def test_sql_on_the_store_reads_and_writes_no_file_outside_its_temporary_directory(
        tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=128)
    outside = tmp_path / "outside.csv"
    inside = store.temp_dir / "export-inside.csv"
    try:
        with store.scratch() as cursor:
            for statement in ("SELECT * FROM read_csv('/etc/passwd')",
                              f"COPY (SELECT 1 AS a) TO '{outside}'",
                              f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
                              "SET enable_external_access = true",
                              "SET allowed_directories = ['/']",
                              "LOAD httpfs"):
                with pytest.raises(duckdb.Error):
                    cursor.execute(statement)
            cursor.execute(f"COPY (SELECT 1 AS a) TO '{inside}'")  # exports stay possible
            read_back = f"SELECT a FROM read_csv('{inside}')"  # noqa: S608 - a temp path
            assert cursor.execute(read_back).fetchall() == [(1,)]
        assert not outside.exists()
    finally:
        store.close()


def test_opening_the_store_sweeps_spooled_files_an_earlier_run_left(tmp_path: Path) -> None:
    temp_dir = tmp_path / "telemetry.tmp"
    temp_dir.mkdir()
    for name in ("upload-abc", "export-def.csv"):
        (temp_dir / name).write_bytes(b"x" * 1000)
    TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=128).close()
    assert list(temp_dir.iterdir()) == []


YEAR_2026 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_the_same_sensor_id_in_two_communities_is_two_series(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    try:
        for community, value in ((1, 10.0), (2, 999999.0)):
            ingest_table(store, table_from_json({
                "sensor_id": "meter", "channel": "power", "ts": ["2026-03-02T10:00:00Z"],
                "value": [value]}), authorize=lambda ids, c=community: dict.fromkeys(ids, c),
                max_future_ms=10**13)
        for community, value in ((1, 10.0), (2, 999999.0)):
            found = queries.series(store, sensors={"meter": community}, channel="power",
                                   low=YEAR_2026, high=YEAR_2026 + DAY_MS * 365,
                                   max_points=100)
            assert found[0].value == [value]
        assert queries.series(store, sensors={"meter": 3}, channel="power", low=YEAR_2026,
                              high=YEAR_2026 + DAY_MS * 365, max_points=100)[0].value == []
        assert len(store.sensor_ids_by_key(list(range(10)))) == 2
    finally:
        store.close()
    reopened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    try:
        assert [item[0] for item in queries.latest(reopened, sensors={"meter": 2},
                                                   channel=None)] == ["meter"]
        assert queries.latest(reopened, sensors={"meter": 2}, channel=None)[0][3] == 999999.0
    finally:
        reopened.close()


def test_sensors_of_an_old_file_are_unread_until_given_a_community(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.duckdb"
    old_store_with(path, {1: "kept", 2: "taken"})
    store = TelemetryStore(path, memory_limit_mb=256)
    try:
        assert store.unassigned_sensor_ids() == ["kept", "taken"]
        assert queries.latest(store, sensors={"kept": 1, "taken": 1}, channel=None) == []
        # Community 1 wrote "taken" before the old sensor was assigned: the old one stays
        # unassigned (a community never gets two series of one id).
        ingest_table(store, table_from_json({
            "sensor_id": "taken", "channel": "power", "ts": ["2026-03-02T10:00:00Z"],
            "value": [5.0]}), authorize=lambda ids: dict.fromkeys(ids, 1), max_future_ms=10**13)
        assert store.assign_communities({"kept": 1, "taken": 1}) == {"kept": 1}
        assert store.unassigned_sensor_ids() == ["taken"]
        assert queries.latest(store, sensors={"kept": 1}, channel=None)[0][3] == 1.0
        assert queries.latest(store, sensors={"taken": 1}, channel=None)[0][3] == 5.0
        assert queries.latest(store, sensors={"kept": 2}, channel=None) == []
    finally:
        store.close()
    reopened = TelemetryStore(path, memory_limit_mb=256)
    try:
        assert reopened.unassigned_sensor_ids() == ["taken"]
        assert queries.latest(reopened, sensors={"kept": 1}, channel=None)[0][3] == 1.0
    finally:
        reopened.close()
