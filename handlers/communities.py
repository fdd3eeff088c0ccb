"""Communities for operators and admins: listing, detail, metadata patch, topology writes."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers import present
from handlers.access import admin_community, admin_scope, caller_of
from handlers.problems import refused_value
from handlers.runtime import current_runtime
from storage import communities, topology
from storage.models import Community


def community_detail(session: Session, community: Community) -> dict[str, Any]:
    """The CommunityDetail of a community (shared with GET /user/community)."""
    assert community.id is not None
    parts = communities.community_parts(session, community_id=community.id)
    return present.community_detail(community, parts.areas, parts.topology, parts.member_count)


async def list_communities(token_info: dict[str, Any], key: str | None = None,
                           limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        visible = admin_scope(session, caller)
        page = communities.list_communities(session, visible_ids=visible, key=key, limit=limit,
                                            cursor=cursor)
        return {"items": [present.community_summary(row) for row in page.items],
                "next_cursor": page.next_cursor}


async def get_community(community_key: str, token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        return community_detail(session, community)


async def get_topology(community_key: str, token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        community = admin_community(session, caller, community_key)
        assert community.id is not None
        nodes = communities.topology_of(session, community_id=community.id)
        return {"community_key": community.key,
                "topology": [present.topology_node(node) for node in nodes]}


async def patch_community(community_key: str, body: dict[str, Any],
                          token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        communities.update_community(session, community=community, changes=body)
        return community_detail(session, community)


async def upsert_topology_node(community_key: str, node_id: str, body: dict[str, Any],
                               token_info: dict[str, Any]) -> dict[str, Any]:
    if body["id"] != node_id:
        raise refused_value("key_mismatch", "the body's id differs from the path's node id")
    known = {"id", "type", "name", "parent", "operator_id", "area"}
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        topology.put_topology_node(
            session, community=community, node_id=node_id, type=body["type"],
            name=body.get("name"), parent=body.get("parent"),
            operator_id=body.get("operator_id"),
            extra={key: value for key, value in body.items() if key not in known})
        return community_detail(session, community)


async def delete_topology_node(community_key: str, node_id: str,
                               token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        topology.delete_topology_node(session, community=community, node_id=node_id)
        return community_detail(session, community)
