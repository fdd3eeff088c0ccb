"""Keyset pagination with opaque cursors: stable under concurrent inserts, done in SQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlmodel import Session

from storage.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSOR_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
CURSOR_PATTERN = re.compile(r"[0-9a-z]{1,12}")
MAX_KEY = 2**31 - 1
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


def encode_cursor(last_key: int) -> str:
    """An opaque cursor that continues a listing after the row with `last_key`."""
    digits = ""
    while True:
        last_key, remainder = divmod(last_key, 36)
        digits = CURSOR_ALPHABET[remainder] + digits
        if last_key == 0:
            return digits


def decode_cursor(cursor: str) -> int:
    """The position a cursor holds; InvalidCursor for anything this server could not issue.

    Every cursor that matches the spec's pattern is a position: used with another filter or
    listing, it goes on after that position, within what the caller may see.
    """
    if not CURSOR_PATTERN.fullmatch(cursor):
        raise InvalidCursor("the cursor is not one this server issued")
    # Keys are 32-bit integers: a position past the largest one is simply past the end.
    return min(int(cursor, 36), MAX_KEY)


def paginate(
    session: Session,
    statement: Any,
    key_column: Any,
    *,
    limit: int | None,
    cursor: str | None,
    key_of: Callable[[Any], int],
) -> Page[Any]:
    """One page of `statement` in ascending `key_column` order, after `cursor`."""
    size = clamp_limit(limit)
    if cursor is not None:
        statement = statement.where(key_column > decode_cursor(cursor))
    rows = list(session.exec(statement.order_by(key_column).limit(size + 1)).all())
    has_more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(key_of(rows[-1])) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)
