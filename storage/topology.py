"""A community's topology nodes: create or replace one, delete one nothing refers to."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from storage.communities import lock_community
from storage.errors import Conflict, Invalid, NotFound
from storage.exportable import AREA_EXTRA_DEPTH, require_storable
from storage.models import Area, Community, TopologyNode, utc_now
from storage.positions import next_position

PRIMARY_SUBSTATION = "primary_substation"
MAX_NODE_ID_LENGTH = 64


def put_topology_node(
    session: Session, *, community: Community, node_id: str, type: str, name: str | None,
    parent: str | None, operator_id: str | None, extra: dict[str, Any],
) -> TopologyNode:
    """Create or replace one node, keeping the others; an area's substation stays one."""
    assert community.id is not None
    if not node_id or len(node_id) > MAX_NODE_ID_LENGTH:
        raise Invalid(f"a node id has 1 to {MAX_NODE_ID_LENGTH} characters", code="invalid_key")
    require_storable(extra, what="extra", depth=AREA_EXTRA_DEPTH)
    lock_community(session, community_id=community.id)
    if parent is not None and parent != node_id and _find(session, community.id, parent) is None:
        raise Invalid(f"the parent {parent!r} is no node of the topology", code="unknown_parent")
    if type != PRIMARY_SUBSTATION and _areas_on(session, community.id, node_id):
        raise Invalid(f"node {node_id!r} is an area's primary substation; its type stays",
                      code="invalid_area_boundary")
    node = _find(session, community.id, node_id)
    if node is None:
        node = TopologyNode(community_id=community.id, node_id=node_id, type=type,
                            position=next_position(session, TopologyNode,
                                                   community_id=community.id))
    node.type, node.name, node.parent, node.operator_id = type, name, parent, operator_id
    node.extra = dict(extra)
    community.updated_at = utc_now()
    session.add(node)
    session.add(community)
    session.flush()
    return node


def delete_topology_node(session: Session, *, community: Community, node_id: str) -> None:
    """Delete a node no area lists and no node names as its parent."""
    assert community.id is not None
    lock_community(session, community_id=community.id)
    node = _find(session, community.id, node_id)
    if node is None:
        raise NotFound(f"no topology node {node_id!r} in this community",
                       code="topology_node_not_found")
    areas = _areas_on(session, community.id, node_id)
    children = sorted(session.exec(
        select(TopologyNode.node_id).where(TopologyNode.community_id == community.id,
                                           TopologyNode.parent == node_id)).all())
    if areas or children:
        named = [f"area(s) {', '.join(areas)}"] if areas else []
        named += [f"child node(s) {', '.join(children)}"] if children else []
        raise Conflict(f"node {node_id!r} is still referred to by {'; '.join(named)}",
                       code="topology_node_in_use")
    session.delete(node)
    community.updated_at = utc_now()
    session.add(community)
    session.flush()


def _find(session: Session, community_id: int, node_id: str) -> TopologyNode | None:
    return session.exec(
        select(TopologyNode).where(TopologyNode.community_id == community_id,
                                   TopologyNode.node_id == node_id)
    ).first()


def _areas_on(session: Session, community_id: int, node_id: str) -> list[str]:
    rows = session.exec(select(Area.key, Area.topology)
                        .where(Area.community_id == community_id).order_by(col(Area.key)))
    return [key for key, topology in rows if node_id in (topology or [])]
