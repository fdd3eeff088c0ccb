"""Communities: the listing, a community's detail parts, and its metadata patch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.errors import Invalid
from storage.exportable import require_storable
from storage.models import Area, Community, Member, TopologyNode, utc_now
from storage.pagination import Page, paginate


@dataclass(frozen=True)
class CommunityParts:
    """What a community's detail shows besides the community row itself."""

    areas: list[Area]
    topology: list[TopologyNode]
    member_count: int


def list_communities(
    session: Session, *, visible_ids: set[int] | None, key: str | None,
    limit: int | None, cursor: str | None,
) -> Page[Community]:
    """Communities in creation order, only those in visible_ids (None: all), by key if given."""
    statement = select(Community)
    if visible_ids is not None:
        statement = statement.where(col(Community.id).in_(sorted(visible_ids)))
    if key is not None:
        statement = statement.where(Community.key == key)
    return paginate(session, statement, col(Community.id), limit=limit,
                    cursor=cursor, key_of=lambda row: row.id)


def lock_community(session: Session, *, community_id: int) -> None:
    """Serialise writes to one community's areas and members until the transaction ends.

    PostgreSQL takes a row lock; SQLite's BEGIN IMMEDIATE serialises every writer anyway.
    """
    session.exec(select(Community.id).where(Community.id == community_id).with_for_update()).first()


def areas_of(session: Session, *, community_id: int) -> list[Area]:
    """The community's areas in bundle order."""
    return list(session.exec(
        select(Area).where(Area.community_id == community_id)
        .order_by(col(Area.position), col(Area.id))
    ).all())


def topology_of(session: Session, *, community_id: int) -> list[TopologyNode]:
    """The community's topology nodes in bundle order."""
    return list(session.exec(
        select(TopologyNode).where(TopologyNode.community_id == community_id)
        .order_by(col(TopologyNode.position), col(TopologyNode.id))
    ).all())


def member_count(session: Session, *, community_id: int) -> int:
    """How many members the community has, whatever their status."""
    return int(session.exec(
        select(func.count()).select_from(Member).where(Member.community_id == community_id)
    ).one())


def community_parts(session: Session, *, community_id: int) -> CommunityParts:
    """Areas, topology and member count of a community, in three queries."""
    return CommunityParts(areas=areas_of(session, community_id=community_id),
                          topology=topology_of(session, community_id=community_id),
                          member_count=member_count(session, community_id=community_id))


COMMUNITY_PATCH_DEPTH = 2  # document > community (the patch merges into the community)
PATCHABLE = ("name", "description", "legal", "links", "contact", "settings", "extra")


def update_community(session: Session, *, community: Community,
                     changes: dict[str, Any]) -> Community:
    """Change the community's metadata named in `changes` (None clears an optional object)."""
    assert community.id is not None
    unknown = sorted(set(changes) - set(PATCHABLE))
    if unknown:
        raise Invalid(f"not a community property: {', '.join(unknown)}", code="unknown_property")
    if changes.get("name", "") is None:
        raise Invalid("a community's name cannot be null", code="not_nullable")
    require_storable(changes, what="community", depth=COMMUNITY_PATCH_DEPTH)
    lock_community(session, community_id=community.id)
    for name, value in changes.items():
        setattr(community, name, value if value is not None or name != "extra" else {})
    community.updated_at = utc_now()
    session.add(community)
    session.flush()
    return community
