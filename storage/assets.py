"""Assets and meters of a community: listing, lookup, create or replace, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.claims import held_sensors, lock_claims
from storage.communities import lock_community
from storage.errors import Conflict, Invalid, NotFound
from storage.exportable import (
    ASSET_PROPERTIES_DEPTH,
    require_key,
    require_sensor_id,
    require_storable,
)
from storage.members import member_for_write
from storage.models import Asset, DeliveryPoint, Member
from storage.pagination import Page, paginate
from storage.positions import next_position

METER = "meter"


def list_assets(
    session: Session,
    *,
    community_id: int,
    asset_type: str | None,
    owner: str | None,
    limit: int | None,
    cursor: str | None,
) -> Page[tuple[Asset, Member]]:
    """Assets of the community with their member, in bundle order."""
    statement = (
        select(Asset, Member)
        .join(Member, col(Member.id) == col(Asset.member_id))
        .where(Asset.community_id == community_id)
    )
    if asset_type is not None:
        statement = statement.where(Asset.asset_type == asset_type)
    if owner is not None:
        statement = statement.where(Member.key == owner)
    return paginate(session, statement, col(Asset.id), limit=limit,
                    cursor=cursor, key_of=lambda row: row[0].id)


def list_meters(
    session: Session, *, community_id: int, owner: str | None, limit: int | None,
    cursor: str | None,
) -> Page[tuple[Asset, Member, str | None]]:
    """Meters of the community, each with its member and its delivery point's type."""
    statement = (
        select(Asset, Member, DeliveryPoint.type)
        .join(Member, col(Member.id) == col(Asset.member_id))
        .outerjoin(DeliveryPoint, and_(col(DeliveryPoint.community_id) == col(Asset.community_id),
                                       col(DeliveryPoint.dp_id) == col(Asset.pod)))
        .where(Asset.community_id == community_id, Asset.asset_type == METER)
    )
    if owner is not None:
        statement = statement.where(Member.key == owner)
    return paginate(session, statement, col(Asset.id), limit=limit,
                    cursor=cursor, key_of=lambda row: row[0].id)


def get_asset(session: Session, *, community_id: int, key: str) -> tuple[Asset, Member]:
    """The asset with this key in the community, and its member (one indexed query)."""
    row = session.exec(
        select(Asset, Member)
        .join(Member, col(Member.id) == col(Asset.member_id))
        .where(Asset.community_id == community_id, Asset.key == key)
    ).first()
    if row is None:
        raise NotFound(f"no asset {key!r} in this community", code="asset_not_found")
    return row[0], row[1]


def get_asset_by_sensor_id(
    session: Session, *, community_id: int, sensor_id: str
) -> tuple[Asset, Member]:
    """The asset of the community that carries this sensor id, and its member."""
    row = session.exec(
        select(Asset, Member)
        .join(Member, col(Member.id) == col(Asset.member_id))
        .where(Asset.community_id == community_id, Asset.sensor_id == sensor_id)
    ).first()
    if row is None:
        raise NotFound(f"no asset with sensor {sensor_id!r} in this community",
                       code="asset_not_found")
    return row[0], row[1]


def derived_columns(asset_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The columns an asset row derives from its properties (name, sensor, meter type, pod)."""
    def text(name: str) -> str | None:
        value = properties.get(name)
        return value if isinstance(value, str) else None

    is_meter = asset_type == METER
    return {"name": text("name") or "", "sensor_id": text("sensor_id"),
            "meter_type": text("meter_type") if is_meter else None,
            "pod": text("pod") if is_meter else None}


def _require_pod_of(session: Session, member: Member, pod: str) -> None:
    found = session.exec(
        select(DeliveryPoint.id).where(DeliveryPoint.community_id == member.community_id,
                                       DeliveryPoint.member_id == member.id,
                                       DeliveryPoint.dp_id == pod)
    ).first()
    if found is None:
        raise Invalid(f"{pod!r} is not a delivery point of member {member.key!r}",
                      code="unknown_pod")


def _require_sensor_free(
    session: Session, *, community_id: int, key: str, sensor_id: str
) -> None:
    same_community = session.exec(
        select(Asset.key).where(Asset.community_id == community_id,
                                Asset.sensor_id == sensor_id, Asset.key != key)
    ).first()
    if same_community is not None:
        raise Conflict(f"sensor {sensor_id!r} is carried by asset {same_community!r} already",
                       code="sensor_exists")
    if held_sensors(session, sensor_ids=[sensor_id], excluding_community_ids={community_id}):
        raise Conflict(f"sensor {sensor_id!r} is not available",
                       code="sensor_held")


def put_asset(
    session: Session,
    *,
    community_id: int,
    key: str,
    member_key: str,
    asset_type: str,
    properties: dict[str, Any],
) -> tuple[Asset, bool]:
    """Create or replace the member's asset `key` (its type may change); True when created.

    A key another member of the community holds is refused (asset_key_taken).

    The caller has checked `properties` against the bundle format; this checks the registry:
    the member exists, a meter's pod is a delivery point of that member, and the sensor id is
    neither on another asset of the community nor held by an active member elsewhere.
    """
    require_key(key, what="asset")
    require_storable(properties, what="properties", depth=ASSET_PROPERTIES_DEPTH)
    columns = derived_columns(asset_type, properties)
    if asset_type == METER and columns["sensor_id"] is None:
        raise Invalid("a meter needs a sensor_id", code="sensor_required")
    if columns["sensor_id"] is not None:
        require_sensor_id(columns["sensor_id"])
        lock_claims(session)  # before the community's row: locks are taken in one order
    lock_community(session, community_id=community_id)
    member = member_for_write(session, community_id=community_id, key=member_key)
    assert member.id is not None
    row = session.exec(
        select(Asset).where(Asset.community_id == community_id, Asset.key == key)
    ).first()
    if row is not None and row.member_id != member.id:
        raise Conflict(f"asset {key!r} belongs to another member of this community",
                       code="asset_key_taken")
    if columns["pod"] is not None:
        _require_pod_of(session, member, columns["pod"])
    if columns["sensor_id"] is not None:
        _require_sensor_free(session, community_id=community_id, key=key,
                             sensor_id=columns["sensor_id"])
    created = row is None
    if row is None:
        row = Asset(community_id=community_id, member_id=member.id, key=key,
                    asset_type=asset_type, name=columns["name"],
                    position=next_position(session, Asset, community_id=community_id))
    row.member_id = member.id
    row.asset_type = asset_type
    row.properties = dict(properties)
    for name, value in columns.items():
        setattr(row, name, value)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"asset {key!r} or its sensor was written concurrently; retry",
                       code="asset_conflict") from None
    return row, created


def delete_asset(session: Session, *, community_id: int, member_key: str, key: str) -> None:
    """Delete the member's asset with this key (a meter's sensor is free again)."""
    lock_community(session, community_id=community_id)
    member = member_for_write(session, community_id=community_id, key=member_key)
    row = session.exec(
        select(Asset).where(Asset.community_id == community_id, Asset.key == key)
    ).first()
    if row is None or row.member_id != member.id:
        raise NotFound(f"member {member_key!r} holds no asset {key!r}", code="asset_not_found")
    session.delete(row)
    session.flush()
