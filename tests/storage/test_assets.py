"""Storage of assets: derived columns, positions, query counts, meters following their POD."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from storage import assets, delivery_points, lookup
from storage.errors import Conflict, Invalid, NotFound
from storage.models import Community, DeliveryPoint, Member


@pytest.fixture
def community(session: Session) -> Community:
    """Community a with members alice (POD IT-1) and bob (POD IT-2), committed."""
    row = Community(key="a", name="A")
    session.add(row)
    session.flush()
    assert row.id is not None
    for position, key in enumerate(("alice", "bob")):
        member = Member(community_id=row.id, key=key, user_id=f"{key}@a.test", name=key,
                        role="consumer", area="north", status="active", position=position)
        session.add(member)
        session.flush()
        assert member.id is not None
        session.add(DeliveryPoint(community_id=row.id, member_id=member.id,
                                  dp_id=f"IT-{position + 1}", type="pod", position=position))
    session.commit()
    return row


@contextmanager
def counted_statements(session: Session) -> Iterator[list[str]]:
    """The SQL queries the session's engine runs inside the block (transaction control aside)."""
    statements: list[str] = []
    engine = session.get_bind()

    def record(*args: Any) -> None:
        if not args[2].lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def meter(sensor_id: str, pod: str, **more: Any) -> dict[str, Any]:
    return {"name": f"Meter {sensor_id}", "sensor_id": sensor_id, "meter_type": "consumption",
            "pod": pod, **more}


def test_derived_columns() -> None:
    assert assets.derived_columns("meter", meter("s1", "IT-1")) == {
        "name": "Meter s1", "sensor_id": "s1", "meter_type": "consumption", "pod": "IT-1"}
    # Only meters name a delivery point and a meter type; any asset may carry a sensor.
    assert assets.derived_columns("pv", {"name": "Roof", "sensor_id": "pv-1", "pod": "IT-1",
                                         "meter_type": "production"}) == {
        "name": "Roof", "sensor_id": "pv-1", "meter_type": None, "pod": None}
    assert assets.derived_columns("load", {"name": "L", "sensor_id": 5})["sensor_id"] is None


def test_put_asset_creates_in_order_and_replaces(session: Session, community: Community) -> None:
    assert community.id is not None
    first, created = assets.put_asset(session, community_id=community.id, key="m1",
                                      member_key="alice", asset_type="meter",
                                      properties=meter("s1", "IT-1", protocol="mqtt"))
    second, _ = assets.put_asset(session, community_id=community.id, key="pv1",
                                 member_key="bob", asset_type="pv", properties={"name": "Roof"})
    assert created and second.position == first.position + 1
    replaced, created = assets.put_asset(session, community_id=community.id, key="m1",
                                         member_key="alice", asset_type="storage",
                                         properties={"name": "Battery", "capacity": 5})
    assert not created
    assert replaced.id == first.id
    assert (replaced.asset_type, replaced.name, replaced.sensor_id, replaced.pod,
            replaced.meter_type) == ("storage", "Battery", None, None, None)
    assert replaced.properties == {"name": "Battery", "capacity": 5}
    session.commit()
    row, owner = assets.get_asset(session, community_id=community.id, key="m1")
    assert (row.asset_type, owner.key) == ("storage", "alice")
    with pytest.raises(Conflict) as taken:
        assets.put_asset(session, community_id=community.id, key="m1", member_key="bob",
                         asset_type="pv", properties={"name": "Roof"})
    assert taken.value.code == "asset_key_taken"


def test_put_asset_registry_checks(session: Session, community: Community) -> None:
    assert community.id is not None
    assets.put_asset(session, community_id=community.id, key="m1", member_key="alice",
                     asset_type="meter", properties=meter("s1", "IT-1"))
    with pytest.raises(NotFound) as unknown_member:
        assets.put_asset(session, community_id=community.id, key="m2", member_key="zed",
                         asset_type="pv", properties={"name": "x"})
    assert unknown_member.value.code == "member_not_found"
    with pytest.raises(Invalid) as unknown_pod:
        assets.put_asset(session, community_id=community.id, key="m2", member_key="alice",
                         asset_type="meter", properties=meter("s2", "IT-2"))
    assert unknown_pod.value.code == "unknown_pod"
    with pytest.raises(Invalid) as no_sensor:
        assets.put_asset(session, community_id=community.id, key="m2", member_key="alice",
                         asset_type="meter", properties={"name": "x", "meter_type": "import"})
    assert no_sensor.value.code == "sensor_required"
    with pytest.raises(Conflict) as taken:
        assets.put_asset(session, community_id=community.id, key="pv", member_key="bob",
                         asset_type="pv", properties={"name": "x", "sensor_id": "s1"})
    assert taken.value.code == "sensor_exists"


