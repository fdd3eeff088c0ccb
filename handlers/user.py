"""Self-service for members: the caller's own profile, member record, community and holdings."""

from __future__ import annotations

from typing import Any

from handlers import present
from handlers.access import caller_of, own_membership
from handlers.communities import community_detail
from handlers.members import member_detail
from handlers.problems import Problem
from handlers.runtime import current_runtime
from storage import members, users


async def get_user_profile(token_info: dict[str, Any],
                           community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        user = users.get_user(session, user_id=caller.user_id)
        answer: dict[str, Any] = {
            "profile": {"sub": user.email, "email": user.email, "name": None,
                        "preferred_username": user.email},
            "membership": None, "user": present.account(user)}
        try:
            member, held = own_membership(session, caller, community)
        except Problem as refusal:
            if refusal.code != "not_a_member":
                raise
            return answer
        assert member.id is not None
        answer["membership"] = {
            "member": present.member(member, held.key),
            "community": present.community_summary(held),
            "assets_count": members.asset_counts(session, member_id=member.id),
            "delivery_points_count": len(members.delivery_points_of(session,
                                                                     member_id=member.id))}
        return answer


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
        member, held = own_membership(session, caller, community)
        return {**community_detail(session, held), "your_area": member.area,
                "your_role": member.role}


async def list_user_assets(token_info: dict[str, Any], community: str | None = None,
                           asset_type: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        rows = members.assets_of(session, member_id=member.id, asset_type=asset_type)
        return {"items": [present.asset(row, member, held) for row in rows],
                "total": len(rows)}


async def get_user_asset(asset_key: str, token_info: dict[str, Any],
                         community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        row = members.asset_of(session, member_id=member.id, key=asset_key)
        return present.asset(row, member, held)


async def list_user_delivery_points(token_info: dict[str, Any],
                                    community: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        member, held = own_membership(session, caller, community)
        assert member.id is not None
        points = members.delivery_points_of(session, member_id=member.id)
        return {"items": [present.delivery_point(point, member, held.key) for point in points],
                "total": len(points)}
