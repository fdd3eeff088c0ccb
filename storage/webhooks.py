"""Outgoing webhooks: a community's endpoints, the outbox of events, deliveries and their log."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.models import (
    Community,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
    utc_now,
)
from storage.pagination import Page, paginate

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
# The event catalog: every type an endpoint may subscribe to (each has a JSON Schema in the
# spec, WebhookEvent* components). Add a type here and there, nowhere else.
EVENT_TYPES = ("community.imported", "member.created", "member.updated", "member.deleted",
               "job.succeeded", "job.failed", "endpoint.disabled", "ping", "rule.triggered",
               "sensor.silent")
PENDING, DELIVERED, FAILED, DEAD_LETTER = "pending", "delivered", "failed", "dead_letter"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED, DEAD_LETTER)
MESSAGE_PREFIX = "msg_"
BODY_KEPT = 1024
GONE = 410
EVENTS_WRITTEN = "webhook_events_written"  # session.info flag: wake the deliveries on commit


def new_secret() -> str:
    """A fresh `whsec_` secret: 24 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def create_endpoint(session: Session, *, community_id: int, url: str,
                    description: str | None, event_types: list[str]) -> WebhookEndpoint:
    """A new endpoint with a fresh `whsec_` secret (the caller shows it once)."""
    endpoint = WebhookEndpoint(community_id=community_id, url=url, description=description,
                               event_types=sorted(set(event_types or EVENT_TYPES)),
                               secret=new_secret())
    session.add(endpoint)
    session.flush()
    return endpoint


def list_endpoints(session: Session, *, community_id: int, limit: int | None,
                   cursor: str | None) -> Page[WebhookEndpoint]:
    """The community's endpoints, oldest first."""
    statement = select(WebhookEndpoint).where(WebhookEndpoint.community_id == community_id)
    return paginate(session, statement, col(WebhookEndpoint.id), limit=limit, cursor=cursor,
                    key_of=lambda endpoint: endpoint.id)


def get_endpoint(session: Session, *, community_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the community's endpoints; NotFound (webhook_not_found) otherwise."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.community_id != community_id:
        raise NotFound(f"no webhook endpoint {endpoint_id}", code="webhook_not_found")
    return endpoint


def update_endpoint(session: Session, *, community_id: int, endpoint_id: int,
                    changes: dict[str, Any]) -> WebhookEndpoint:
    """Change an endpoint's url, description, event types or enabled flag; enabling it
    again forgets why it was disabled and its failures."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    if "url" in changes:
        endpoint.url = changes["url"]
    if "description" in changes:
        endpoint.description = changes["description"]
    if "event_types" in changes:
        endpoint.event_types = sorted(set(changes["event_types"] or EVENT_TYPES))
    if changes.get("enabled") is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    elif changes.get("enabled") is False:
        endpoint.enabled, endpoint.disabled_reason = False, "disabled by a user"
    session.add(endpoint)
    session.flush()
    return endpoint


def delete_endpoint(session: Session, *, community_id: int, endpoint_id: int) -> None:
    """Delete an endpoint and its deliveries."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    session.execute(WebhookDelivery.__table__.delete().where(  # type: ignore[attr-defined]
        col(WebhookDelivery.endpoint_id) == endpoint_id))
    session.delete(endpoint)


def rotate_secret(session: Session, *, community_id: int, endpoint_id: int,
                  overlap: timedelta) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it for `overlap`."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utc_now() + overlap
    endpoint.secret = new_secret()
    session.add(endpoint)
    session.flush()
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its overlap lasts."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and _aware(expires) > now:
        return (endpoint.secret, endpoint.previous_secret)
    return (endpoint.secret,)


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utc_now().tzinfo)


def record_event(session: Session, *, community_id: int, event_type: str,
                 payload: dict[str, Any]) -> WebhookOutbox:
    """An event in the outbox, committed (or rolled back) with the change it tells about."""
    assert event_type in EVENT_TYPES, event_type
    event = WebhookOutbox(community_id=community_id, event_type=event_type, payload=payload)
    session.add(event)
    session.flush()
    session.info[EVENTS_WRITTEN] = True
    return event


def community_key_of(session: Session, community_id: int) -> str | None:
    """The community's key, for an event's payload."""
    community = session.get(Community, community_id)
    return None if community is None else community.key


def community_id_of(session: Session, community_key: str) -> int | None:
    """The community's id, for recording an event about something that names its key."""
    return session.exec(select(Community.id).where(Community.key == community_key)).first()


