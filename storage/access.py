"""Who holds what: a user's memberships, and the communities a user administers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.models import Community, Member

COMMUNITY_ADMIN_ROLES = ("operator", "admin")


def memberships(session: Session, *, user_id: str) -> Sequence[tuple[Member, Community]]:
    """Every member record linked to this user id, with its community, oldest first."""
    return session.exec(
        select(Member, Community)
        .join(Community, col(Community.id) == col(Member.community_id))
        .where(Member.user_id == user_id)
        .order_by(col(Member.id))
    ).all()


def administered_community_ids(session: Session, *, user_id: str) -> set[int]:
    """Communities in which this user is an active operator or admin."""
    return set(session.exec(
        select(Member.community_id).where(
            Member.user_id == user_id,
            Member.status == "active",
            col(Member.role).in_(COMMUNITY_ADMIN_ROLES),
        )
    ).all())


def community_by_key(session: Session, *, key: str, visible_ids: set[int] | None) -> Community:
    """The community with this key, if the caller may see it (visible_ids None: all)."""
    community = session.exec(select(Community).where(Community.key == key)).first()
    if community is None or (visible_ids is not None and community.id not in visible_ids):
        raise NotFound(f"no community {key!r}", code="community_not_found")
    return community


def community_keys_by_ids(session: Session, *, ids: set[int]) -> set[str]:
    """The keys of these communities."""
    if not ids:
        return set()
    return set(session.exec(select(Community.key).where(col(Community.id).in_(ids))).all())


def require_visible_keys(keys: list[str], *, visible_keys: set[str]) -> None:
    """NotFound for the first key the caller may not see (exactly as for a missing one)."""
    for key in keys:
        if key not in visible_keys:
            raise NotFound(f"no community {key!r}", code="community_not_found")


def active_member_areas(session: Session, *, community_id: int) -> Sequence[tuple[str, str]]:
    """(member key, area) of the community's active members."""
    return session.exec(
        select(Member.key, Member.area)
        .where(Member.community_id == community_id, Member.status == "active")
        .order_by(col(Member.key))
    ).all()
