"""Telemetry files as earlier versions wrote them."""

from __future__ import annotations

from pathlib import Path

import duckdb


def old_store_with(path: Path, sensors: dict[int, str]) -> None:
    """A telemetry file of the layout before sensors were keyed by community, each sensor
    with one power reading (its key as value) at 1 s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = duckdb.connect(str(path))
    old.execute("""
        CREATE TABLE sensors (sensor INTEGER PRIMARY KEY, sensor_id VARCHAR NOT NULL UNIQUE);
        CREATE TABLE readings (sensor INTEGER NOT NULL, channel UTINYINT NOT NULL,
                               ts BIGINT NOT NULL, value DOUBLE NOT NULL);""")
    for key, sensor_id in sensors.items():
        old.execute("INSERT INTO sensors VALUES ($k, $s)", {"k": key, "s": sensor_id})
        old.execute("INSERT INTO readings VALUES ($k, 1, 1000, $k)", {"k": key})
    old.execute("CREATE TABLE days (day BIGINT PRIMARY KEY, sealed BOOLEAN NOT NULL,"
                " changed_at BIGINT NOT NULL); INSERT INTO days VALUES (0, false, 0)")
    old.close()
