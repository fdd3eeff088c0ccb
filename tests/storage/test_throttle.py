"""The login throttle's arithmetic, pinned: the backoff schedule and the counting window's
edge (tests/handlers/test_auth.py drives the same rules through the login)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from storage import throttle

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_backoff_doubles_from_its_base_after_the_free_failures_up_to_the_cap() -> None:
    delays = [throttle.backoff_seconds(failures, free_failures=3, base_seconds=2,
                                       max_seconds=900) for failures in range(1, 16)]
    assert delays == [0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    assert throttle.backoff_seconds(10**6, free_failures=1, base_seconds=5,
                                    max_seconds=10**30) == 5 * 2**62  # the exponent's cap


def test_a_failure_exactly_one_window_after_the_first_still_counts(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window is closed at its end: a failure at first + window is the window's last; one
    a microsecond later starts a new count."""
    def fail_at(now: datetime) -> int:
        monkeypatch.setattr(throttle, "utc_now", lambda: now)
        return throttle.record_pair_failure(session, key="pair:k", free_failures=1,
                                            base_seconds=1, max_seconds=900,
                                            window_seconds=60)

    assert fail_at(T0) == 0
    assert fail_at(T0 + timedelta(seconds=60)) == 1  # the second failure: 1 s
    assert fail_at(T0 + timedelta(seconds=60, microseconds=1)) == 0  # counted from 1 again
    # Another key's count is its own.
    monkeypatch.setattr(throttle, "utc_now", lambda: T0)
    assert throttle.record_pair_failure(session, key="pair:other", free_failures=0,
                                        base_seconds=3, max_seconds=900,
                                        window_seconds=60) == 3
