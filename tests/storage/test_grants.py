"""Write grants: right answers, reused between registry changes, never stale after one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, update
from sqlmodel import Session, col

from storage.grants import WriteGrants
from storage.models import Asset, Community, Member


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(session: Session) -> dict[str, int]:
    """Communities a (operator op@a.test, sensors sa1, sa2) and b (sensor sb1), committed."""
    ids = {}
    for key, sensors in (("a", ["sa1", "sa2"]), ("b", ["sb1"])):
        community = Community(key=key, name=key.upper())
        session.add(community)
        session.flush()
        assert community.id is not None
        ids[key] = community.id
        operator = Member(community_id=community.id, key="op", user_id=f"op@{key}.test",
                          name="Op", role="operator", area="north", status="active")
        session.add(operator)
        session.flush()
        assert operator.id is not None
        for position, sensor_id in enumerate(sensors):
            session.add(Asset(community_id=community.id, member_id=operator.id,
                              key=f"m-{sensor_id}", asset_type="meter", name=sensor_id,
                              sensor_id=sensor_id, position=position))
    session.commit()
    return ids


def queries_run(session: Session) -> list[str]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    event.listen(session.get_bind(), "before_cursor_execute", record)
    return statements


def test_an_operator_writes_the_sensors_of_the_communities_it_administers(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    asked = ["sa1", "sa2", "sb1", "nowhere"]
    assert grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                                      sensor_ids=asked) == {"sa1", "sa2"}
    assert grants.writable_sensor_ids(session, user_id="op@b.test", is_platform_admin=False,
                                      sensor_ids=asked) == {"sb1"}
    assert grants.writable_sensor_ids(session, user_id="stranger@x.test",
                                      is_platform_admin=False, sensor_ids=asked) == set()
    assert grants.writable_sensor_ids(session, user_id="root@x.test", is_platform_admin=True,
                                      sensor_ids=asked) == {"sa1", "sa2", "sb1"}


def test_a_second_check_reads_nothing_while_the_registry_is_unchanged(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                               sensor_ids=["sa1", "sb1", "nowhere"])
    statements = queries_run(session)
    assert grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                                      sensor_ids=["sa1", "sb1", "nowhere"]) == {"sa1"}
    assert statements == []
    grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                               sensor_ids=["sa1", "sa2"])
    assert len(statements) == 1  # only sa2 was looked up


def test_a_registry_change_of_this_process_applies_to_the_next_check(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    check: dict[str, Any] = {"user_id": "op@a.test", "is_platform_admin": False,
                             "sensor_ids": ["sa1", "sa2"]}
    assert grants.writable_sensor_ids(session, **check) == {"sa1", "sa2"}
    session.execute(update(Asset).where(col(Asset.sensor_id) == "sa2")
                    .values(sensor_id="moved"))
    session.commit()
    assert grants.writable_sensor_ids(session, **check) == {"sa1"}
    session.execute(update(Member).where(col(Member.user_id) == "op@a.test")
                    .values(role="consumer"))
    session.commit()
    assert grants.writable_sensor_ids(session, **check) == set()


def test_a_change_made_elsewhere_applies_once_the_grants_are_old(
        session: Session, registry: dict[str, int]) -> None:
    clock = Clock()
    grants = WriteGrants(max_age_s=2.0, clock=clock)
    check: dict[str, Any] = {"user_id": "op@a.test", "is_platform_admin": False,
                             "sensor_ids": ["sa1"]}
    assert grants.writable_sensor_ids(session, **check) == {"sa1"}
    # Another process (a CLI import) demotes the operator: this process sees no write.
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    cursor.execute("UPDATE member SET role = 'consumer' WHERE user_id = 'op@a.test'")
    cursor.close()
    raw.commit()
    session.rollback()
    clock.now += 1.0
    assert grants.writable_sensor_ids(session, **check) == {"sa1"}  # still within max_age
    clock.now += 1.5
    assert grants.writable_sensor_ids(session, **check) == set()