def send_ping(session: Session, *, community_id: int, endpoint_id: int) -> WebhookDelivery:
    """A `ping` event for this one endpoint (whatever its event types), due now."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    event = record_event(session, community_id=community_id, event_type="ping", payload={
        "community": community_key_of(session, community_id), "endpoint_id": endpoint.id})
    event.dispatched_at = utc_now()  # fanned out here, to this endpoint only
    session.add(event)
    assert event.id is not None and endpoint.id is not None
    delivery = WebhookDelivery(outbox_id=event.id, endpoint_id=endpoint.id)
    session.add(delivery)
    session.flush()
    return delivery


def fan_out(session: Session, *, limit: int = 1000) -> int:
    """A pending delivery for each enabled endpoint subscribed to each new event; how many.
    Events are claimed in one statement (RETURNING): two workers never fan one out twice."""
    events = {event.id: event for event in session.exec(select(WebhookOutbox).where(
        col(WebhookOutbox.dispatched_at).is_(None)).order_by(col(WebhookOutbox.id))
        .limit(limit)).all()}
    if not events:
        return 0
    claimed = session.execute(update(WebhookOutbox).where(
        col(WebhookOutbox.id).in_(list(events)), col(WebhookOutbox.dispatched_at).is_(None))
        .values(dispatched_at=utc_now()).returning(col(WebhookOutbox.id))
        .execution_options(synchronize_session=False)).scalars().all()
    endpoints_of: dict[int, Sequence[WebhookEndpoint]] = {}
    new: list[dict[str, Any]] = []
    for event_id in sorted(claimed):
        event = events[event_id]
        if event.community_id not in endpoints_of:
            endpoints_of[event.community_id] = session.exec(select(WebhookEndpoint).where(
                WebhookEndpoint.community_id == event.community_id,
                col(WebhookEndpoint.enabled).is_(True))).all()
        for endpoint in endpoints_of[event.community_id]:
            if event.event_type in endpoint.event_types:
                new.append({"outbox_id": event.id, "endpoint_id": endpoint.id,
                            "status": PENDING, "attempts": 0,
                            "next_attempt_at": event.created_at})
    if new:
        session.execute(insert(WebhookDelivery), new)
    return len(new)


@dataclass(frozen=True)
class DueDelivery:
    """A delivery leased to this worker, with what sending it needs."""

    delivery_id: int
    endpoint_id: int
    message_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    url: str
    secrets: tuple[str, ...]


def message_id_of(event_id: int | None) -> str:
    """The `webhook-id` of an event: the same for every attempt and every endpoint."""
    return f"{MESSAGE_PREFIX}{event_id}"


def lease_due(session: Session, *, lease: timedelta, worker: str,
              limit: int = 50) -> list[DueDelivery]:
    """Pending or retrying deliveries of enabled endpoints whose time has come, each leased
    to `worker` for `lease` (no other worker sends it meanwhile)."""
    now = utc_now()
    rows = session.exec(
        select(WebhookDelivery, WebhookOutbox, WebhookEndpoint)
        .join(WebhookOutbox, col(WebhookOutbox.id) == col(WebhookDelivery.outbox_id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(col(WebhookDelivery.status).in_((PENDING, FAILED)),
               col(WebhookDelivery.next_attempt_at) <= now,
               col(WebhookEndpoint.enabled).is_(True))
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
        .limit(limit)).all()
    if not rows:
        return []
    claimed = set(session.execute(update(WebhookDelivery).where(
        col(WebhookDelivery.id).in_([delivery.id for delivery, _, _ in rows]),
        col(WebhookDelivery.status).in_((PENDING, FAILED)),
        col(WebhookDelivery.next_attempt_at) <= now)
        .values(next_attempt_at=now + lease, leased_by=worker)
        .returning(col(WebhookDelivery.id))
        .execution_options(synchronize_session=False)).scalars().all())
    leased = []
    for delivery, event, endpoint in rows:
        if delivery.id in claimed:
            assert delivery.id is not None and endpoint.id is not None
            leased.append(DueDelivery(
                delivery_id=delivery.id, endpoint_id=endpoint.id,
                message_id=message_id_of(event.id), event_type=event.event_type,
                payload=dict(event.payload), created_at=event.created_at, url=endpoint.url,
                secrets=signing_secrets(endpoint, now=now)))
    return leased


def next_due_at(session: Session) -> datetime | None:
    """When the next pending or retrying delivery of an enabled endpoint is due."""
    moment = session.exec(
        select(WebhookDelivery.next_attempt_at)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(col(WebhookDelivery.status).in_((PENDING, FAILED)),
               col(WebhookEndpoint.enabled).is_(True))
        .order_by(col(WebhookDelivery.next_attempt_at)).limit(1)).first()
    return None if moment is None else _aware(moment)


def has_undispatched_events(session: Session) -> bool:
    """Whether the outbox holds events not fanned out yet."""
    return session.exec(select(WebhookOutbox.id).where(
        col(WebhookOutbox.dispatched_at).is_(None)).limit(1)).first() is not None


def release_leases(session: Session, *, is_gone: Callable[[str], bool]) -> int:
    """Deliveries leased by a stopped process are due again now; how many."""
    released = 0
    for delivery in session.exec(select(WebhookDelivery).where(
            col(WebhookDelivery.leased_by).is_not(None),
            col(WebhookDelivery.status).in_((PENDING, FAILED)))).all():
        if delivery.leased_by is not None and is_gone(delivery.leased_by):
            delivery.leased_by, delivery.next_attempt_at = None, utc_now()
            session.add(delivery)
            released += 1
    return released


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST gave: delivered (a 2xx), the status, the time taken, the start of the
    answer, or the error."""

    delivered: bool
    response_status: int | None
    latency_ms: int
    response_body: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: waits before attempts 1, 2, ... (the first is usually 0); after
    the last, dead letter. An endpoint with no success for `disable_after` is disabled."""

    schedule: tuple[float, ...]
    disable_after: timedelta


def record_attempt(session: Session, *, delivery_id: int, outcome: AttemptOutcome,
                   policy: RetryPolicy, worker: str = "") -> None:
    """Log one attempt and move the delivery on (see record_attempts)."""
    record_attempts(session, outcomes=[(delivery_id, outcome)], policy=policy, worker=worker)


def record_attempts(session: Session, *, outcomes: Sequence[tuple[int, AttemptOutcome]],
                    policy: RetryPolicy, worker: str = "") -> None:
    """Log attempts and move each delivery on: delivered, failed (retried at the next step
    of the schedule) or dead_letter; a 410 or too long without a success disables the
    endpoint. A delivery made due again meanwhile (redelivered, replayed: no longer leased
    by `worker`) keeps its new state; only the attempt is logged."""
    now = utc_now()
    deliveries = {delivery.id: delivery for delivery in session.exec(select(
        WebhookDelivery).where(col(WebhookDelivery.id).in_([item for item, _ in outcomes]))
        .execution_options(populate_existing=True))}  # leases were written past the ORM
    endpoints = {endpoint.id: endpoint for endpoint in session.exec(select(
        WebhookEndpoint).where(col(WebhookEndpoint.id).in_(
            {delivery.endpoint_id for delivery in deliveries.values()})))}
    attempts = []
    for delivery_id, outcome in outcomes:
        delivery = deliveries.get(delivery_id)
        if delivery is None:
            continue  # its endpoint was deleted meanwhile
        attempts.append({
            "delivery_id": delivery_id, "attempted_at": now,
            "response_status": outcome.response_status, "latency_ms": outcome.latency_ms,
            "response_body": None if outcome.response_body is None
            else outcome.response_body[:BODY_KEPT],
            "error": None if outcome.error is None else outcome.error[:500]})
        count = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": count, "response_status": outcome.response_status,
            "last_error": None if outcome.error is None else outcome.error[:500],
            "last_attempt_at": now, "leased_by": None}
        if outcome.delivered:
            values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
        elif count < len(policy.schedule):
            values.update(status=FAILED,
                          next_attempt_at=now + timedelta(seconds=policy.schedule[count]))
        else:
            values.update(status=DEAD_LETTER, next_attempt_at=None)
        # Compare and set: a message redelivered or replayed meanwhile keeps its new state.
        moved = session.execute(update(WebhookDelivery).where(
            col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.leased_by) == worker,
            col(WebhookDelivery.attempts) == delivery.attempts).values(**values)
            .execution_options(synchronize_session=False))
        endpoint = endpoints.get(delivery.endpoint_id)
        if getattr(moved, "rowcount", 0) != 1 or endpoint is None:
            continue
        if outcome.delivered:
            endpoint.last_success_at, endpoint.failing_since = now, None
            session.add(endpoint)
        else:
            _note_failure(session, endpoint, outcome=outcome, now=now,
                          disable_after=policy.disable_after)
    if attempts:
        session.execute(insert(WebhookAttempt), attempts)


def _note_failure(session: Session, endpoint: WebhookEndpoint, *, outcome: AttemptOutcome,
                  now: datetime, disable_after: timedelta) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    session.add(endpoint)
    if not endpoint.enabled:
        return
    if outcome.response_status == GONE:
        disable_endpoint(session, endpoint=endpoint,
                         reason="the endpoint answered 410 Gone")
    elif now - _aware(endpoint.failing_since) >= disable_after:
        since = f"{_aware(endpoint.failing_since):%Y-%m-%d %H:%M:%S}"
        disable_endpoint(session, endpoint=endpoint,
                         reason=f"no successful delivery since {since} UTC")


def disable_endpoint(session: Session, *, endpoint: WebhookEndpoint, reason: str) -> None:
    """Stop sending to an endpoint and record an `endpoint.disabled` event (in this
    transaction) for the community's other endpoints."""
    endpoint.enabled, endpoint.disabled_reason = False, reason[:500]
    session.add(endpoint)
    record_event(session, community_id=endpoint.community_id, event_type="endpoint.disabled",
                 payload={"community": community_key_of(session, endpoint.community_id),
                          "endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason})


def parse_message_id(message_id: str) -> int:
    """The event id a `msg_...` names; NotFound (message_not_found) for any other text."""
    digits = message_id.removeprefix(MESSAGE_PREFIX)
    if (not message_id.startswith(MESSAGE_PREFIX) or not digits.isdigit()
            or len(digits) > 10 or int(digits) > 2**31 - 1):
        raise NotFound(f"no message {message_id}", code="message_not_found")
    return int(digits)


def list_messages(session: Session, *, community_id: int, endpoint_id: int,
                  status: str | None, limit: int | None,
                  cursor: str | None) -> Page[tuple[WebhookDelivery, WebhookOutbox]]:
    """The endpoint's messages (its deliveries with their events), oldest first."""
    get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    statement = (select(WebhookDelivery, WebhookOutbox)
                 .join(WebhookOutbox, col(WebhookOutbox.id) == col(WebhookDelivery.outbox_id))
                 .where(WebhookDelivery.endpoint_id == endpoint_id))
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return paginate(session, statement, col(WebhookDelivery.id), limit=limit, cursor=cursor,
                    key_of=lambda row: row[0].id)


def get_message(session: Session, *, community_id: int, endpoint_id: int,
                message_id: str) -> tuple[WebhookDelivery, WebhookOutbox]:
    """One message of the endpoint; NotFound (message_not_found) otherwise."""
    get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    event_id = parse_message_id(message_id)
    row = session.exec(
        select(WebhookDelivery, WebhookOutbox)
        .join(WebhookOutbox, col(WebhookOutbox.id) == col(WebhookDelivery.outbox_id))
        .where(WebhookDelivery.endpoint_id == endpoint_id,
               WebhookDelivery.outbox_id == event_id)).first()
    if row is None:
        raise NotFound(f"no message {message_id} for webhook endpoint {endpoint_id}",
                       code="message_not_found")
    return row[0], row[1]


def list_attempts(session: Session, *, community_id: int, endpoint_id: int, message_id: str,
                  limit: int | None, cursor: str | None) -> Page[WebhookAttempt]:
    """Every attempt of one message to the endpoint, oldest first."""
    delivery, _event = get_message(session, community_id=community_id,
                                   endpoint_id=endpoint_id, message_id=message_id)
    statement = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
    return paginate(session, statement, col(WebhookAttempt.id), limit=limit, cursor=cursor,
                    key_of=lambda attempt: attempt.id)


def _make_due(session: Session, delivery_ids: Sequence[int], now: datetime) -> None:
    """Due now with a fresh schedule; every column written, so that no concurrent attempt's
    outcome (see record_attempts) can leave half of it."""
    if delivery_ids:
        session.execute(update(WebhookDelivery).where(
            col(WebhookDelivery.id).in_(list(delivery_ids)))
            .values(status=PENDING, attempts=0, next_attempt_at=now, leased_by=None)
            .execution_options(synchronize_session=False))


def redeliver(session: Session, *, community_id: int, endpoint_id: int,
              message_id: str) -> tuple[WebhookDelivery, WebhookOutbox]:
    """Send one message again, now, with a fresh retry schedule (its log stays)."""
    delivery, event = get_message(session, community_id=community_id,
                                  endpoint_id=endpoint_id, message_id=message_id)
    assert delivery.id is not None
    _make_due(session, [delivery.id], utc_now())
    session.refresh(delivery)
    session.info[EVENTS_WRITTEN] = True
    return delivery, event


def replay_since(session: Session, *, community_id: int, endpoint_id: int,
                 since: datetime) -> int:
    """Send again every event of the community since `since` that the endpoint subscribes
    to (delivered or not, and those it never got); how many messages are due now."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    now = utc_now()
    events = session.exec(select(WebhookOutbox).where(
        WebhookOutbox.community_id == community_id, col(WebhookOutbox.created_at) >= since,
        col(WebhookOutbox.event_type).in_(endpoint.event_types))).all()
    existing = {delivery.outbox_id: delivery for delivery in session.exec(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            col(WebhookDelivery.outbox_id).in_([event.id for event in events]))).all()}
    _make_due(session, [delivery.id for delivery in existing.values() if delivery.id], now)
    for event in events:
        assert event.id is not None and endpoint.id is not None
        if event.id not in existing:
            session.add(WebhookDelivery(outbox_id=event.id, endpoint_id=endpoint.id,
                                        next_attempt_at=now))
    session.flush()
    session.info[EVENTS_WRITTEN] = True
    return len(events)
