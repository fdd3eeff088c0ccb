"""Members of a community: list, create, read, change, deactivate or purge, and their points."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers import present
from handlers.access import admin_community, caller_of
from handlers.runtime import Runtime, current_runtime, in_thread
from handlers.security import Caller
from storage import members
from storage.models import Member
from storage.telemetry.deletion import delete_readings


def member_detail(session: Session, member: Member, community_key: str) -> dict[str, Any]:
    """The MemberDetail of a member (shared with GET /user/member)."""
    parts = members.member_parts(session, member=member)
    return present.member_detail(member, community_key, parts.delivery_points,
                                 parts.asset_counts)


def _list_members(runtime: Runtime, caller: Caller, community_key: str, role: str | None,
                  status: str | None, area: str | None, limit: int | None,
                  cursor: str | None) -> dict[str, Any]:
    with runtime.session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        page = members.list_members(session, community_id=community.id, role=role,
                                    status=status, area=area, limit=limit, cursor=cursor)
        return {"items": [present.member(row, community.key) for row in page.items],
                "next_cursor": page.next_cursor}


async def list_members(community_key: str, token_info: dict[str, Any], role: str | None = None,
                       status: str | None = None, area: str | None = None,
                       limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    runtime = current_runtime()
    arguments = (runtime, caller_of(token_info), community_key, role, status, area, limit,
                 cursor)
    if runtime.engine.dialect.name == "sqlite":
        # SQLite answers in process, and its sessions queue on one lock (BEGIN IMMEDIATE):
        # a thread would only add GIL and lock contention (tests.benchmarks.registry, 8
        # clients: 78-100 pages/s here, 48 in a thread).
        return _list_members(*arguments)
    # PostgreSQL answers over the network: a thread lets the event loop serve other requests
    # while a page of up to 500 rows travels (same benchmark: 35 pages/s here, 67 in a thread).
    return await in_thread(_list_members, *arguments)


async def create_member(community_key: str, body: dict[str, Any],
                        token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        assert community.id is not None
        member = members.create_member(
            session, community_id=community.id, key=body["key"], user_id=body["user_id"],
            name=body["name"], type=body.get("type"), role=body["role"], area=body["area"],
            status=body.get("status", "pending"), did=body.get("did"),
            extra=body.get("extra", {}))
        return member_detail(session, member, community.key), 201


async def get_member(community_key: str, member_key: str,
                     token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        member = members.get_member(session, community_id=community.id, key=member_key)
        return member_detail(session, member, community.key)


async def update_member(community_key: str, member_key: str, body: dict[str, Any],
                        token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        assert community.id is not None
        member = members.update_member(session, community_id=community.id, key=member_key,
                                       changes=body)
        return member_detail(session, member, community.key)


async def delete_member(community_key: str, member_key: str, token_info: dict[str, Any],
                        purge: bool = False) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        assert community.id is not None
        community_id = community.id
        done = members.delete_member(session, community_id=community_id, key=member_key,
                                     purge=purge)
    erased = done.pop("erased_sensor_ids")
    # A purged member's meters' readings are erased with it (the asset is gone: nobody
    # could read them again), after the registry has committed the erasure.
    for sensor_id in erased:
        await in_thread(delete_readings, current_runtime().telemetry,
                        community_id=community_id, sensor_id=sensor_id, channel=None)
    return {"community_key": community_key, "member_key": member_key, **done}


async def set_member_status(community_key: str, member_key: str, body: dict[str, Any],
                            token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key, write=True)
        assert community.id is not None
        member = members.set_member_status(session, community_id=community.id, key=member_key,
                                           status=body["status"])
        return member_detail(session, member, community.key)


async def get_member_by_user_id(community_key: str, user_id: str,
                                token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        member = members.get_member_by_user_id(session, community_id=community.id,
                                               user_id=user_id)
        return member_detail(session, member, community.key)


async def list_member_delivery_points(community_key: str, member_key: str,
                                      token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        member = members.get_member(session, community_id=community.id, key=member_key)
        assert member.id is not None
        points = members.delivery_points_of(session, member_id=member.id)
        return {"delivery_points": [present.delivery_point(point, member, community.key)
                                    for point in points]}


def _write_fields(community_key: str, member_key: str, changes: dict[str, Any],
                  token_info: dict[str, Any]) -> dict[str, Any]:
    """Change some fields of a member and answer its MemberDetail."""
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        member = members.update_member(session, community_id=community.id, key=member_key,
                                       changes=changes)
        return member_detail(session, member, community.key)


async def put_member_name(community_key: str, member_key: str, body: dict[str, Any],
                          token_info: dict[str, Any]) -> dict[str, Any]:
    return _write_fields(community_key, member_key, {"name": body["name"]}, token_info)


async def put_member_role(community_key: str, member_key: str, body: dict[str, Any],
                          token_info: dict[str, Any]) -> dict[str, Any]:
    return _write_fields(community_key, member_key, {"role": body["role"]}, token_info)


async def put_member_area(community_key: str, member_key: str, body: dict[str, Any],
                          token_info: dict[str, Any]) -> dict[str, Any]:
    return _write_fields(community_key, member_key, {"area": body["area"]}, token_info)


async def patch_member_profile(community_key: str, member_key: str, body: dict[str, Any],
                               token_info: dict[str, Any]) -> dict[str, Any]:
    return _write_fields(community_key, member_key, body, token_info)
