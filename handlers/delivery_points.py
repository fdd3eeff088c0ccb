"""Delivery points of a community: list, look up by identifier, create or replace, delete."""

from __future__ import annotations

from typing import Any

from handlers import present
from handlers.access import admin_community, caller_of
from handlers.runtime import current_runtime
from storage import delivery_points


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
        return {"items": [present.delivery_point(row, member_key, community.key)
                          for row, member_key in page.items],
                "next_cursor": page.next_cursor}


async def get_delivery_point(
    community_key: str, dp_id: str, token_info: dict[str, Any]
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        row, member_key = delivery_points.get_delivery_point(
            session, community_id=community.id, dp_id=dp_id)
        return present.delivery_point(row, member_key, community.key)


async def put_delivery_point(
    community_key: str, dp_id: str, body: dict[str, Any], token_info: dict[str, Any],
    replaces: str | None = None,
) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        row, created = delivery_points.put_delivery_point(
            session, community_id=community.id, dp_id=dp_id, member_key=body["member_key"],
            type=body["type"], description=body.get("description"),
            address=body.get("address"), tariff=body.get("tariff"),
            active=body.get("active", True), extra=body.get("extra"), replaces=replaces)
        return (present.delivery_point(row, body["member_key"], community.key),
                201 if created else 200)


async def delete_delivery_point(
    community_key: str, dp_id: str, token_info: dict[str, Any]
) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        delivery_points.delete_delivery_point(session, community_id=community.id, dp_id=dp_id)
    return None, 204
