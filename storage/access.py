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
