"""Threshold and silence rules of a community, the events they fired, and the in-memory rule
book that ingest evaluates against without asking the registry per batch."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import event, func, insert
from sqlmodel import Session, col, select

from storage.errors import Invalid, NotFound
from storage.memo import MAX_AGE_S
from storage.models import Asset, RuleEvent, ThresholdRule, utc_now
from storage.pagination import Page, paginate
from storage.telemetry.channels import BY_NAME
from storage.webhooks import record_event

LOG = logging.getLogger("commonwatt.rules")
KINDS = ("threshold", "silence")
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "between", "not_between")
RANGE_OPERATORS = ("between", "not_between")
ACTIONS = ("event", "log")
RULE_TRIGGERED = "rule.triggered"
SENSOR_SILENT = "sensor.silent"


@dataclass(frozen=True)
class RuleSpec:
    """What a rule asks, as given by a create or a replace."""

    name: str
    kind: str = "threshold"
    sensor_id: str | None = None
    channel: str = "power"
    operator: str | None = None
    threshold: float | None = None
    threshold_high: float | None = None
    for_seconds: int = 0
    silence_seconds: int | None = None
    cooldown_seconds: int = 0
    enabled: bool = True
    actions: tuple[str, ...] = ("event",)


def _refuse(code: str, detail: str) -> Invalid:
    return Invalid(detail, code=code)


def check_spec(session: Session, *, community_id: int, spec: RuleSpec) -> None:
    """Invalid (with a precise code) for a rule that could never be evaluated as asked."""
    if spec.kind not in KINDS:
        raise _refuse("invalid_rule_kind", f"kind must be one of {', '.join(KINDS)}")
    if spec.channel not in BY_NAME:
        raise _refuse("unknown_channel", f"{spec.channel!r} is not a channel of the catalog")
    if not set(spec.actions) <= set(ACTIONS):
        raise _refuse("invalid_rule_action", f"actions are among {', '.join(ACTIONS)}")
    if spec.kind == "silence":
        if spec.silence_seconds is None or spec.silence_seconds < 1:
            raise _refuse("silence_duration_required",
                          "a silence rule needs silence_seconds (at least 1)")
        if spec.operator is not None or spec.threshold is not None \
                or spec.threshold_high is not None:
            raise _refuse("silence_without_threshold",
                          "a silence rule takes no operator nor threshold")
    else:
        _check_threshold(spec)
    if spec.sensor_id is not None:
        found = session.exec(select(Asset.id).where(
            Asset.community_id == community_id, Asset.sensor_id == spec.sensor_id)).first()
        if found is None:
            raise _refuse("unknown_sensor",
                          f"sensor {spec.sensor_id!r} is not carried by an asset of the "
                          "community")


def _check_threshold(spec: RuleSpec) -> None:
    if spec.operator not in OPERATORS:
        raise _refuse("invalid_operator", f"operator must be one of {', '.join(OPERATORS)}")
    if spec.silence_seconds is not None:
        raise _refuse("threshold_without_silence",
                      "silence_seconds belongs to silence rules only")
    for value in (spec.threshold, spec.threshold_high):
        if value is not None and not math.isfinite(value):
            raise _refuse("invalid_threshold", "thresholds must be finite numbers")
    if spec.threshold is None:
        raise _refuse("threshold_required", f"operator {spec.operator} needs a threshold")
    if spec.operator in RANGE_OPERATORS:
        if spec.threshold_high is None:
            raise _refuse("threshold_high_required",
                          f"operator {spec.operator} needs threshold and threshold_high")
        if spec.threshold_high < spec.threshold:
            raise _refuse("inverted_range",
                          "threshold_high must be at least threshold")
    elif spec.threshold_high is not None:
        raise _refuse("unexpected_threshold_high",
                      f"operator {spec.operator} takes one threshold, not threshold_high")


def _apply(rule: ThresholdRule, spec: RuleSpec) -> None:
    rule.name, rule.kind, rule.sensor_id, rule.channel = (
        spec.name, spec.kind, spec.sensor_id, spec.channel)
    rule.operator, rule.threshold, rule.threshold_high = (
        spec.operator, spec.threshold, spec.threshold_high)
    rule.for_seconds, rule.silence_seconds, rule.cooldown_seconds = (
        spec.for_seconds, spec.silence_seconds, spec.cooldown_seconds)
    rule.enabled, rule.actions = spec.enabled, sorted(set(spec.actions))


def create_rule(session: Session, *, community_id: int, spec: RuleSpec) -> ThresholdRule:
    """A new rule of the community; Invalid when it asks something impossible."""
    check_spec(session, community_id=community_id, spec=spec)
    rule = ThresholdRule(community_id=community_id, name=spec.name, channel=spec.channel)
    _apply(rule, spec)
    _changes_rules(session)
    session.add(rule)
    session.flush()
    return rule


def replace_rule(session: Session, *, community_id: int, rule_id: int,
                 spec: RuleSpec) -> ThresholdRule:
    """The rule with everything it asks replaced (its events are kept)."""
    rule = get_rule(session, community_id=community_id, rule_id=rule_id)
    check_spec(session, community_id=community_id, spec=spec)
    _apply(rule, spec)
    _changes_rules(session)
    rule.updated_at = utc_now()
    session.add(rule)
    session.flush()
    return rule


def list_rules(session: Session, *, community_id: int, limit: int | None,
               cursor: str | None) -> Page[ThresholdRule]:
    """The community's rules, oldest first."""
    statement = select(ThresholdRule).where(ThresholdRule.community_id == community_id)
    return paginate(session, statement, col(ThresholdRule.id), limit=limit, cursor=cursor,
                    key_of=lambda rule: rule.id)


