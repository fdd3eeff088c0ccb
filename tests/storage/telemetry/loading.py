"""Readings written straight into a telemetry store, for tests below the HTTP layer."""

from __future__ import annotations

import pyarrow as pa

from storage.telemetry.ingest import ingest_table
from storage.telemetry.store import TelemetryStore


def put_readings(store: TelemetryStore, rows: list[tuple[str, str, int, float]]) -> None:
    """Rows (sensor, channel, ts in epoch ms, value) ingested as one batch, every sensor
    writable (community 1), any instant accepted."""
    ingest_table(store, pa.table({
        "idx": pa.array(range(len(rows)), pa.int64()),
        "sensor_id": [sensor for sensor, _, _, _ in rows],
        "channel": [channel for _, channel, _, _ in rows],
        "ts": pa.array([ts for _, _, ts, _ in rows], pa.int64()),
        "value": pa.array([value for _, _, _, value in rows], pa.float64())}),
        authorize=lambda ids: dict.fromkeys(ids, 1), max_future_ms=10**13)
