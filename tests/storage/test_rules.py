"""Threshold and silence rules: refusals, read-back, and evaluation over stored batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlmodel import Session, select

from storage import rules
from storage.errors import Invalid, NotFound
from storage.models import RuleEvent, WebhookOutbox
from storage.rules import RuleSpec
from storage.telemetry.ingest import ingest_table, table_from_json
from storage.telemetry.rule_evaluation import Evaluator, Readings, silent_sensors
from storage.telemetry.store import TelemetryStore

MINUTE = 60_000
T0 = 1_772_409_600_000  # 2026-03-02T00:00:00Z


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TelemetryStore]:
    telemetry = TelemetryStore(tmp_path / "telemetry.duckdb", memory_limit_mb=256)
    yield telemetry
    telemetry.close()


def _rule(session: Session, community_id: int, **asked: Any) -> rules.ThresholdRule:
    spec = RuleSpec(**{"name": "r", "channel": "power", "operator": "gt",
                       "threshold": 10.0, **asked})
    rule = rules.create_rule(session, community_id=community_id, spec=spec)
    session.commit()
    return rule


def _batch(rows: list[tuple[str, int, float]], channel: str = "power") -> pa.Table:
    """Readings (sensor, minute, value) as a staged table."""
    return table_from_json({"readings": [
        {"sensor_id": sensor, "channel": channel,
         "ts": f"2026-03-02T{minute // 60:02d}:{minute % 60:02d}:00Z", "value": value}
        for sensor, minute, value in rows]})


def _store_and_fire(session: Session, store: TelemetryStore, registry: dict[str, int],
                    rows: list[tuple[str, int, float]],
                    channel: str = "power") -> list[rules.Firing]:
    """Ingest a batch as the server does, then evaluate and record what fired."""
    communities = {sensor: registry["a" if sensor.startswith("sa") else "b"]
                   for sensor, _, _ in rows}
    table = _batch(rows, channel)
    ingest_table(store, table, authorize=lambda ids: {i: communities[i] for i in ids},
                 max_future_ms=0)
    book = rules.load_book(session)
    fired = Evaluator(store, book).firings(Readings.from_table(table, communities))
    rules.record_firings(session, firings=fired, book=book)
    session.commit()
    return fired


@pytest.mark.parametrize(("operator", "low", "high", "fired"), [
    ("gt", 10.0, None, [11.0, 12.0]),
    ("gte", 10.0, None, [10.0, 11.0, 12.0]),
    ("lt", 10.0, None, [8.0, 9.0]),
    ("lte", 10.0, None, [8.0, 9.0, 10.0]),
    ("eq", 10.0, None, [10.0]),
    ("between", 9.0, 11.0, [9.0, 10.0, 11.0]),
    ("not_between", 9.0, 11.0, [8.0, 12.0]),
])
def test_each_operator_with_its_edges(session: Session, store: TelemetryStore,
                                      registry: dict[str, int], operator: str, low: float,
                                      high: float | None, fired: list[float]) -> None:
    _rule(session, registry["a"], operator=operator, threshold=low, threshold_high=high)
    found = _store_and_fire(session, store, registry,
                            [("sa1", minute, value) for minute, value in
                             enumerate([8.0, 9.0, 10.0, 11.0, 12.0])])
    assert [firing.value for firing in found] == fired
    stored = session.exec(select(RuleEvent).order_by(RuleEvent.id)).all()  # type: ignore[arg-type]
    assert [event.value for event in stored] == fired


def test_only_a_middle_reading_crosses_and_fires_with_its_reading(
        session: Session, store: TelemetryStore, registry: dict[str, int]) -> None:
    rule = _rule(session, registry["a"], sensor_id="sa1")
    found = _store_and_fire(session, store, registry,
                            [("sa1", 0, 5.0), ("sa1", 1, 50.0), ("sa1", 2, 5.0),
                             ("sa2", 1, 99.0)])
    assert [(f.sensor_id, f.ts_ms, f.value) for f in found] == [("sa1", T0 + MINUTE, 50.0)]
    assert rule.id is not None
    page = rules.list_events(session, community_id=registry["a"], rule_id=rule.id, limit=None,
                             cursor=None)
    assert [(event.sensor_id, event.channel, event.value) for event in page.items] == [
        ("sa1", "power", 50.0)]
    outbox = session.exec(select(WebhookOutbox)).all()
    assert [event.event_type for event in outbox] == ["rule.triggered"]
    assert outbox[0].payload["reading"] == {"sensor_id": "sa1", "channel": "power",
                                            "ts": "2026-03-02T00:01:00.000Z", "value": 50.0}


def test_cooldown_holds_within_a_batch_and_across_batches(
        session: Session, store: TelemetryStore, registry: dict[str, int]) -> None:
    _rule(session, registry["a"], cooldown_seconds=300, actions=("log",))
    first = _store_and_fire(session, store, registry,
                            [("sa1", minute, 20.0) for minute in range(0, 12)])
    assert [(f.ts_ms - T0) // MINUTE for f in first] == [0, 5, 10]
    again = _store_and_fire(session, store, registry,
                            [("sa1", minute, 20.0) for minute in range(12, 16)])
    assert [(f.ts_ms - T0) // MINUTE for f in again] == [15]
    resent = _store_and_fire(session, store, registry, [("sa1", 10, 20.0)])
    assert resent == []  # a reading at or before the last firing never fires again
    assert session.exec(select(WebhookOutbox)).all() == []  # log only: no webhook event


def test_for_duration_counts_stored_readings_before_the_batch(
        session: Session, store: TelemetryStore, registry: dict[str, int]) -> None:
    _rule(session, registry["a"], for_seconds=180)
    early = _store_and_fire(session, store, registry,
                            [("sa1", 0, 5.0), ("sa1", 1, 20.0), ("sa1", 2, 20.0)])
    assert early == []
    later = _store_and_fire(session, store, registry,
                            [("sa1", 3, 20.0), ("sa1", 4, 20.0), ("sa1", 5, 3.0),
                             ("sa1", 6, 20.0)])
    assert [(f.ts_ms - T0) // MINUTE for f in later] == [4]


def test_rules_of_two_communities_never_cross(session: Session, store: TelemetryStore,
                                              registry: dict[str, int]) -> None:
    rule_a = _rule(session, registry["a"])
    rule_b = _rule(session, registry["b"], threshold=100.0)
    found = _store_and_fire(session, store, registry, [("sa1", 0, 50.0), ("sb1", 0, 50.0),
                                                       ("sb1", 1, 500.0)])
    assert sorted((f.rule.id, f.sensor_id) for f in found) == sorted(
        [(rule_a.id, "sa1"), (rule_b.id, "sb1")])
    assert rule_a.id is not None
    with pytest.raises(NotFound) as missing:
        rules.get_rule(session, community_id=registry["b"], rule_id=rule_a.id)
    assert missing.value.code == "rule_not_found"


def test_silence_fires_once_per_silence(session: Session, store: TelemetryStore,
                                        registry: dict[str, int]) -> None:
    _rule(session, registry["a"], kind="silence", operator=None, threshold=None,
          silence_seconds=600)
    _store_and_fire(session, store, registry, [("sa1", 0, 1.0), ("sa2", 8, 1.0)])
    sensors_of = {registry["a"]: ["sa1", "sa2"]}
    book = rules.load_book(session)
    now = T0 + 12 * MINUTE
    fired = silent_sensors(store, book, sensors_of=sensors_of, now_ms=now)
    assert [(f.sensor_id, f.ts_ms) for f in fired] == [("sa1", T0)]
    rules.record_firings(session, firings=fired, book=book)
    session.commit()
    assert silent_sensors(store, rules.load_book(session), sensors_of=sensors_of,
                          now_ms=now + MINUTE) == []
    outbox = session.exec(select(WebhookOutbox)).all()
    assert [event.event_type for event in outbox] == ["sensor.silent"]


@pytest.mark.parametrize(("asked", "code"), [
    ({"operator": "above"}, "invalid_operator"),
    ({"threshold": None}, "threshold_required"),
    ({"operator": "between", "threshold_high": None}, "threshold_high_required"),
    ({"operator": "between", "threshold": 5.0, "threshold_high": 1.0}, "inverted_range"),
    ({"operator": "gt", "threshold_high": 5.0}, "unexpected_threshold_high"),
    ({"threshold": float("nan")}, "invalid_threshold"),
    ({"kind": "silence", "operator": None, "threshold": None}, "silence_duration_required"),
    ({"kind": "silence", "silence_seconds": 60}, "silence_without_threshold"),
    ({"silence_seconds": 60}, "threshold_without_silence"),
    ({"channel": "pressure"}, "unknown_channel"),
    ({"sensor_id": "sb1"}, "unknown_sensor"),
    ({"actions": ("page",)}, "invalid_rule_action"),
    ({"kind": "magic"}, "invalid_rule_kind"),
])
def test_impossible_rules_are_refused_and_nothing_is_stored(
        session: Session, registry: dict[str, int], asked: dict[str, Any], code: str) -> None:
    with pytest.raises(Invalid) as refused:
        _rule(session, registry["a"], **asked)
    assert refused.value.code == code
    session.rollback()
    assert rules.list_rules(session, community_id=registry["a"], limit=None,
                            cursor=None).items == []


def test_replace_and_delete_read_back(session: Session, registry: dict[str, int]) -> None:
    rule = _rule(session, registry["a"], sensor_id="sa2")
    assert rule.id is not None
    rules.replace_rule(session, community_id=registry["a"], rule_id=rule.id,
                       spec=RuleSpec(name="low", channel="voltage", operator="lt",
                                     threshold=207.0, enabled=False))
    session.commit()
    read = rules.get_rule(session, community_id=registry["a"], rule_id=rule.id)
    assert (read.name, read.channel, read.operator, read.threshold, read.sensor_id,
            read.enabled) == ("low", "voltage", "lt", 207.0, None, False)
    assert not rules.load_book(session).watches_readings  # disabled
    rules.delete_rule(session, community_id=registry["a"], rule_id=rule.id)
    session.commit()
    with pytest.raises(NotFound):
        rules.get_rule(session, community_id=registry["a"], rule_id=rule.id)
