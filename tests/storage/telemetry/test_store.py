"""The telemetry store's file: a store written by an earlier version opens and is rebuilt."""

from __future__ import annotations

from pathlib import Path

import duckdb

from storage.telemetry import queries
from storage.telemetry.compaction import compact
from storage.telemetry.store import TelemetryStore


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
