"""Failed-login throttling per (account, address) pair and per client address, in the database.

A pair's failures earn growing delays (exponential backoff, capped): they slow the one
address guessing one account without locking the account's owner out of any other address.
An address's failures over all accounts block it for a while once they reach a limit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from storage.models import LoginThrottle, utc_now


def pair_key(*, email: str, address: str) -> str:
    """The throttle key of one account tried from one client address."""
    return f"pair:{address} {email}"


def address_key(address: str) -> str:
    """The throttle key of one client address, over every account."""
    return f"address:{address}"


def retry_after_seconds(session: Session, *, keys: list[str]) -> int:
    """Seconds until every one of `keys` may try again; 0 when none is blocked."""
    now = utc_now()
    wait = 0.0
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            wait = max(wait, (row.blocked_until - now).total_seconds())
    return math.ceil(wait)


def backoff_seconds(failures: int, *, free_failures: int, base_seconds: int,
                    max_seconds: int) -> int:
    """The delay after a pair's `failures`-th failure: none for the first `free_failures`,
    then base, 2 x base, 4 x base, ... up to max_seconds."""
    if failures <= free_failures:
        return 0
    exponent = min(failures - free_failures - 1, 62)
    return int(min(base_seconds * 2 ** exponent, max_seconds))


def _count_failure(session: Session, *, key: str, window_seconds: int,
                   now: datetime) -> int:
    """Add one failure to the key's count (restarted once its window has passed); the count.

    One atomic upsert, so concurrent failures are all counted.
    """
    window = timedelta(seconds=window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stale = col(LoginThrottle.window_started_at) < now - window
    statement = insert(LoginThrottle).values(
        key=key, failures=1, window_started_at=now, blocked_until=None)
    upsert = statement.on_conflict_do_update(index_elements=["key"], set_={
        "failures": case((stale, 1), else_=col(LoginThrottle.failures) + 1),
        "window_started_at": case((stale, now), else_=col(LoginThrottle.window_started_at)),
    }).returning(col(LoginThrottle.failures))
    return int(session.execute(upsert).scalar_one())


def _block(session: Session, *, key: str, until: datetime) -> None:
    session.execute(update(LoginThrottle).where(col(LoginThrottle.key) == key)
                    .values(blocked_until=until))


def record_address_failure(session: Session, *, key: str, max_failures: int,
                           window_seconds: int) -> None:
    """Count a failed attempt from an address; block it for the window once it reaches
    max_failures within the window."""
    now = utc_now()
    if _count_failure(session, key=key, window_seconds=window_seconds, now=now) >= max_failures:
        _block(session, key=key, until=now + timedelta(seconds=window_seconds))


def record_pair_failure(session: Session, *, key: str, free_failures: int, base_seconds: int,
                        max_seconds: int, window_seconds: int) -> int:
    """Count a failed attempt of one account from one address and block the pair for its
    backoff delay; the delay in seconds (0 while failures are still free)."""
    now = utc_now()
    failures = _count_failure(session, key=key, window_seconds=window_seconds, now=now)
    delay = backoff_seconds(failures, free_failures=free_failures, base_seconds=base_seconds,
                            max_seconds=max_seconds)
    if delay:
        _block(session, key=key, until=now + timedelta(seconds=delay))
    return delay


def clear_failures(session: Session, *, key: str) -> None:
    """Forget the failures of a key (after a successful login)."""
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)
