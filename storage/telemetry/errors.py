"""Errors of the telemetry store; each carries a stable machine `code`."""

from __future__ import annotations

from typing import Any

from storage.errors import StorageError


class ReadingsRefused(StorageError):
    """Some readings of a batch are invalid; none of the batch was stored."""

    code = "readings_refused"

    def __init__(self, refusals: list[dict[str, Any]], refused: int, total: int) -> None:
        super().__init__(f"{refused} of {total} readings were refused; none was stored")
        self.refusals = refusals
        self.refused = refused
        self.total = total


class MalformedUpload(StorageError):
    """An upload that is not the file its content type says (bad CSV, NDJSON or Parquet)."""

    code = "malformed_upload"


class TooManyReadings(StorageError):
    """An upload holding more readings than the configured cap (a small compressed file can
    hold millions)."""

    code = "too_many_readings"


class QueryTooLarge(StorageError):
    """A query whose answer would exceed what the API returns in one response."""

    code = "query_too_large"


class RangeTooLong(StorageError):
    """A query range longer than the bucket or resolution asked allows."""

    code = "range_too_long"


class TelemetryUnavailable(StorageError):
    """The telemetry store cannot be opened or written."""

    code = "telemetry_unavailable"
