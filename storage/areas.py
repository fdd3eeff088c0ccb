"""Areas of a community: read, create or replace (with the boundary invariants), delete."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from storage.communities import lock_community
from storage.errors import Conflict, Invalid, NotFound
from storage.exportable import AREA_EXTRA_DEPTH, require_key, require_storable
from storage.graph import BUNDLE_SHAPE_KEY
from storage.models import Area, Community, Member, TopologyNode, utc_now
from storage.positions import next_position

PRIMARY_SUBSTATION = "primary_substation"
# Properties an area names itself, and the bundle layer's own key: `extra` may not carry them,
# or an export would clash or drop them.
RESERVED_EXTRA_KEYS = frozenset({"name", "boundary", "topology", BUNDLE_SHAPE_KEY})


def get_area(session: Session, *, community_id: int, key: str) -> Area:
    """The area with this key in the community."""
    area = session.exec(
        select(Area).where(Area.community_id == community_id, Area.key == key)
    ).first()
    if area is None:
        raise NotFound(f"no area {key!r} in this community", code="area_not_found")
    return area


def _check_area(
    session: Session, *, community_id: int, key: str, boundary_id: str, topology: list[str],
    extra: dict[str, Any],
) -> None:
    """Invalid or Conflict when the area would break a registry invariant."""
    if topology != [boundary_id]:
        raise Invalid(f"the topology of an area must be exactly [{boundary_id!r}], its boundary id",
                      code="invalid_area_boundary")
    node_type = session.exec(
        select(TopologyNode.type).where(TopologyNode.community_id == community_id,
                                        TopologyNode.node_id == boundary_id)
    ).first()
    if node_type != PRIMARY_SUBSTATION:
        raise Invalid(f"boundary id {boundary_id!r} names no primary_substation node of the "
                      "community's topology", code="invalid_area_boundary")
    require_storable(extra, what="extra", depth=AREA_EXTRA_DEPTH)
    clashing = RESERVED_EXTRA_KEYS.intersection(extra)
    if clashing:
        raise Invalid("extra may not carry the area's own properties: "
                      + ", ".join(sorted(clashing)), code="reserved_extra_key")
    other = session.exec(
        select(Area.key).where(Area.community_id == community_id,
                               Area.boundary_id == boundary_id, Area.key != key)
    ).first()
    if other is not None:
        raise Invalid(f"area {other!r} of this community has boundary id {boundary_id!r} already",
                      code="invalid_area_boundary")


def put_area(
    session: Session, *, community: Community, key: str, name: str, boundary_source: str,
    boundary_id: str, topology: list[str], extra: dict[str, Any],
) -> tuple[Area, bool]:
    """Create or replace the area `key` of the community; True when it was created."""
    assert community.id is not None
    require_key(key, what="area")
    lock_community(session, community_id=community.id)
    _check_area(session, community_id=community.id, key=key, boundary_id=boundary_id,
                topology=topology, extra=extra)
    area = session.exec(
        select(Area).where(Area.community_id == community.id, Area.key == key)
    ).first()
    created = area is None
    if area is None:
        area = Area(community_id=community.id, key=key, name=name, boundary_source=boundary_source,
                    boundary_id=boundary_id, topology=[],
                    position=next_position(session, Area, community_id=community.id))
    area.name = name
    area.boundary_source = boundary_source
    area.boundary_id = boundary_id
    area.topology = list(topology)
    area.extra = dict(extra)
    community.updated_at = utc_now()
    session.add(area)
    session.add(community)
    session.flush()
    return area, created


def delete_area(session: Session, *, community: Community, key: str) -> None:
    """Delete an area no member is in."""
    assert community.id is not None
    lock_community(session, community_id=community.id)
    area = get_area(session, community_id=community.id, key=key)
    in_use = session.exec(
        select(Member.key).where(Member.community_id == community.id, Member.area == key)
    ).first()
    if in_use is not None:
        raise Conflict(f"member {in_use!r} is in area {key!r}; move or remove its members first",
                       code="area_in_use")
    session.delete(area)
    community.updated_at = utc_now()
    session.add(community)
    session.flush()


def rename_area(session: Session, *, community: Community, key: str, new_key: str) -> int:
    """Move area `key` to `new_key` with every member in it, in one write; how many moved."""
    assert community.id is not None
    require_key(new_key, what="area")
    lock_community(session, community_id=community.id)
    area = get_area(session, community_id=community.id, key=key)
    if new_key != key and session.exec(
        select(Area.id).where(Area.community_id == community.id, Area.key == new_key)
    ).first() is not None:
        raise Conflict(f"area {new_key!r} exists already", code="area_key_taken")
    moving = list(session.exec(
        select(Member).where(Member.community_id == community.id, Member.area == key)
    ).all())
    for member in moving:
        member.area = new_key
        member.updated_at = utc_now()
        session.add(member)
    area.key = new_key
    community.updated_at = utc_now()
    session.add(area)
    session.add(community)
    session.flush()
    return len(moving)
