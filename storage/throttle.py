"""Failed-login throttling per account and per client address, kept in the database."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlmodel import Session

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


def record_failure(
    session: Session, *, key: str, max_failures: int, window_seconds: int
) -> datetime | None:
    """Count a failed attempt; block the key for the window once it reaches max_failures."""
    now = utc_now()
    row = session.get(LoginThrottle, key)
    window = timedelta(seconds=window_seconds)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
    elif now - row.window_started_at > window:
        row.failures, row.window_started_at, row.blocked_until = 0, now, None
    row.failures += 1
    if row.failures >= max_failures:
        row.blocked_until = now + window
    session.add(row)
    return row.blocked_until


def clear_failures(session: Session, *, key: str) -> None:
    """Forget the failures of a key (after a successful login)."""
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)
