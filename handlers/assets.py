"""Assets and meters: a community's lists, one by key or sensor id, a member's writes."""

from __future__ import annotations

from typing import Any

from bundles.assets import validate_asset_properties
from handlers import present
from handlers.access import admin_community, caller_of
from handlers.problems import Problem, refused_value
from handlers.runtime import current_runtime
from storage import assets, members


async def list_assets(
    community_key: str, token_info: dict[str, Any], asset_type: str | None = None,
    owner: str | None = None, limit: int | None = None, cursor: str | None = None,
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = assets.list_assets(session, community_id=community.id, asset_type=asset_type,
                                  owner=owner, limit=limit, cursor=cursor)
        return {"items": [present.asset(row, owner, community) for row, owner in page.items],
                "next_cursor": page.next_cursor}


async def get_asset(community_key: str, asset_key: str,
                    token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        row, owner = assets.get_asset(session, community_id=community.id, key=asset_key)
        return present.asset(row, owner, community)


async def get_asset_by_sensor_id(community_key: str, sensor_id: str,
                                 token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        row, owner = assets.get_asset_by_sensor_id(
            session, community_id=community.id, sensor_id=sensor_id)
        return present.asset(row, owner, community)


async def upsert_member_asset(community_key: str, member_key: str, asset_key: str,
                              body: dict[str, Any], token_info: dict[str, Any]) -> dict[str, Any]:
    asset_type, properties = body["asset_type"], body.get("properties", {})
    if body["key"] != asset_key:
        raise refused_value("key_mismatch", "the body's key differs from the path's asset key")
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        problems = validate_asset_properties(asset_type, properties)
        if problems:
            raise Problem(422, "invalid_asset_properties",
                          f"the properties do not match the bundle format's {asset_type} asset: "
                          f"{len(problems)} problem(s)", extra={"errors": problems})
        row, _ = assets.put_asset(
            session, community_id=community.id, key=asset_key, member_key=member_key,
            asset_type=asset_type, properties=properties)
        owner = members.get_member(session, community_id=community.id, key=member_key)
        return present.asset(row, owner, community)


async def delete_member_asset(community_key: str, member_key: str, asset_key: str,
                              token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        assets.delete_asset(session, community_id=community.id, member_key=member_key,
                            key=asset_key)
    return None, 204


async def list_meters(
    community_key: str, token_info: dict[str, Any], owner: str | None = None,
    limit: int | None = None, cursor: str | None = None,
) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = assets.list_meters(session, community_id=community.id, owner=owner, limit=limit,
                                  cursor=cursor)
        return {"items": [present.meter(row, owner, pod_type)
                          for row, owner, pod_type in page.items],
                "next_cursor": page.next_cursor}
