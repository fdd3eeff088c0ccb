"""Authorization: which communities a caller administers, and the caller's own membership."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.problems import Problem
from handlers.security import Caller
from storage import access
from storage.models import Community, Member


def admin_scope(session: Session, caller: Caller, *, write: bool = False) -> set[int] | None:
    """Community ids the caller administers (None: all); 403 when it administers none.

    Platform admins write everywhere; overseers read everywhere and write nowhere; members
    whose role is operator or admin administer their own community.
    """
    if caller.is_platform_admin:
        return None
    if caller.role == "overseer":
        if write:
            raise Problem(403, "read_only", "overseers may read every community but change none")
        return None
    administered = access.administered_community_ids(session, user_id=caller.email)
    if not administered:
        raise Problem(403, "not_an_administrator",
                      "this operation is for platform admins and community operators")
    return administered


def admin_community(
    session: Session, caller: Caller, community_key: str, *, write: bool = False
) -> Community:
    """The community the caller administers; 404 for one it does not (as for a missing key)."""
    visible = admin_scope(session, caller, write=write)
    return access.community_by_key(session, key=community_key, visible_ids=visible)


def own_membership(
    session: Session, caller: Caller, community_key: str | None
) -> tuple[Member, Community]:
    """The caller's active membership (picked by community key when it has several)."""
    active = [(member, community)
              for member, community in access.memberships(session, user_id=caller.email)
              if member.status == "active"]
    if community_key is not None:
        active = [pair for pair in active if pair[1].key == community_key]
    if not active:
        raise Problem(403, "not_a_member",
                      "the caller is not an active member of "
                      + (f"community {community_key!r}" if community_key else "any community"))
    if len(active) > 1:
        keys = sorted(community.key for _, community in active)
        raise Problem(409, "ambiguous_member",
                      "the caller is an active member of several communities; "
                      "choose one with the community parameter",
                      extra={"community_keys": keys})
    return active[0]


def caller_of(token_info: dict[str, Any]) -> Caller:
    """The caller of a request, from Connexion's token_info."""
    return Caller.from_token_info(token_info)
