"""Fixtures of the storage tests: a small committed registry."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from storage.models import Asset, Community, Member


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
