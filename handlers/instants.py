"""Instants and dates in requests and answers: parsed strictly, written in UTC with ms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from handlers.problems import Problem

MAX_DAYS = {"balance": 366, "daily": 400}


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


def parse_range(arguments: dict[str, str]) -> tuple[int, int]:
    """The [from, to) range of a request, 400 when `to` is not after `from`."""
    low = parse_instant("from", arguments["from"])
    high = parse_instant("to", arguments["to"])
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
    """An epoch-ms instant as ISO 8601 in UTC with milliseconds."""
    instant = datetime.fromtimestamp(ms / 1000, UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_many(values: Sequence[int] | np.ndarray) -> list[str]:
    """Epoch-ms instants as iso() writes them, converted together (a long series)."""
    stamps = np.datetime_as_string(np.asarray(values, dtype="datetime64[ms]"), unit="ms")
    return [text + "Z" for text in stamps.tolist()]
