"""Cross-community lookups: all communities for platform staff, their own for operators."""

from __future__ import annotations

from typing import Any

from handlers import present
from handlers.access import admin_scope, caller_of
from handlers.runtime import current_runtime
from storage import lookup


async def lookup_community_by_user_id(user_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        community = lookup.community_by_user_id(session, user_id=user_id, visible_ids=visible)
        return present.community_ref(community)


async def lookup_community_by_sensor_id(sensor_id: str,
                                        token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        community = lookup.community_by_sensor_id(session, sensor_id=sensor_id,
                                                  visible_ids=visible)
        return present.community_ref(community)


async def lookup_community_by_delivery_point(dp_id: str,
                                             token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        community = lookup.community_by_delivery_point(session, dp_id=dp_id, visible_ids=visible)
        return present.community_ref(community)


async def lookup_member_by_user_id(user_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        member, community_key = lookup.member_by_user_id(session, user_id=user_id,
                                                         visible_ids=visible)
        return present.member(member, community_key)


async def lookup_asset_by_sensor_id(sensor_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        asset, member_key, community_key = lookup.asset_by_sensor_id(
            session, sensor_id=sensor_id, visible_ids=visible)
        return present.asset(asset, member_key, community_key)


async def lookup_assets_by_sensor_ids(body: list[str],
                                      token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        found = lookup.assets_by_sensor_ids(session, sensor_ids=body, visible_ids=visible)
        return {"items": [present.asset(asset, member_key, community_key)
                          for asset, member_key, community_key in found]}
