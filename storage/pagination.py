"""Keyset pagination with opaque cursors: stable under concurrent inserts, done in SQL."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlmodel import Session

from storage.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the cursor of the next one (None on the last page)."""

    items: Sequence[T]
    next_cursor: str | None


def clamp_limit(limit: int | None) -> int:
    """The page size: 50 when not given, else clamped into 1-500."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, limit))


def encode_cursor(listing: str, last_key: int) -> str:
    """An opaque cursor that continues `listing` after the row with `last_key`."""
    raw = json.dumps({"l": listing, "k": last_key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, listing: str) -> int:
    """The last key a cursor of `listing` points after; InvalidCursor for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        key = data["k"]
        same_listing = data["l"] == listing
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise InvalidCursor("the cursor is not one this listing issued") from None
    if not same_listing or not isinstance(key, int) or isinstance(key, bool):
        raise InvalidCursor("the cursor belongs to another listing or filter")
    return key


def paginate(
    session: Session,
    statement: Any,
    key_column: Any,
    *,
    listing: str,
    limit: int | None,
    cursor: str | None,
    key_of: Callable[[Any], int],
) -> Page[Any]:
    """One page of `statement` in ascending `key_column` order, after `cursor`."""
    size = clamp_limit(limit)
    if cursor is not None:
        statement = statement.where(key_column > decode_cursor(cursor, listing))
    rows = list(session.exec(statement.order_by(key_column).limit(size + 1)).all())
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(listing, key_of(rows[-1])) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)
