"""The webhook store: events ride the change's transaction, fan-out and leases claim once,
attempts follow the schedule to dead letter, leases of stopped processes are released."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from storage import members as member_store
from storage import webhooks as webhook_store
from storage.errors import Conflict
from storage.models import Area, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookOutbox
from storage.webhooks import AttemptOutcome, RetryPolicy

POLICY = RetryPolicy(schedule=(0, 0, 0), disable_after=timedelta(days=5))
FAILED = AttemptOutcome(delivered=False, response_status=500, latency_ms=3,
                        response_body="oops", error="HTTP 500")


def _endpoints(session: Session, registry: dict[str, int]) -> dict[str, WebhookEndpoint]:
    made = {key: webhook_store.create_endpoint(
        session, community_id=registry[key], url=f"https://{key}.example/hook",
        description=None, event_types=[]) for key in ("a", "b")}
    session.commit()
    return made


def test_an_event_is_written_with_its_change_and_not_without(
        session: Session, registry: dict[str, int]) -> None:
    session.add(Area(community_id=registry["a"], key="north", name="North",
                     boundary_source="gse_cabine_primarie", boundary_id="AC-a-1"))
    session.commit()
    member_store.create_member(session, community_id=registry["a"], key="dave",
                               user_id="dave@a.test", name="Dave", type=None, role="consumer",
                               area="north", status="pending", did=None, extra={})
    session.commit()
    with pytest.raises(Conflict):
        member_store.create_member(session, community_id=registry["a"], key="dave",
                                   user_id="other@a.test", name="D", type=None,
                                   role="consumer", area="north", status="pending", did=None,
                                   extra={})
    session.rollback()
    events = session.exec(select(WebhookOutbox)).all()
    assert [(event.event_type, event.payload["member"]) for event in events] == [
        ("member.created", "dave")]
    assert events[0].payload["community"] == "a"


def test_fan_out_and_leases_claim_once_per_community(session: Session,
                                                     registry: dict[str, int]) -> None:
    endpoints = _endpoints(session, registry)
    for key in ("a", "a", "b"):
        webhook_store.record_event(session, community_id=registry[key], event_type="ping",
                                   payload={})
    assert webhook_store.fan_out(session) == 3
    assert webhook_store.fan_out(session) == 0
    session.commit()
    first = webhook_store.lease_due(session, lease=timedelta(minutes=1), worker="host:1")
    assert webhook_store.lease_due(session, lease=timedelta(minutes=1), worker="host:2") == []
    assert sorted(due.endpoint_id for due in first) == sorted(
        [endpoints["a"].id, endpoints["a"].id, endpoints["b"].id])
    assert webhook_store.release_leases(session, is_gone=lambda worker: worker == "host:1") == 3
    again = webhook_store.lease_due(session, lease=timedelta(minutes=1), worker="host:2")
    assert [due.message_id for due in again] == [due.message_id for due in first]


def test_attempts_follow_the_schedule_to_dead_letter_and_are_logged(
        session: Session, registry: dict[str, int]) -> None:
    endpoints = _endpoints(session, registry)
    delivery = webhook_store.send_ping(session, community_id=registry["a"],
                                       endpoint_id=endpoints["a"].id or 0)
    session.commit()
    assert delivery.id is not None
    statuses = []
    for _ in range(3):
        leased = webhook_store.lease_due(session, lease=timedelta(minutes=1), worker="w")
        assert [due.delivery_id for due in leased] == [delivery.id]
        webhook_store.record_attempt(session, delivery_id=delivery.id, outcome=FAILED,
                                     policy=POLICY, worker="w")
        session.commit()
        session.refresh(delivery)
        statuses.append(delivery.status)
    assert statuses == ["failed", "failed", "dead_letter"]
    webhook_store.redeliver(session, community_id=registry["a"],
                            endpoint_id=endpoints["a"].id or 0,
                            message_id=f"msg_{delivery.outbox_id}")
    session.commit()
    # An attempt that was under way when the message was redelivered is logged, and the
    # message stays due again.
    webhook_store.record_attempt(session, delivery_id=delivery.id, outcome=FAILED,
                                 policy=POLICY, worker="w")
    session.commit()
    session.refresh(delivery)
    assert delivery.status == "pending" and delivery.attempts == 0
    attempts = session.exec(select(WebhookAttempt)).all()
    assert [(attempt.response_status, attempt.response_body) for attempt in attempts] == [
        (500, "oops")] * 4
    endpoint = session.get(WebhookEndpoint, endpoints["a"].id)
    assert endpoint is not None and endpoint.enabled and endpoint.failing_since is not None


def test_replay_makes_every_event_since_due_again(session: Session,
                                                  registry: dict[str, int]) -> None:
    endpoints = _endpoints(session, registry)
    for _ in range(2):
        webhook_store.record_event(session, community_id=registry["a"],
                                   event_type="member.updated", payload={})
    webhook_store.record_event(session, community_id=registry["b"],
                               event_type="member.updated", payload={})
    webhook_store.fan_out(session)
    session.commit()
    for delivery in session.exec(select(WebhookDelivery)).all():
        delivery.status = "delivered"
        session.add(delivery)
    session.commit()
    since = session.exec(select(WebhookOutbox)).first()
    assert since is not None
    queued = webhook_store.replay_since(session, community_id=registry["a"],
                                        endpoint_id=endpoints["a"].id or 0,
                                        since=since.created_at - timedelta(seconds=1))
    session.commit()
    assert queued == 2
    pending = session.exec(select(WebhookDelivery).where(
        WebhookDelivery.status == "pending")).all()
    assert {delivery.endpoint_id for delivery in pending} == {endpoints["a"].id}
