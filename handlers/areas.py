"""Areas of a community: read, create or replace, rename, delete."""

from __future__ import annotations

from typing import Any

from handlers import present
from handlers.access import admin_community, caller_of
from handlers.communities import community_detail
from handlers.runtime import current_runtime
from storage import areas


async def get_area(community_key: str, area_key: str, token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        return present.area(areas.get_area(session, community_id=community.id, key=area_key))


async def put_area(community_key: str, area_key: str, body: dict[str, Any],
                   token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        areas.put_area(
            session, community=community, key=area_key, name=body["name"],
            boundary_source=body["boundary"]["source"], boundary_id=body["boundary"]["id"],
            topology=body["topology"], extra=body.get("extra", {}))
        return community_detail(session, community)


async def delete_area(community_key: str, area_key: str,
                      token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        areas.delete_area(session, community=community, key=area_key)
        return community_detail(session, community)


async def rename_area(community_key: str, area_key: str, body: dict[str, Any],
                      token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        moved = areas.rename_area(session, community=community, key=area_key,
                                  new_key=body["new_key"])
        return {"old_key": area_key, "new_key": body["new_key"], "members_moved": moved,
                "community": community_detail(session, community)}
