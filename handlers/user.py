"""Self-service for members: the caller's own profile, member record, community and holdings."""

from __future__ import annotations

from typing import Any

from handlers import present
from handlers.access import caller_of, own_membership
from handlers.communities import community_detail
from handlers.members import member_detail
from handlers.runtime import current_runtime
from storage import members, users


async def get_user_profile(token_info: dict[str, Any],
                           community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        user = users.get_user(session, user_id=caller.user_id)
        return {"user": present.account(user), "member": present.member(member, held.key),
                "community": present.community_ref(held),
                "asset_counts": members.asset_counts(session, member_id=member.id)}


async def get_user_member(token_info: dict[str, Any],
                          community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        return member_detail(session, member, held.key)


async def get_user_community(token_info: dict[str, Any],
                             community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        _, held = own_membership(session, caller, community)
        return community_detail(session, held)


async def list_user_assets(token_info: dict[str, Any], community: str | None = None,
                           asset_type: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        rows = members.assets_of(session, member_id=member.id, asset_type=asset_type)
        return {"items": [present.asset(row, member.key, held.key) for row in rows]}


async def get_user_asset(asset_key: str, token_info: dict[str, Any],
                         community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        row = members.asset_of(session, member_id=member.id, key=asset_key)
        return present.asset(row, member.key, held.key)


async def list_user_delivery_points(token_info: dict[str, Any],
                                    community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        points = members.delivery_points_of(session, member_id=member.id)
        return {"items": [present.delivery_point(point, member.key, held.key)
                          for point in points]}
