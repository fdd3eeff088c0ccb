"""Delivery points: a community's list, one by identifier, a member's writes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers import present
from handlers.access import admin_community, caller_of
from handlers.problems import refused_value
from handlers.runtime import current_runtime
from storage import delivery_points, members
from storage.models import Community


async def list_delivery_points(
    community_key: str, token_info: dict[str, Any], type: str | None = None,
    active: bool | None = None, limit: int | None = None, cursor: str | None = None,
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = delivery_points.list_delivery_points(
            session, community_id=community.id, type=type, active=active, limit=limit,
            cursor=cursor)
        return {"items": [present.delivery_point(row, owner, community.key)
                          for row, owner in page.items],
                "next_cursor": page.next_cursor}


async def get_delivery_point_by_id(
    community_key: str, dp_id: str, token_info: dict[str, Any]
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        row, owner = delivery_points.get_delivery_point(
            session, community_id=community.id, dp_id=dp_id)
        return {"delivery_point": present.delivery_point(row, owner, community.key),
                "member": present.member(owner, community.key)}


async def upsert_member_delivery_point(
    community_key: str, member_key: str, point_id: str, body: dict[str, Any],
    token_info: dict[str, Any], replaces: str | None = None,
) -> dict[str, Any]:
    if body["id"] != point_id:
        raise refused_value("key_mismatch", "the body's id differs from the path's point id")
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        delivery_points.put_delivery_point(
            session, community_id=community.id, dp_id=point_id, member_key=member_key,
            type=body["type"], description=body.get("description"),
            address=body.get("address"), tariff=body.get("tariff"),
            active=body.get("active", True), extra=body.get("extra"), replaces=replaces)
        return member_points(session, community, member_key)


async def remove_member_delivery_point(
    community_key: str, member_key: str, point_id: str, token_info: dict[str, Any]
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        delivery_points.delete_delivery_point(session, community_id=community.id,
                                              member_key=member_key, dp_id=point_id)
        return member_points(session, community, member_key)


def member_points(session: Session, community: Community, member_key: str) -> dict[str, Any]:
    """A member's delivery points (DeliveryPointsResponse)."""
    assert community.id is not None
    member = members.get_member(session, community_id=community.id, key=member_key)
    assert member.id is not None
    return {"delivery_points": [present.delivery_point(point, member, community.key)
                                for point in members.delivery_points_of(session,
                                                                        member_id=member.id)]}
