"""Failed-login throttling per account and per client address, kept in the database."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import case
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from storage.models import LoginThrottle, utc_now


def retry_after_seconds(session: Session, *, keys: list[str]) -> int:
    """Seconds until every one of `keys` may try again; 0 when none is blocked."""
    now = utc_now()
    wait = 0.0
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = max(wait, (row.blocked_until - now).total_seconds())
    return math.ceil(wait)


def record_failure(session: Session, *, key: str, max_failures: int, window_seconds: int) -> None:
    """Count a failed attempt; block the key for the window once it reaches max_failures.

    One atomic upsert, so concurrent failures are all counted.
    """
    now = utc_now()
    window = timedelta(seconds=window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stale = col(LoginThrottle.window_started_at) < now - window
    failures = case((stale, 1), else_=col(LoginThrottle.failures) + 1)
    statement = insert(LoginThrottle).values(
        key=key, failures=1, window_started_at=now,
        blocked_until=now + window if max_failures <= 1 else None,
    )
    statement = statement.on_conflict_do_update(index_elements=["key"], set_={
        "failures": failures,
        "window_started_at": case((stale, now), else_=col(LoginThrottle.window_started_at)),
        "blocked_until": case((failures >= max_failures, now + window), else_=None),
    })
    session.execute(statement)


def clear_failures(session: Session, *, key: str) -> None:
    """Forget the failures of a key (after a successful login)."""
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)
