"""Delivery points of a community: listing, lookup, create or replace, rename, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.claims import held_delivery_points, lock_claims
from storage.communities import lock_community
from storage.errors import Conflict, Invalid, NotFound
from storage.exportable import (
    DELIVERY_POINT_EXTRA_DEPTH,
    require_storable,
    require_unreserved,
)
from storage.members import member_for_write
from storage.models import Asset, DeliveryPoint, Member
from storage.pagination import Page, paginate
from storage.positions import next_position

# The bundle format's limits: every delivery point written here exports and imports back.
MAX_DP_ID_LENGTH = 128
PROPERTIES = ("id", "type", "description", "address", "tariff", "active")


def list_delivery_points(
    session: Session,
    *,
    community_id: int,
    type: str | None,
    active: bool | None,
    limit: int | None,
    cursor: str | None,
) -> Page[tuple[DeliveryPoint, Member]]:
    """Delivery points of the community with their member, in bundle order."""
    statement = (
        select(DeliveryPoint, Member)
        .join(Member, col(Member.id) == col(DeliveryPoint.member_id))
        .where(DeliveryPoint.community_id == community_id)
    )
    if type is not None:
        statement = statement.where(DeliveryPoint.type == type)
    if active is not None:
        statement = statement.where(DeliveryPoint.active == active)
    return paginate(session, statement, col(DeliveryPoint.id), limit=limit,
                    cursor=cursor, key_of=lambda row: row[0].id)


def get_delivery_point(
    session: Session, *, community_id: int, dp_id: str
) -> tuple[DeliveryPoint, Member]:
    """The delivery point with this identifier in the community, and its member."""
    row = session.exec(
        select(DeliveryPoint, Member)
        .join(Member, col(Member.id) == col(DeliveryPoint.member_id))
        .where(DeliveryPoint.community_id == community_id, DeliveryPoint.dp_id == dp_id)
    ).first()
    if row is None:
        raise NotFound(f"no delivery point {dp_id!r} in this community",
                       code="delivery_point_not_found")
    return row[0], row[1]


def _find(session: Session, community_id: int, dp_id: str) -> DeliveryPoint | None:
    return session.exec(
        select(DeliveryPoint).where(DeliveryPoint.community_id == community_id,
                                    DeliveryPoint.dp_id == dp_id)
    ).first()


def _require_not_held_elsewhere(session: Session, community_id: int, dp_id: str) -> None:
    if held_delivery_points(session, dp_ids=[dp_id], excluding_community_ids={community_id}):
        raise Conflict(f"delivery point {dp_id!r} is not available",
                       code="delivery_point_held")


def _meters_on(session: Session, community_id: int, dp_id: str) -> list[Asset]:
    return list(session.exec(
        select(Asset).where(Asset.community_id == community_id, Asset.pod == dp_id)
        .order_by(col(Asset.id))
    ).all())


def put_delivery_point(
    session: Session,
    *,
    community_id: int,
    dp_id: str,
    member_key: str,
    type: str,
    description: str | None,
    address: str | None,
    tariff: str | None,
    active: bool,
    extra: dict[str, Any] | None,
    replaces: str | None,
) -> tuple[DeliveryPoint, bool]:
    """Create or replace the member's delivery point `dp_id`; True when it was created.

    A point another member of the community holds is refused (delivery_point_held). With
    `replaces`, the member's delivery point `replaces` takes the identifier `dp_id`, and every
    meter of the community whose pod was `replaces` follows it.
    """
    if len(dp_id) > MAX_DP_ID_LENGTH:
        raise Invalid(f"a delivery point id has at most {MAX_DP_ID_LENGTH} characters",
                      code="invalid_delivery_point_id")
    require_unreserved(dp_id, what="delivery point")
    shadowing = sorted(set(extra or {}) & set(PROPERTIES))
    if shadowing:
        raise Invalid(f"extra may not carry the delivery point's own properties "
                      f"({', '.join(shadowing)})", code="invalid_extra")
    require_storable(extra or {}, what="extra", depth=DELIVERY_POINT_EXTRA_DEPTH)
    lock_claims(session)  # before the community's row: locks are taken in one order
    lock_community(session, community_id=community_id)
    member = member_for_write(session, community_id=community_id, key=member_key)
    assert member.id is not None
    values: dict[str, Any] = {"member_id": member.id, "type": type, "description": description,
                              "address": address, "tariff": tariff, "active": active,
                              "extra": dict(extra or {})}
    _require_not_held_elsewhere(session, community_id, dp_id)
    current = _find(session, community_id, dp_id)
    if current is not None and current.member_id != member.id:
        raise Conflict(f"delivery point {dp_id!r} is held by another member",
                       code="delivery_point_held")
    if replaces is not None and replaces != dp_id:
        previous = _find(session, community_id, replaces)
        if previous is None or previous.member_id != member.id:
            raise NotFound(f"no delivery point {replaces!r} in this community",
                           code="delivery_point_not_found")
        if current is not None:
            raise Conflict(f"delivery point {dp_id!r} exists already; delete it first or "
                           "choose another identifier", code="delivery_point_exists")
        meters = _meters_on(session, community_id, replaces)
        _require_meters_follow(meters, member, replaces)
        previous.dp_id = dp_id
        for meter in meters:
            meter.pod = dp_id
            meter.properties = {**meter.properties, "pod": dp_id}
            session.add(meter)
        return _apply(session, previous, values), False
    if current is None:
        created = DeliveryPoint(community_id=community_id, dp_id=dp_id,
                                position=next_position(session, DeliveryPoint,
                                                       community_id=community_id), **values)
        return _apply(session, created, values), True
    return _apply(session, current, values), False


def _require_meters_follow(meters: list[Asset], member: Member, dp_id: str) -> None:
    """A meter may only name a delivery point of its own member: refuse moving one away."""
    others = sorted({meter.key for meter in meters if meter.member_id != member.id})
    if others:
        raise Conflict(f"delivery point {dp_id!r} is measured by meters of another member "
                       f"({', '.join(others)}); it cannot move to member {member.key!r}",
                       code="delivery_point_in_use")


def _apply(session: Session, row: DeliveryPoint, values: dict[str, Any]) -> DeliveryPoint:
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"delivery point {row.dp_id!r} was written concurrently; retry",
                       code="delivery_point_exists") from None
    return row


def delete_delivery_point(
    session: Session, *, community_id: int, member_key: str, dp_id: str
) -> Member:
    """Delete a delivery point of the member that no meter of the community refers to."""
    lock_community(session, community_id=community_id)
    member = member_for_write(session, community_id=community_id, key=member_key)
    row = _find(session, community_id, dp_id)
    if row is None or row.member_id != member.id:
        raise NotFound(f"member {member_key!r} has no delivery point {dp_id!r}",
                       code="delivery_point_not_found")
    meters = _meters_on(session, community_id, dp_id)
    if meters:
        raise Conflict(f"delivery point {dp_id!r} is the pod of meter(s) "
                       f"{', '.join(meter.key for meter in meters[:10])}",
                       code="delivery_point_linked")
    session.delete(row)
    session.flush()
    return member
