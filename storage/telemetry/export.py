"""Exports of readings as CSV, XLSX or Parquet: written by DuckDB (or xlsxwriter) to a
temporary file with constant memory, then streamed and deleted."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator, Mapping
from pathlib import Path

import pyarrow as pa

from storage.telemetry.channels import CATALOG, code_of
from storage.telemetry.errors import QueryTooLarge
from storage.telemetry.store import TelemetryStore

XLSX_MAX_ROWS = 1_048_575  # a worksheet's 1,048,576 rows, less the header
CHUNK_BYTES = 1 << 20
CHANNEL_NAMES = "[" + ", ".join(f"'{channel.name}'" for channel in CATALOG) + "]"
# A text cell a spreadsheet would read as a formula (or a DDE call) starts with one of these;
# CSV exports prefix such a cell with an apostrophe (the OWASP advice), so it stays text.
FORMULA_STARTS = "=+-@\t\r"
CSV_SAFE_SENSOR_ID = (
    "CASE WHEN left(s.sensor_id, 1) IN ("
    + ", ".join(f"chr({ord(char)})" for char in FORMULA_STARTS)
    + ") THEN chr(39) || s.sensor_id ELSE s.sensor_id END")
SELECT_SQL = f"""
SELECT {{sensor_id}} AS sensor_id, {CHANNEL_NAMES}[r.channel] AS channel,
       strftime(make_timestamp(r.ts * 1000), '%Y-%m-%dT%H:%M:%S.%gZ') AS ts, r.value
FROM readings r JOIN sensors s ON s.sensor = r.sensor
WHERE r.sensor IN (SELECT sensor FROM wanted_sensors) {{channel_filter}}
  AND r.ts >= {{low}} AND r.ts < {{high}}
ORDER BY s.sensor_id, r.channel, r.ts
"""


def export_file(store: TelemetryStore, *, sensors: Mapping[str, int], channel: str | None,
                low: int, high: int, file_format: str) -> Path:
    """The readings (of the series of the community `sensors` gives each sensor id) in a new
    temporary file (the caller deletes it); QueryTooLarge when an XLSX export would exceed
    a worksheet."""
    keys = list(store.sensor_keys(sensors).values())
    descriptor, name = tempfile.mkstemp(prefix="export-", suffix=f".{file_format}",
                                        dir=store.temp_dir)
    os.close(descriptor)
    path = Path(name)
    channel_filter = "" if channel is None else f"AND r.channel = {code_of(channel)}"
    sensor_id = CSV_SAFE_SENSOR_ID if file_format == "csv" else "s.sensor_id"
    sql = SELECT_SQL.format(sensor_id=sensor_id, channel_filter=channel_filter, low=int(low),
                            high=int(high))
    try:
        with store.reader() as cursor:
            cursor.register("wanted_sensors", pa.table({"sensor": pa.array(keys, pa.int32())}))
            if file_format == "xlsx":
                _write_xlsx(cursor, sql, path)
            else:
                options = "FORMAT csv, HEADER true" if file_format == "csv" else \
                    "FORMAT parquet, COMPRESSION zstd"
                quoted = "'" + str(path).replace("'", "''") + "'"
                cursor.execute(f"COPY ({sql}) TO {quoted} ({options})")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _write_xlsx(cursor: object, sql: str, path: Path) -> None:
    import xlsxwriter  # imported here: only XLSX exports need it

    count_row = cursor.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0]  # type: ignore[attr-defined]
    count = int(count_row[0]) if count_row else 0
    if count > XLSX_MAX_ROWS:
        raise QueryTooLarge(
            f"{count} readings exceed the {XLSX_MAX_ROWS} rows of an XLSX worksheet; "
            "export them as CSV or Parquet, or choose a shorter range")
    # Every cell as given: a sensor id "=HYPERLINK(...)" is text, not a formula or a link.
    workbook = xlsxwriter.Workbook(str(path), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    sheet = workbook.add_worksheet("readings")
    sheet.write_row(0, 0, ["sensor_id", "channel", "ts", "value"])
    reader = cursor.sql(sql).to_arrow_reader(50_000)  # type: ignore[attr-defined]
    row = 1
    for batch in reader:
        for values in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            sheet.write_row(row, 0, values)
            row += 1
    workbook.close()


def stream_file(path: Path) -> Generator[bytes, None, None]:
    """The file's bytes in chunks; the file is deleted once read (or abandoned)."""
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                yield chunk
    finally:
        path.unlink(missing_ok=True)
