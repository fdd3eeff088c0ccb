"""Instants and dates in requests and answers: parsed strictly, written in UTC with ms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from handlers.problems import Problem
from storage.telemetry.instants import END_TS_MS, END_TS_TEXT, MIN_TS_MS, MIN_TS_TEXT

MAX_DAYS = {"balance": 366, "daily": 400}
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2199, 12, 31)  # days of the accepted instants
FIRST_WRITABLE_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
LAST_WRITABLE_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_instant(name: str, text: str) -> int:
    """A query parameter holding an ISO 8601 instant with offset, as UTC epoch ms."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        instant = None
    if instant is None or instant.utcoffset() is None:
        raise Problem(400, "invalid_instant",
                      f"query parameter '{name}': expected an ISO 8601 instant with its UTC "
                      "offset, such as 2026-01-31T23:00:00Z")
    return math.floor(instant.timestamp() * 1000)


def _within(name: str, ms: int, *, end: bool) -> int:
    """400 invalid_instant for a range bound outside the accepted instants (`to`, an
    excluded end, may be the end of them)."""
    if not (MIN_TS_MS <= ms < END_TS_MS or (end and ms == END_TS_MS)):
        raise Problem(400, "invalid_instant",
                      f"query parameter '{name}': outside the instants the API keeps, "
                      f"{MIN_TS_TEXT} (included) to {END_TS_TEXT} (excluded)")
    return ms


def parse_range(arguments: dict[str, str]) -> tuple[int, int]:
    """The [from, to) range of a request within the accepted instants, 400 when `to` is not
    after `from`."""
    low = _within("from", parse_instant("from", arguments["from"]), end=False)
    high = _within("to", parse_instant("to", arguments["to"]), end=True)
    if high <= low:
        raise Problem(400, "invalid_range", "query parameter 'to' must be after 'from'")
    return low, high


def parse_dates(arguments: dict[str, str], *, max_days: int) -> tuple[date, date]:
    """The first and last day of a request (both included), at most `max_days` days."""
    try:
        first = date.fromisoformat(str(arguments["from"]))
        last = date.fromisoformat(str(arguments["to"]))
    except ValueError as error:
        raise Problem(400, "invalid_date",
                      "query parameters 'from' and 'to' must be dates (YYYY-MM-DD)") from error
    if first < FIRST_DATE or last > LAST_DATE:
        raise Problem(400, "invalid_date",
                      f"query parameters 'from' and 'to' must be days from {FIRST_DATE} to"
                      f" {LAST_DATE}")
    if last < first:
        raise Problem(400, "invalid_range", "query parameter 'to' must not be before 'from'")
    if (last - first).days + 1 > max_days:
        raise Problem(422, "range_too_long",
                      f"at most {max_days} days per request; this asks for "
                      f"{(last - first).days + 1}")
    return first, last


def zone_of(name: str | None) -> ZoneInfo:
    """An IANA timezone (UTC when None); 400 for a name zoneinfo does not know."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Problem(400, "unknown_timezone", f"no timezone {name!r}") from error


def iso(ms: int) -> str:
    """An epoch-ms instant as ISO 8601 in UTC with milliseconds; never raises (see
    iso_many)."""
    return iso_many([ms])[0]


def iso_many(values: Sequence[int] | np.ndarray) -> list[str]:
    """Epoch-ms instants as ISO 8601 in UTC with milliseconds, converted together (a long
    series). Never raises: an instant the store could not have accepted (only a file
    written before the accepted range existed may hold one) is written as the nearest
    instant of four-digit years, 0001-01-01T00:00:00.000Z or 9999-12-31T23:59:59.999Z."""
    clipped = np.clip(np.asarray(values, dtype=np.float64), FIRST_WRITABLE_MS,
                      LAST_WRITABLE_MS).astype(np.int64)
    stamps = np.datetime_as_string(clipped.astype("datetime64[ms]"), unit="ms")
    return [text + "Z" for text in stamps.tolist()]
