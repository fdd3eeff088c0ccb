"""Sensors in the registry: which meters carry them, for whom, and their ingest keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.broker_hash import broker_hash
from storage.errors import NotFound
from storage.models import Asset, Community, Member, SensorIngestKey

INGEST_KEY_PREFIX = "cwi_"
CHUNK = 500


@dataclass(frozen=True)
class SensorHolder:
    """An asset carrying a sensor: its community, member and area."""

    sensor_id: str
    community_id: int
    community_key: str
    timezone: str | None
    asset_key: str
    meter_type: str | None
    member_key: str
    member_user_id: str
    member_status: str
    area: str


def sensor_holders(session: Session, *, sensor_ids: Collection[str] | None = None,
                   community_id: int | None = None) -> list[SensorHolder]:
    """The assets carrying these sensors (or every sensor of a community), by sensor id."""
    # Only the columns needed: whole rows would decode every asset's JSON properties, and
    # each community's settings are decoded once, not once per asset.
    query = (sa_select(col(Asset.sensor_id), col(Asset.key), col(Asset.meter_type),
                       col(Member.key), col(Member.user_id), col(Member.status),
                       col(Member.area), col(Asset.community_id))
             .join(Member, col(Member.id) == col(Asset.member_id))
             .where(col(Asset.sensor_id).is_not(None)))
    if community_id is not None:
        query = query.where(col(Asset.community_id) == community_id)
    rows: list[Any] = []
    for batch in _batches(sensor_ids):
        chunk_query = query if batch is None else query.where(col(Asset.sensor_id).in_(batch))
        rows.extend(session.execute(chunk_query).all())
    communities = _community_zones(session, {row[7] for row in rows})
    holders = [
        SensorHolder(sensor_id=sensor_id, community_id=holder_community,
                     community_key=communities[holder_community][0],
                     timezone=communities[holder_community][1], asset_key=asset_key,
                     meter_type=meter_type, member_key=member_key, member_user_id=user_id,
                     member_status=status, area=area)
        for (sensor_id, asset_key, meter_type, member_key, user_id, status, area,
             holder_community) in rows]
    holders.sort(key=lambda holder: (holder.sensor_id, holder.community_key))
    return holders


ACTIVE_SENSOR_COMMUNITIES = (
    sa_select(col(Asset.sensor_id), col(Asset.community_id)).distinct()
    .join(Member, col(Member.id) == col(Asset.member_id))
    .where(col(Asset.sensor_id).in_(bindparam("sensor_ids", expanding=True)),
           col(Member.status) == "active"))
SENSOR_COMMUNITIES_CHUNK = 5000


def active_sensor_communities(session: Session, *,
                              sensor_ids: Collection[str]) -> dict[str, set[int]]:
    """The communities where an asset of an active member carries each of these sensors
    (absent: none does), the only holdings readings are written through. Runs on every
    ingest batch: one prepared statement, rows read without the ORM."""
    found: dict[str, set[int]] = {}
    ordered = sorted(set(sensor_ids))
    connection = session.connection()
    for start in range(0, len(ordered), SENSOR_COMMUNITIES_CHUNK):
        chunk = ordered[start:start + SENSOR_COMMUNITIES_CHUNK]
        for sensor_id, community_id in connection.execute(
                ACTIVE_SENSOR_COMMUNITIES, {"sensor_ids": chunk}).all():
            found.setdefault(str(sensor_id), set()).add(int(community_id))
    return found


def _batches(sensor_ids: Collection[str] | None) -> list[list[str] | None]:
    if sensor_ids is None:
        return [None]
    ordered = sorted(set(sensor_ids))
    return [ordered[start:start + CHUNK] for start in range(0, len(ordered), CHUNK)]


def _community_zones(session: Session,
                     community_ids: set[int]) -> dict[int, tuple[str, str | None]]:
    """Key and timezone setting of each community."""
    if not community_ids:
        return {}
    rows = session.execute(sa_select(col(Community.id), col(Community.key),
                                     col(Community.settings))
                           .where(col(Community.id).in_(sorted(community_ids)))).all()
    zones = {}
    for community_id, key, settings in rows:
        timezone = (settings or {}).get("timezone")
        zones[community_id] = (key, timezone if isinstance(timezone, str) else None)
    return zones


def hash_ingest_key(plaintext: str) -> str:
    """The stored form of an ingest key."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def rotate_ingest_key(session: Session, *, community_id: int,
                      sensor_id: str) -> tuple[SensorIngestKey, str]:
    """A new ingest key for the sensor (replacing its previous one), and its plaintext."""
    if not sensor_holders(session, sensor_ids=[sensor_id], community_id=community_id):
        raise NotFound(f"no sensor {sensor_id!r} in this community", code="sensor_not_found")
    plaintext = INGEST_KEY_PREFIX + secrets.token_urlsafe(32)
    existing = session.exec(select(SensorIngestKey).where(
        SensorIngestKey.community_id == community_id,
        SensorIngestKey.sensor_id == sensor_id)).first()
    key = existing or SensorIngestKey(community_id=community_id, sensor_id=sensor_id,
                                      key_hash="", prefix="")
    key.key_hash = hash_ingest_key(plaintext)
    key.prefix = plaintext[:12]
    key.broker_hash = broker_hash(plaintext)
    session.add(key)
    session.flush()
    return key, plaintext


def delete_ingest_key(session: Session, *, community_id: int, sensor_id: str) -> None:
    """Revoke the sensor's ingest key; NotFound when it has none."""
    existing = session.exec(select(SensorIngestKey).where(
        SensorIngestKey.community_id == community_id,
        SensorIngestKey.sensor_id == sensor_id)).first()
    if existing is None:
        raise NotFound(f"sensor {sensor_id!r} has no ingest key", code="ingest_key_not_found")
    session.delete(existing)


def ingest_key_community(session: Session, *, sensor_id: str, plaintext: str) -> int | None:
    """The community whose series of the sensor the key writes: the key's, when the key is
    the sensor's (constant-time compare) and an active member of that community holds the
    sensor; None otherwise."""
    if len(plaintext) > 256:
        return None
    offered = hash_ingest_key(plaintext)
    stored = session.exec(select(SensorIngestKey).where(
        SensorIngestKey.sensor_id == sensor_id)).all()
    matched = [key for key in stored if hmac.compare_digest(key.key_hash, offered)]
    if not matched:
        return None
    holders = sensor_holders(session, sensor_ids=[sensor_id])
    for key in matched:
        if any(holder.community_id == key.community_id and holder.member_status == "active"
               for holder in holders):
            return key.community_id
    return None