def get_rule(session: Session, *, community_id: int, rule_id: int) -> ThresholdRule:
    """One of the community's rules; NotFound (rule_not_found) otherwise."""
    rule = session.get(ThresholdRule, rule_id)
    if rule is None or rule.community_id != community_id:
        raise NotFound(f"no rule {rule_id}", code="rule_not_found")
    return rule


def delete_rule(session: Session, *, community_id: int, rule_id: int) -> None:
    """Delete a rule and the events it fired."""
    rule = get_rule(session, community_id=community_id, rule_id=rule_id)
    session.execute(RuleEvent.__table__.delete().where(  # type: ignore[attr-defined]
        col(RuleEvent.rule_id) == rule_id))
    _changes_rules(session)
    session.delete(rule)


def list_events(session: Session, *, community_id: int, rule_id: int, limit: int | None,
                cursor: str | None) -> Page[RuleEvent]:
    """The events a rule fired, oldest first."""
    get_rule(session, community_id=community_id, rule_id=rule_id)
    statement = select(RuleEvent).where(RuleEvent.rule_id == rule_id)
    return paginate(session, statement, col(RuleEvent.id), limit=limit, cursor=cursor,
                    key_of=lambda event: event.id)


# -- the rule book ---------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveRule:
    """An enabled rule as evaluation needs it (no ORM object crosses threads)."""

    id: int
    community_id: int
    name: str
    kind: str
    sensor_id: str | None
    channel: str
    operator: str | None
    threshold: float | None
    threshold_high: float | None
    for_ms: int
    silence_ms: int
    cooldown_ms: int
    actions: tuple[str, ...]


@dataclass
class RuleBook:
    """The enabled rules, indexed by the series they watch, their thresholds as arrays (for
    evaluating a whole batch at once), and when each last fired."""

    version: int = -1
    # Threshold rules, by position; low, high and operator code (OPERATORS) per position.
    rules: list[ActiveRule] = field(default_factory=list)
    low: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    high: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    operator: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    by_series: dict[tuple[int, str, str], list[int]] = field(default_factory=dict)
    by_channel: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    silence: list[ActiveRule] = field(default_factory=list)
    # (rule id, sensor id) -> epoch ms of the reading that last fired it
    last_fired: dict[tuple[int, str], int] = field(default_factory=dict)
    _watching: dict[tuple[int, str, str], np.ndarray] = field(default_factory=dict)

    @property
    def watches_readings(self) -> bool:
        """Whether any threshold rule is enabled."""
        return bool(self.rules)

    def watching(self, community_id: int, sensor_id: str, channel: str) -> np.ndarray:
        """The positions of the rules watching one series (its own and community-wide)."""
        key = (community_id, sensor_id, channel)
        found = self._watching.get(key)
        if found is None:
            found = np.array(self.by_series.get(key, [])
                             + self.by_channel.get((community_id, channel), []), np.int64)
            if len(self._watching) < 100_000:
                self._watching[key] = found
        return found

    def may_hold(self, positions: np.ndarray, lowest: np.ndarray,
                 highest: np.ndarray) -> np.ndarray:
        """Whether some value within [lowest, highest] may meet the rule at the same index
        (never false where one does), all pairs at once."""
        low, high = self.low[positions], self.high[positions]
        outcomes = np.stack((highest > low, highest >= low, lowest < low, lowest <= low,
                             (lowest <= low) & (highest >= low),
                             (highest >= low) & (lowest <= high),
                             (lowest < low) | (highest > high)))
        return outcomes[self.operator[positions], np.arange(len(positions))]


def _active(rule: Any) -> ActiveRule:
    """A rule row (a plain row: no ORM object is built for a thousand rules)."""
    return ActiveRule(
        id=rule.id, community_id=rule.community_id, name=rule.name, kind=rule.kind,
        sensor_id=rule.sensor_id, channel=rule.channel, operator=rule.operator,
        threshold=rule.threshold, threshold_high=rule.threshold_high,
        for_ms=rule.for_seconds * 1000, silence_ms=(rule.silence_seconds or 0) * 1000,
        cooldown_ms=rule.cooldown_seconds * 1000, actions=tuple(rule.actions or ()))


