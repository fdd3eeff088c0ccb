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
        community, member = lookup.community_by_user_id(session, user_id=user_id,
                                                        visible_ids=visible)
        return {"community": present.community_ref(community),
                "member": present.member(member, community.key)}


async def lookup_community_by_sensor_id(sensor_id: str,
                                        token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        asset, member, community = lookup.community_by_sensor_id(
            session, sensor_id=sensor_id, visible_ids=visible)
        return {"community": present.community_ref(community),
                "member": present.member(member, community.key),
                "asset": present.asset(asset, member, community)}


async def lookup_community_by_delivery_point(dp_id: str,
                                             token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        community, member, point = lookup.community_by_delivery_point(
            session, dp_id=dp_id, visible_ids=visible)
        return {"community": present.community_ref(community),
                "member": present.member(member, community.key),
                "delivery_point": present.delivery_point(point, member, community.key)}


async def lookup_member_by_user_id(user_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        member, community = lookup.member_by_user_id(session, user_id=user_id,
                                                     visible_ids=visible)
        return present.global_member(member, community)


async def lookup_members_by_dids(body: dict[str, Any],
                                 token_info: dict[str, Any]) -> list[dict[str, Any]]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        found = lookup.members_by_dids(session, dids=body["dids"], visible_ids=visible)
        return [present.global_member(member, community) for member, community in found]


async def lookup_asset_by_sensor_id(sensor_id: str, token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        asset, member, community = lookup.asset_by_sensor_id(
            session, sensor_id=sensor_id, visible_ids=visible)
        return present.asset(asset, member, community)


async def lookup_assets_by_sensor_ids(body: dict[str, Any],
                                      token_info: dict[str, Any]) -> list[dict[str, Any]]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        found = lookup.assets_by_sensor_ids(session, sensor_ids=body["sensor_ids"],
                                            visible_ids=visible)
        return [present.asset(asset, member, community) for asset, member, community in found]


async def lookup_assets_by_user_ids(body: dict[str, Any],
                                    token_info: dict[str, Any]) -> list[dict[str, Any]]:
    with current_runtime().session() as session:
        visible = admin_scope(session, caller_of(token_info))
        found = lookup.assets_by_user_ids(session, user_ids=body["user_ids"],
                                          visible_ids=visible)
        return [present.asset(asset, member, community) for asset, member, community in found]
