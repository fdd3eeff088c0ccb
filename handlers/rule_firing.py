"""Rules run after a batch of readings commits, and the scheduled check for silent sensors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import pyarrow as pa
from sqlmodel import Session, col, select

from handlers.runtime import Runtime
from storage import rules as rule_store
from storage.models import Asset
from storage.telemetry.rule_evaluation import Evaluator, Readings, silent_sensors
from storage.telemetry.store import now_ms

LOG = logging.getLogger("commonwatt.rules")


class CommunitiesSeen:
    """Wraps an ingest authorizer to remember each written sensor's community."""

    def __init__(self, authorize: Callable[[list[str]], Mapping[str, int]]) -> None:
        self._authorize = authorize
        self.communities: dict[str, int] = {}

    def __call__(self, sensor_ids: list[str]) -> Mapping[str, int]:
        granted = self._authorize(sensor_ids)
        self.communities.update({sensor: int(community)
                                 for sensor, community in granted.items()})
        return granted


def watches_readings(runtime: Runtime) -> bool:
    """Whether some enabled threshold rule exists (the rule book is read once per change)."""
    with runtime.session(read_only=True) as session:
        return runtime.rules.book(session).watches_readings


def evaluate_stored(runtime: Runtime, table: pa.Table | None,
                    communities: Mapping[str, int]) -> int:
    """Evaluate a committed batch against the enabled rules and record what fired; how many
    fired. A failure is logged: the batch is stored whatever the rules do."""
    if table is None or table.num_rows == 0:
        return 0
    try:
        with runtime.session(read_only=True) as session:
            book = runtime.rules.book(session)
        if not book.watches_readings:
            return 0
        firings = Evaluator(runtime.telemetry, book).firings(
            Readings.from_table(table, dict(communities)))
        if not firings:
            return 0
        with runtime.session(read_only=False) as session:
            return rule_store.record_firings(session, firings=firings, book=book)
    except Exception:
        LOG.exception("evaluating rules over a stored batch")
        return 0


def _sensors_by_community(session: Session, community_ids: set[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for community_id, sensor_id in session.exec(
            select(Asset.community_id, Asset.sensor_id).where(
                col(Asset.community_id).in_(community_ids),
                col(Asset.sensor_id).is_not(None))).all():
        found.setdefault(int(community_id), []).append(str(sensor_id))
    return found


def check_silence(runtime: Runtime, *, now: int | None = None) -> int:
    """Fire the silence rules whose sensors sent nothing for their span; how many fired."""
    store = runtime.open_telemetry_store()
    if store is None:
        return 0
    with runtime.session(read_only=False) as session:
        book = runtime.rules.book(session)
        if not book.silence:
            return 0
        wide = {rule.community_id for rule in book.silence if rule.sensor_id is None}
        firings = silent_sensors(store, book, sensors_of=_sensors_by_community(session, wide),
                                 now_ms=now_ms() if now is None else now)
        return rule_store.record_firings(session, firings=firings, book=book)
