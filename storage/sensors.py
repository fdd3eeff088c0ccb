"""Sensors in the registry: which meters carry them, for whom, and their ingest keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

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
    # Only the columns needed: whole rows would decode every asset's JSON properties.
    query = (sa_select(col(Asset.sensor_id), col(Asset.key), col(Asset.meter_type),
                       col(Member.key), col(Member.user_id), col(Member.status),
                       col(Member.area), col(Community.id), col(Community.key),
                       col(Community.settings))
             .join(Member, col(Member.id) == col(Asset.member_id))
             .join(Community, col(Community.id) == col(Asset.community_id))
             .where(col(Asset.sensor_id).is_not(None)))
    if community_id is not None:
        query = query.where(col(Asset.community_id) == community_id)
    batches: list[list[str] | None] = [None]
    if sensor_ids is not None:
        ordered = sorted(set(sensor_ids))
        batches = [ordered[start:start + CHUNK] for start in range(0, len(ordered), CHUNK)]
    holders = []
    for batch in batches:
        chunk_query = query if batch is None else query.where(col(Asset.sensor_id).in_(batch))
        for (sensor_id, asset_key, meter_type, member_key, user_id, status, area, community_id,
             community_key, settings) in session.execute(chunk_query).all():
            timezone = (settings or {}).get("timezone")
            holders.append(SensorHolder(
                sensor_id=sensor_id, community_id=community_id or 0,
                community_key=community_key,
                timezone=timezone if isinstance(timezone, str) else None,
                asset_key=asset_key, meter_type=meter_type, member_key=member_key,
                member_user_id=user_id, member_status=status, area=area))
    holders.sort(key=lambda holder: (holder.sensor_id, holder.community_key))
    return holders


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


def ingest_key_matches(session: Session, *, sensor_id: str, plaintext: str) -> bool:
    """Whether the key is the sensor's, held by an active member (constant-time compare)."""
    if len(plaintext) > 256:
        return False
    offered = hash_ingest_key(plaintext)
    stored = session.exec(select(SensorIngestKey).where(
        SensorIngestKey.sensor_id == sensor_id)).all()
    matched = [key for key in stored if hmac.compare_digest(key.key_hash, offered)]
    if not matched:
        return False
    holders = sensor_holders(session, sensor_ids=[sensor_id])
    return any(holder.community_id == key.community_id and holder.member_status == "active"
               for key in matched for holder in holders)
