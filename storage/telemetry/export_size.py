"""How many readings an export would hold: what decides whether it runs as a job."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from storage.telemetry.channels import code_of
from storage.telemetry.store import TelemetryStore


def count_export_rows(store: TelemetryStore, *, sensors: Mapping[str, int],
                      channel: str | None, low: int, high: int) -> int:
    """The number of readings `export_file` would write for the same arguments."""
    keys = list(store.sensor_keys(sensors).values())
    if not keys:
        return 0
    channel_filter = "" if channel is None else f"AND channel = {code_of(channel)}"
    with store.reader() as cursor:
        cursor.register("counted_sensors", pa.table({"sensor": pa.array(keys, pa.int32())}))
        row = cursor.execute(
            "SELECT count(*) FROM readings WHERE sensor IN (SELECT sensor FROM counted_sensors)"
            f" {channel_filter} AND ts >= $low AND ts < $high",
            {"low": int(low), "high": int(high)}).fetchall()[0]
    return int(row[0])