def epoch_ms(instant: datetime) -> int:
    """An instant as UTC epoch milliseconds (a naive one is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return int(instant.timestamp() * 1000)


def load_book(session: Session) -> RuleBook:
    """Every enabled rule of every community, and the reading that last fired each."""
    book = RuleBook()
    table = ThresholdRule.__table__  # type: ignore[attr-defined]
    for rule in session.execute(table.select().where(table.c.enabled)
                                .order_by(table.c.id)).all():
        active = _active(rule)
        if active.kind == "silence":
            book.silence.append(active)
            continue
        position = len(book.rules)
        book.rules.append(active)
        if active.sensor_id is None:
            book.by_channel.setdefault((active.community_id, active.channel), []).append(
                position)
        else:
            book.by_series.setdefault(
                (active.community_id, active.sensor_id, active.channel), []).append(position)
    book.low = np.array([rule.threshold for rule in book.rules], np.float64)
    book.high = np.array([rule.threshold if rule.threshold_high is None
                          else rule.threshold_high for rule in book.rules], np.float64)
    book.operator = np.array([OPERATORS.index(str(rule.operator)) for rule in book.rules],
                             np.int8)
    for rule_id, sensor_id, last in session.exec(
            select(RuleEvent.rule_id, RuleEvent.sensor_id, func.max(RuleEvent.reading_ts))
            .group_by(col(RuleEvent.rule_id), col(RuleEvent.sensor_id))).all():
        book.last_fired[(int(rule_id), str(sensor_id))] = epoch_ms(last)
    return book


class _Generation:
    """How many transactions that changed a rule have committed in this process."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def bump(self, _session: Session) -> None:
        with self.lock:
            self.count += 1


_generation = _Generation()


def _changes_rules(session: Session) -> None:
    """Have the rule books read again once this session's transaction commits."""
    event.listen(session, "after_commit", _generation.bump, once=True)


def fingerprint(session: Session) -> tuple[Any, ...]:
    """What changes whenever a rule is added, changed or deleted (a cascade included)."""
    row = session.exec(select(func.count(), func.max(ThresholdRule.id),
                              func.max(ThresholdRule.updated_at))).one()
    return tuple(row)


class RuleCache:
    """The rule book, read again when a rule change of this process committed, or once it
    is `max_age_s` old (a change of another process, a deleted community): recording
    firings does not make ingest read every rule again."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._book = RuleBook()
        self._read_at = -math.inf
        self._fingerprint: tuple[Any, ...] = ()
        self._lock = threading.Lock()
        self.max_age_s = max_age_s
        self.clock = clock

    def book(self, session: Session) -> RuleBook:
        """The current rule book; when it is old, a one-row fingerprint of the rules says
        whether it must be read again."""
        if self._book.version == _generation.count \
                and self.clock() - self._read_at <= self.max_age_s:
            return self._book
        with self._lock:
            version, read_at = _generation.count, self.clock()
            if self._book.version != version or self._fingerprint != fingerprint(session):
                book = load_book(session)
                book.version = version
                self._book, self._fingerprint = book, fingerprint(session)
            self._read_at = read_at
        return self._book


# -- firings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """A rule fired by one reading (a silence rule: by the last reading heard)."""

    rule: ActiveRule
    sensor_id: str
    ts_ms: int
    value: float | None


def _instant(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _iso(ms: int) -> str:
    return _instant(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_firings(session: Session, *, firings: Iterable[Firing], book: RuleBook) -> int:
    """A rule event row for each firing and, when its rule asks, an outbox event
    (`rule.triggered` or `sensor.silent`) and a log entry; how many."""
    now = utc_now()
    firings = list(firings)
    if not firings:
        return 0
    session.execute(insert(RuleEvent), [
        {"rule_id": firing.rule.id, "community_id": firing.rule.community_id,
         "sensor_id": firing.sensor_id, "channel": firing.rule.channel,
         "reading_ts": _instant(firing.ts_ms), "value": firing.value, "fired_at": now}
        for firing in firings])
    for firing in firings:
        rule = firing.rule
        key = (rule.id, firing.sensor_id)
        book.last_fired[key] = max(book.last_fired.get(key, firing.ts_ms), firing.ts_ms)
        if "event" in rule.actions:
            record_event(session, community_id=rule.community_id,
                         event_type=SENSOR_SILENT if rule.kind == "silence" else RULE_TRIGGERED,
                         payload=firing_payload(firing))
        if "log" in rule.actions:
            LOG.warning("rule %s (%s) fired for sensor %s on %s at %s, value %s", rule.id,
                        rule.name, firing.sensor_id, rule.channel, _iso(firing.ts_ms),
                        firing.value)
    session.flush()
    return len(firings)


def firing_payload(firing: Firing) -> dict[str, Any]:
    """What a firing's webhook event carries."""
    rule = firing.rule
    return {"rule_id": rule.id, "rule_name": rule.name, "kind": rule.kind,
            "operator": rule.operator, "threshold": rule.threshold,
            "threshold_high": rule.threshold_high,
            "reading": {"sensor_id": firing.sensor_id, "channel": rule.channel,
                        "ts": _iso(firing.ts_ms), "value": firing.value}}
