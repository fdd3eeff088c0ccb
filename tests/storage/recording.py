"""Test helpers for caches of registry facts: a clock moved by hand, the SELECTs a session runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlmodel import Session


class Clock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queries_run(session: Session) -> list[str]:
    """The SELECT statements the session's engine runs from now on (a list that grows)."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    event.listen(session.get_bind(), "before_cursor_execute", record)
    return statements
