"""The MQTT door's registry side: broker hashes of ingest keys, who may use the broker, and
the refused messages kept for operators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.models import MqttRefusal, SensorIngestKey
from storage.sensors import sensor_holders

# A username Mosquitto's password file, ACL patterns and topic levels all take as it is.
UNUSABLE_IN_BROKER = frozenset(":/+#\n\r\0 ")


def usable_in_broker(sensor_id: str) -> bool:
    """Whether a sensor id can be an MQTT username and one topic level."""
    return bool(sensor_id) and not (set(sensor_id) & UNUSABLE_IN_BROKER)


@dataclass(frozen=True)
class BrokerAccount:
    """A device the broker lets in: its sensor id (the username) and its key's hash."""

    sensor_id: str
    community_id: int
    password_hash: str | None


def broker_accounts(session: Session, *, sensor_id: str | None = None,
                    hashed_only: bool = True) -> list[BrokerAccount]:
    """One account per sensor (or for this sensor only) whose ingest key has a broker hash
    (or any key, `hashed_only` off) and whose key's community has an active member carrying
    the sensor (the HTTP push's rule), by sensor id. A sensor with keys in several such
    communities gets its newest key's."""
    query = select(SensorIngestKey)
    if hashed_only:
        query = query.where(col(SensorIngestKey.broker_hash).is_not(None))
    if sensor_id is not None:
        query = query.where(SensorIngestKey.sensor_id == sensor_id)
    keys = session.exec(query.order_by(col(SensorIngestKey.created_at).desc(),
                                       col(SensorIngestKey.id).desc())).all()
    holders = sensor_holders(session, sensor_ids={key.sensor_id for key in keys})
    active = {(holder.sensor_id, holder.community_id) for holder in holders
              if holder.member_status == "active"}
    accounts: dict[str, BrokerAccount] = {}
    for key in keys:
        if (key.sensor_id in accounts or (key.sensor_id, key.community_id) not in active
                or not usable_in_broker(key.sensor_id)):
            continue
        accounts[key.sensor_id] = BrokerAccount(key.sensor_id, key.community_id,
                                                key.broker_hash)
    return [accounts[sensor_id] for sensor_id in sorted(accounts)]


def device_account(session: Session, *, sensor_id: str) -> BrokerAccount | None:
    """The account whose community a message published as this sensor is written to (any
    key: an HTTP-auth broker checks keys made before broker hashes); None: no device may
    publish as this sensor."""
    accounts = broker_accounts(session, sensor_id=sensor_id, hashed_only=False)
    return accounts[0] if accounts else None


def record_refusal(session: Session, *, sensor_id: str, community_id: int | None, code: str,
                   detail: str, errors: list[dict[str, Any]], keep: int) -> MqttRefusal:
    """Keep a refused message's reason (with the community its key writes to, if any); only
    the newest `keep` of the sensor stay."""
    refusal = MqttRefusal(sensor_id=sensor_id[:256], community_id=community_id,
                          code=code[:64], detail=detail[:500], errors=errors[:100])
    session.add(refusal)
    session.flush()
    kept = select(MqttRefusal.id).where(MqttRefusal.sensor_id == refusal.sensor_id).order_by(
        col(MqttRefusal.id).desc()).limit(keep)
    session.execute(delete(MqttRefusal).where(col(MqttRefusal.sensor_id) == refusal.sensor_id,
                                              col(MqttRefusal.id).not_in(kept)))
    return refusal


def sensor_refusals(session: Session, *, sensor_id: str,
                    community_id: int | None = None) -> list[MqttRefusal]:
    """The refusals kept for a sensor, newest first; with a community, those of its key
    and those of no community (the sensor had no usable key), not another community's."""
    query = select(MqttRefusal).where(MqttRefusal.sensor_id == sensor_id)
    if community_id is not None:
        query = query.where(or_(col(MqttRefusal.community_id) == community_id,
                                col(MqttRefusal.community_id).is_(None)))
    return list(session.exec(query.order_by(col(MqttRefusal.id).desc())).all())


def community_sensor_refusals(session: Session, *, community_id: int,
                              sensor_id: str) -> list[MqttRefusal]:
    """The refusals kept for a sensor the community holds (NotFound when it holds none)."""
    if not sensor_holders(session, sensor_ids=[sensor_id], community_id=community_id):
        raise NotFound(f"no sensor {sensor_id!r} in this community", code="sensor_not_found")
    return sensor_refusals(session, sensor_id=sensor_id, community_id=community_id)
