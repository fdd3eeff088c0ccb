"""Outgoing webhooks: a community's endpoints, the outbox of events, and their deliveries."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox, utc_now
from storage.pagination import Page, paginate

SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)
EVENT_TYPES = ("community.imported", "rule.triggered", "sensor.silent")
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)


def create_endpoint(session: Session, *, community_id: int, url: str,
                    description: str | None, event_types: list[str]) -> WebhookEndpoint:
    """A new endpoint with a fresh `whsec_` secret (the caller shows it once)."""
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
    endpoint = WebhookEndpoint(community_id=community_id, url=url, description=description,
                               event_types=sorted(set(event_types or EVENT_TYPES)),
                               secret=secret)
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


def delete_endpoint(session: Session, *, community_id: int, endpoint_id: int) -> None:
    """Delete an endpoint and its deliveries."""
    endpoint = get_endpoint(session, community_id=community_id, endpoint_id=endpoint_id)
    session.execute(WebhookDelivery.__table__.delete().where(  # type: ignore[attr-defined]
        col(WebhookDelivery.endpoint_id) == endpoint_id))
    session.delete(endpoint)


def record_event(session: Session, *, community_id: int, event_type: str,
                 payload: dict[str, Any]) -> WebhookOutbox:
    """An event in the outbox, committed (or rolled back) with the change it tells about."""
    event = WebhookOutbox(community_id=community_id, event_type=event_type, payload=payload)
    session.add(event)
    session.flush()
    return event


def fan_out(session: Session) -> int:
    """A pending delivery for each endpoint subscribed to each new event; how many."""
    created = 0
    events = session.exec(select(WebhookOutbox).where(
        col(WebhookOutbox.dispatched_at).is_(None)).order_by(col(WebhookOutbox.id))).all()
    for event in events:
        taken = session.execute(update(WebhookOutbox).where(
            col(WebhookOutbox.id) == event.id, col(WebhookOutbox.dispatched_at).is_(None))
            .values(dispatched_at=utc_now()))
        if getattr(taken, "rowcount", 0) != 1:
            continue  # another worker dispatched it
        endpoints = session.exec(select(WebhookEndpoint).where(
            WebhookEndpoint.community_id == event.community_id)).all()
        for endpoint in endpoints:
            if event.event_type in endpoint.event_types:
                assert event.id is not None and endpoint.id is not None
                session.add(WebhookDelivery(outbox_id=event.id, endpoint_id=endpoint.id))
                created += 1
    session.flush()
    return created


@dataclass(frozen=True)
class DueDelivery:
    """A delivery leased to this worker, with what sending it needs."""

    delivery_id: int
    message_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    url: str
    secret: str


def lease_due(session: Session, *, lease: timedelta, limit: int = 50) -> list[DueDelivery]:
    """Pending deliveries whose time has come, each leased for `lease` (no other worker
    sends it meanwhile)."""
    now = utc_now()
    rows = session.exec(
        select(WebhookDelivery, WebhookOutbox, WebhookEndpoint)
        .join(WebhookOutbox, col(WebhookOutbox.id) == col(WebhookDelivery.outbox_id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.status == "pending", col(WebhookDelivery.next_attempt_at) <= now)
        .order_by(col(WebhookDelivery.id)).limit(limit)).all()
    leased = []
    for delivery, event, endpoint in rows:
        taken = session.execute(update(WebhookDelivery).where(
            col(WebhookDelivery.id) == delivery.id, col(WebhookDelivery.status) == "pending",
            col(WebhookDelivery.next_attempt_at) <= now).values(next_attempt_at=now + lease))
        if getattr(taken, "rowcount", 0) == 1:
            assert delivery.id is not None
            leased.append(DueDelivery(
                delivery_id=delivery.id, message_id=f"msg_{event.id}",
                event_type=event.event_type, payload=dict(event.payload),
                created_at=event.created_at, url=endpoint.url, secret=endpoint.secret))
    return leased


def record_attempt(session: Session, *, delivery_id: int, delivered: bool,
                   response_status: int | None, error: str | None) -> None:
    """The outcome of one attempt: delivered, retried later (doubling waits), or failed
    after MAX_ATTEMPTS."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.response_status = response_status
    delivery.last_error = None if error is None else error[:500]
    if delivered:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            "delivered", utc_now(), None)
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        wait = min(FIRST_RETRY * 2 ** (delivery.attempts - 1), LONGEST_RETRY)
        delivery.next_attempt_at = utc_now() + wait
    session.add(delivery)
