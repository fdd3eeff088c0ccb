"""Sending the outbox: events fanned out to endpoints, POSTed signed with Standard Webhooks
(webhook-id, webhook-timestamp, webhook-signature) to the checked address, every attempt
logged, retried on the configured schedule."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from standardwebhooks import Webhook

from handlers import webhook_http
from handlers.webhook_targets import TargetRefused, resolve_target
from storage import webhooks as webhook_store

if TYPE_CHECKING:
    from handlers.runtime import Runtime
    from handlers.settings import Settings

USER_AGENT = "CommonWatt-Webhooks"
BATCH = 100


def retry_policy(settings: Settings) -> webhook_store.RetryPolicy:
    """The retry schedule and the endpoint-disabling delay the settings name."""
    return webhook_store.RetryPolicy(
        schedule=tuple(settings.webhook_retry_schedule_seconds),
        disable_after=timedelta(seconds=settings.webhook_disable_after_seconds))


def lease_time(settings: Settings) -> timedelta:
    """How long a worker holds a delivery: its timeout plus a margin."""
    return timedelta(seconds=settings.webhook_timeout_seconds + 30)


def signature_header(secrets: tuple[str, ...], message_id: str, when: datetime,
                     body: str) -> str:
    """`v1,<sig>` for every signing secret, space-separated (a receiver accepts any)."""
    return " ".join(Webhook(secret).sign(message_id, when, body) for secret in secrets)


def sign_and_send(due: webhook_store.DueDelivery, *, allow_private: bool,
                  timeout_s: float) -> webhook_store.AttemptOutcome:
    """POST one delivery to the address its URL resolves to (checked first); the outcome."""
    started = time.monotonic()

    def outcome(status: int | None, body: str | None = None,
                error: str | None = None) -> webhook_store.AttemptOutcome:
        delivered = status is not None and 200 <= status < 300
        return webhook_store.AttemptOutcome(
            delivered=delivered, response_status=status,
            latency_ms=int((time.monotonic() - started) * 1000), response_body=body,
            error=error)

    try:
        target = resolve_target(due.url, allow_private=allow_private)
    except TargetRefused as refused:
        return outcome(None, error=str(refused))
    body = json.dumps({"type": due.event_type, "timestamp": due.created_at.isoformat(),
                       "data": due.payload}, separators=(",", ":"))
    now = datetime.now(UTC)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "webhook-id": due.message_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature_header(due.secrets, due.message_id, now, body)}
    try:
        answer = webhook_http.post(target, due.url, body=body.encode(), headers=headers,
                                   timeout=timeout_s, keep=webhook_store.BODY_KEPT)
    except TimeoutError:
        return outcome(None, error=f"no answer within {timeout_s:g} s")
    except (OSError, http.client.HTTPException) as error:
        return outcome(None, error=f"{type(error).__name__}: {error}"[:300])
    status, text = answer.status, answer.body.decode("utf-8", errors="replace")
    if 200 <= status < 300:
        return outcome(status, text)
    if 300 <= status < 400:
        return outcome(status, text, f"HTTP {status} (redirects are not followed)")
    return outcome(status, text, f"HTTP {status}")


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _sender_pool(size: int) -> ThreadPoolExecutor:
    """The process's threads sending deliveries (kept: each keeps its connections)."""
    with _pools_lock:
        if size not in _pools:
            _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook")
        return _pools[size]


def deliver_pending(runtime: Runtime, *, worker: str = "") -> int:
    """Fan new events out, then send every delivery that is due, several at once, logging
    each attempt; how many were sent."""
    settings = runtime.settings
    policy = retry_policy(settings)
    sent = 0
    with runtime.session() as session:
        webhook_store.fan_out(session)
    pool = _sender_pool(settings.webhook_concurrency)
    while True:
        with runtime.session() as session:
            due = webhook_store.lease_due(session, lease=lease_time(settings),
                                          worker=worker, limit=BATCH)
        if not due:
            return sent
        outcomes = pool.map(lambda delivery: sign_and_send(
            delivery, allow_private=settings.webhook_allow_private_targets,
            timeout_s=settings.webhook_timeout_seconds), due)
        with runtime.session() as session:
            webhook_store.record_attempts(session, outcomes=[
                (delivery.delivery_id, result)
                for delivery, result in zip(due, outcomes, strict=True)], policy=policy,
                worker=worker)
            webhook_store.fan_out(session)  # endpoint.disabled events, if any
        sent += len(due)
        if len(due) < BATCH:
            return sent
