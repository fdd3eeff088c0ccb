"""Authorization: which communities a caller administers, and the caller's own membership."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.problems import Problem
from handlers.security import Caller
from storage import access
from storage.errors import NotFound
from storage.grants import WriteGrants
from storage.holders import HolderCache
from storage.models import Community, Member
from storage.sensors import SensorHolder

ACTIVE = "active"


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


def _readable_holdings(session: Session, caller: Caller,
                       holders: list[SensorHolder]) -> list[SensorHolder]:
    """The holdings through which the caller reads a sensor: any for platform admins and
    overseers, those of the communities it administers (whatever the member's status), and
    its own assets while its membership is active."""
    if caller.is_platform_admin or caller.role == "overseer":
        return holders
    administered = access.administered_community_ids(session, user_id=caller.email)
    return [holder for holder in holders if holder.community_id in administered
            or (holder.member_user_id == caller.email and holder.member_status == ACTIVE)]


def readable_sensors(session: Session, caller: Caller, sensor_ids: list[str], *,
                     holders: HolderCache) -> dict[str, SensorHolder]:
    """The holding each sensor is read through (its `community_id` says whose series):
    platform admins and overseers read every sensor, operators those held in their
    community, members those of their own assets while their membership is active.
    NotFound for any other sensor, exactly as for a missing one. Should a registry from
    before one-community-per-sensor give several, an active member's holding comes first,
    then the lowest community id."""
    visible: dict[str, SensorHolder] = {}
    readable = _readable_holdings(session, caller,
                                  holders.of_sensors(session, sensor_ids=sensor_ids))
    for holder in sorted(readable, key=lambda holder: (holder.member_status != ACTIVE,
                                                       holder.community_id)):
        visible.setdefault(holder.sensor_id, holder)
    for sensor_id in sensor_ids:
        if sensor_id not in visible:
            raise NotFound(f"no sensor {sensor_id!r}", code="sensor_not_found")
    return visible


def series_of(holders: dict[str, SensorHolder]) -> dict[str, int]:
    """Each sensor id with the community whose series the holding reaches."""
    return {sensor_id: holder.community_id for sensor_id, holder in holders.items()}


def writable_sensors(session: Session, caller: Caller, sensor_ids: list[str], *,
                     grants: WriteGrants) -> dict[str, int]:
    """Those sensors the caller may write readings of, each with the community whose series
    is written: only through an asset of an active member, of a community the caller
    administers (any community for platform admins), from the grants remembered since the
    registry last changed."""
    return grants.writable_sensor_ids(session, user_id=caller.email,
                                      is_platform_admin=caller.is_platform_admin,
                                      sensor_ids=sensor_ids)


def deletable_sensor(session: Session, caller: Caller, sensor_id: str, *,
                     holders: HolderCache) -> SensorHolder:
    """The holding whose series the caller may delete readings of: one in a community the
    caller administers (any for platform admins), whatever the member's status, an active
    member's first. NotFound for any other sensor, exactly as for a missing one."""
    found = holders.of_sensors(session, sensor_ids=[sensor_id])
    if not caller.is_platform_admin:
        administered = access.administered_community_ids(session, user_id=caller.email)
        found = [holder for holder in found if holder.community_id in administered]
    if not found:
        raise NotFound(f"no sensor {sensor_id!r}", code="sensor_not_found")
    return min(found, key=lambda holder: (holder.member_status != ACTIVE, holder.community_id))


def require_writer(session: Session, caller: Caller) -> None:
    """403 for callers who may write no readings at all (overseers, plain members)."""
    admin_scope(session, caller, write=True)
