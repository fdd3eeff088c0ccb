"""Sensor holders remembered between registry changes: the same answers as the registry,
read once while it is unchanged, never stale after a change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from storage.holders import HolderCache
from storage.models import Asset
from storage.sensors import sensor_holders
from tests.storage.recording import Clock, queries_run


def test_holders_are_those_the_registry_gives(session: Session,
                                              registry: dict[str, int]) -> None:
    cache = HolderCache()
    asked = ["sb1", "sa1", "nowhere", "sa1"]
    assert cache.of_sensors(session, sensor_ids=asked) == sensor_holders(session,
                                                                         sensor_ids=asked)
    assert [holder.sensor_id for holder in cache.of_sensors(session, sensor_ids=asked)] == [
        "sa1", "sb1"]
    assert cache.of_community(session, community_id=registry["a"]) == sensor_holders(
        session, community_id=registry["a"])


def test_holders_are_read_once_while_the_registry_is_unchanged(
        session: Session, registry: dict[str, int]) -> None:
    cache = HolderCache()
    cache.of_sensors(session, sensor_ids=["sa1", "nowhere"])
    cache.of_community(session, community_id=registry["b"])
    statements = queries_run(session)
    assert [holder.sensor_id for holder in cache.of_sensors(
        session, sensor_ids=["sa1", "nowhere"])] == ["sa1"]
    assert [holder.sensor_id for holder in cache.of_community(
        session, community_id=registry["b"])] == ["sb1"]
    assert statements == []
    cache.of_sensors(session, sensor_ids=["sa1", "sa2"])
    assert statements  # sa2 was looked up


def test_a_registry_change_applies_at_once_here_and_within_max_age_elsewhere(
        session: Session, registry: dict[str, int]) -> None:
    clock = Clock()
    cache = HolderCache(max_age_s=2.0, clock=clock)
    community: dict[str, Any] = {"community_id": registry["a"]}
    assert [holder.sensor_id for holder in cache.of_community(session, **community)] == [
        "sa1", "sa2"]
    session.execute(update(Asset).where(col(Asset.sensor_id) == "sa2")
                    .values(sensor_id="moved"))
    session.commit()  # this process: the next answer has it
    assert [holder.sensor_id for holder in cache.of_community(session, **community)] == [
        "moved", "sa1"]
    assert cache.of_sensors(session, sensor_ids=["sa2"]) == []

    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()  # another process (a CLI import) moves the sensor back
    cursor.execute("UPDATE asset SET sensor_id = 'sa2' WHERE sensor_id = 'moved'")
    cursor.close()
    raw.commit()
    session.rollback()
    clock.now += 1.0
    assert cache.of_sensors(session, sensor_ids=["sa2"]) == []  # still within max_age
    clock.now += 1.5
    assert [holder.sensor_id for holder in cache.of_sensors(session, sensor_ids=["sa2"])] == [
        "sa2"]