def test_get_asset_is_one_query(session: Session, community: Community) -> None:
    assert community.id is not None
    assets.put_asset(session, community_id=community.id, key="m1", member_key="alice",
                     asset_type="meter", properties=meter("s1", "IT-1"))
    session.commit()
    with counted_statements(session) as statements:
        row, owner = assets.get_asset(session, community_id=community.id, key="m1")
    assert (row.key, owner.key) == ("m1", "alice")
    assert len(statements) == 1
    with pytest.raises(NotFound):
        assets.get_asset(session, community_id=community.id, key="nothing")


def test_list_meters_is_one_query_with_pod_types(session: Session,
                                                  community: Community) -> None:
    assert community.id is not None
    for index in range(5):
        assets.put_asset(session, community_id=community.id, key=f"m{index}",
                         member_key="alice", asset_type="meter",
                         properties=meter(f"s{index}", "IT-1"))
    assets.put_asset(session, community_id=community.id, key="pv", member_key="alice",
                     asset_type="pv", properties={"name": "Roof"})
    # A meter whose POD is not a registered delivery point (as an older registry may hold).
    orphan, _ = assets.put_asset(session, community_id=community.id, key="orphan",
                                 member_key="bob", asset_type="meter",
                                 properties=meter("s9", "IT-2"))
    orphan.pod = "IT-gone"
    session.add(orphan)
    session.commit()
    with counted_statements(session) as statements:
        page = assets.list_meters(session, community_id=community.id, owner=None, limit=None,
                                  cursor=None)
    assert len(statements) == 1
    assert [(row.key, owner.key, pod_type) for row, owner, pod_type in page.items] == [
        *[(f"m{index}", "alice", "pod") for index in range(5)], ("orphan", "bob", None)]


def test_meters_follow_a_renamed_delivery_point(session: Session, community: Community) -> None:
    assert community.id is not None
    assets.put_asset(session, community_id=community.id, key="m1", member_key="alice",
                     asset_type="meter", properties=meter("s1", "IT-1", protocol="dlms"))
    renamed, created = delivery_points.put_delivery_point(
        session, community_id=community.id, dp_id="IT-1-fixed", member_key="alice",
        type="pod", description=None, address=None, tariff=None, active=True, extra=None,
        replaces="IT-1")
    session.commit()
    assert (renamed.dp_id, created) == ("IT-1-fixed", False)
    row, _ = assets.get_asset(session, community_id=community.id, key="m1")
    assert row.pod == "IT-1-fixed"
    assert row.properties == meter("s1", "IT-1-fixed", protocol="dlms")


def test_assets_by_sensor_ids_chunks_its_in_lists(
    session: Session, community: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert community.id is not None
    for index in range(7):
        assets.put_asset(session, community_id=community.id, key=f"m{index}",
                         member_key="alice", asset_type="meter",
                         properties=meter(f"s{index}", "IT-1"))
    session.commit()
    monkeypatch.setattr(lookup, "IN_CHUNK", 3)
    wanted = ["s6", "s0", "nope", "s6", *[f"s{index}" for index in range(1, 6)]]
    with counted_statements(session) as statements:
        found = lookup.assets_by_sensor_ids(session, sensor_ids=wanted, visible_ids=None)
    assert [row.key for row, _, _ in found] == ["m6", "m0", "m1", "m2", "m3", "m4", "m5"]
    assert len(statements) == 3  # 8 distinct ids in IN lists of 3
    assert lookup.assets_by_sensor_ids(session, sensor_ids=wanted,
                                       visible_ids={community.id + 1}) == []
