"""Cross-community claims: sensors carried in a community whatever their member's status,
delivery points held by active members, the lock."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from storage import claims
from tests.storage.test_graph import small_graph, write


@pytest.mark.parametrize("status", ["pending", "suspended", "inactive"])
def test_a_sensor_is_held_by_any_member_points_only_by_active_ones(
    session: Session, status: str,
) -> None:
    active = write(session, small_graph("active", sensors=("s-a",), point="P-a"))
    idle = write(session, small_graph("idle", sensors=("s-i",), status=status, point="P-i"))

    assert claims.held_sensors(session, sensor_ids=["s-a", "s-i", "s-x"],
                               excluding_community_ids=[]) == {"s-a", "s-i"}
    assert claims.held_sensors(session, sensor_ids=["s-a", "s-i"],
                               excluding_community_ids=[idle]) == {"s-a"}
    assert claims.held_delivery_points(session, dp_ids=["P-a", "P-i"],
                                       excluding_community_ids=[]) == {"P-a"}
    assert claims.held_sensors(session, sensor_ids=["s-a"],
                               excluding_community_ids=[active]) == set()
    assert claims.held_delivery_points(session, dp_ids=["P-a"],
                                       excluding_community_ids={active}) == set()
    assert claims.held_sensors(session, sensor_ids=[], excluding_community_ids=[]) == set()


def test_lookups_work_past_one_chunk_of_parameters(session: Session) -> None:
    sensors = tuple(f"s-{number}" for number in range(1200))
    write(session, small_graph("big", sensors=sensors))

    held = claims.held_sensors(session, sensor_ids=[*sensors, "other"],
                               excluding_community_ids=[])

    assert held == set(sensors)


def test_the_claims_lock_is_held_until_the_transaction_ends(
    session: Session, engine: Engine,
) -> None:
    claims.lock_claims(session)
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE; the lock is a no-op")
    try_lock = text("SELECT pg_try_advisory_xact_lock(:key)")
    with Session(engine) as other:
        assert other.execute(try_lock, {"key": claims.CLAIMS_LOCK_KEY}).scalar_one() is False
        other.rollback()
        session.rollback()
        assert other.execute(try_lock, {"key": claims.CLAIMS_LOCK_KEY}).scalar_one() is True
        other.rollback()
