"""Write grants: right answers, reused between registry changes, never stale after one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from storage.grants import WriteGrants
from storage.models import Asset, Member
from tests.storage.recording import Clock, queries_run


def test_an_operator_writes_the_sensors_of_the_communities_it_administers(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    asked = ["sa1", "sa2", "sb1", "nowhere"]
    a, b = registry["a"], registry["b"]
    assert grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                                      sensor_ids=asked) == {"sa1": a, "sa2": a}
    assert grants.writable_sensor_ids(session, user_id="op@b.test", is_platform_admin=False,
                                      sensor_ids=asked) == {"sb1": b}
    assert grants.writable_sensor_ids(session, user_id="stranger@x.test",
                                      is_platform_admin=False, sensor_ids=asked) == {}
    assert grants.writable_sensor_ids(session, user_id="root@x.test", is_platform_admin=True,
                                      sensor_ids=asked) == {"sa1": a, "sa2": a, "sb1": b}


def test_a_second_check_reads_nothing_while_the_registry_is_unchanged(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                               sensor_ids=["sa1", "sb1", "nowhere"])
    statements = queries_run(session)
    assert grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                                      sensor_ids=["sa1", "sb1", "nowhere"]).keys() == {"sa1"}
    assert statements == []
    grants.writable_sensor_ids(session, user_id="op@a.test", is_platform_admin=False,
                               sensor_ids=["sa1", "sa2"])
    assert len(statements) == 1  # only sa2 was looked up


def test_a_registry_change_of_this_process_applies_to_the_next_check(
        session: Session, registry: dict[str, int]) -> None:
    grants = WriteGrants()
    check: dict[str, Any] = {"user_id": "op@a.test", "is_platform_admin": False,
                             "sensor_ids": ["sa1", "sa2"]}
    assert grants.writable_sensor_ids(session, **check).keys() == {"sa1", "sa2"}
    session.execute(update(Asset).where(col(Asset.sensor_id) == "sa2")
                    .values(sensor_id="moved"))
    session.commit()
    assert grants.writable_sensor_ids(session, **check).keys() == {"sa1"}
    session.execute(update(Member).where(col(Member.user_id) == "op@a.test")
                    .values(role="consumer"))
    session.commit()
    assert grants.writable_sensor_ids(session, **check) == {}


def test_a_change_made_elsewhere_applies_once_the_grants_are_old(
        session: Session, registry: dict[str, int]) -> None:
    clock = Clock()
    grants = WriteGrants(max_age_s=2.0, clock=clock)
    check: dict[str, Any] = {"user_id": "op@a.test", "is_platform_admin": False,
                             "sensor_ids": ["sa1"]}
    assert grants.writable_sensor_ids(session, **check).keys() == {"sa1"}
    # Another process (a CLI import) demotes the operator: this process sees no write.
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    cursor.execute("UPDATE member SET role = 'consumer' WHERE user_id = 'op@a.test'")
    cursor.close()
    raw.commit()
    session.rollback()
    clock.now += 1.0
    assert grants.writable_sensor_ids(session, **check).keys() == {"sa1"}  # within max_age
    clock.now += 1.5
    assert grants.writable_sensor_ids(session, **check) == {}


def test_readings_are_written_only_through_an_active_members_holding(
        session: Session, registry: dict[str, int]) -> None:
    """A sensor of a suspended or pending member takes no readings, not even from the
    community's operator or a platform admin; the active holding is the way in."""
    grants = WriteGrants()
    check: dict[str, Any] = {"user_id": "op@a.test", "is_platform_admin": False,
                             "sensor_ids": ["sa1", "sa2"]}
    admin: dict[str, Any] = {"user_id": "root@x.test", "is_platform_admin": True,
                             "sensor_ids": ["sb1"]}
    session.execute(update(Member).where(col(Member.user_id) == "op@b.test")
                    .values(status="suspended"))
    session.commit()
    assert grants.writable_sensor_ids(session, **admin) == {}
    session.execute(update(Member).where(col(Member.user_id) == "op@b.test")
                    .values(status="active"))
    session.commit()
    assert grants.writable_sensor_ids(session, **admin) == {"sb1": registry["b"]}
    assert grants.writable_sensor_ids(session, **check) == {"sa1": registry["a"],
                                                            "sa2": registry["a"]}
