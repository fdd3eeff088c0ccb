"""Cursors: opaque positions, every well-formed one valid, anything else refused."""

from __future__ import annotations

import pytest

from storage.errors import InvalidCursor
from storage.pagination import clamp_limit, decode_cursor, encode_cursor


@pytest.mark.parametrize("key", [0, 1, 35, 36, 1_000_000, 2**31 - 1])
def test_cursor_round_trips(key: int) -> None:
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("cursor", ["", "-1", "ABC", "a b", "0123456789abc", "é"])
def test_cursor_this_server_could_not_issue_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


@pytest.mark.parametrize(("asked", "given"), [(None, 50), (0, 1), (-5, 1), (7, 7), (1000, 500)])
def test_limit_is_clamped(asked: int | None, given: int) -> None:
    assert clamp_limit(asked) == given


def test_a_position_past_every_key_is_the_end() -> None:
    assert decode_cursor("zzzzzzzzzzzz") == 2**31 - 1
