"""Sending the outbox: deliveries fanned out to endpoints, POSTed signed with Standard
Webhooks (webhook-id, webhook-timestamp, webhook-signature), retried with doubling waits."""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from storage import webhooks as webhook_store

if TYPE_CHECKING:
    from handlers.runtime import Runtime

LEASE = timedelta(minutes=2)
USER_AGENT = "CommonWatt-Webhooks"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to go: it could lead to an internal address."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(_NoRedirects)


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why an endpoint URL is refused (None: it is fine): https only (http too when private
    targets are allowed), a host, and a port that is a number."""
    try:
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
    except ValueError:  # a bracketed host that is no IPv6 address, a port that is no number
        return "the URL is not a valid URL"
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return f"the URL must start with {' or '.join(scheme + '://' for scheme in schemes)}"
    if not hostname:
        return "the URL names no host"
    return None


def target_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a delivery may not go to this URL now: a refused URL, a host that does not
    resolve, or one resolving to a loopback, private, link-local or reserved address."""
    problem = url_problem(url, allow_private=allow_private)
    if problem or allow_private:
        return problem
    parts = urlsplit(url)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        return "the host does not resolve"
    for address in addresses:
        if not ipaddress.ip_address(str(address).split("%")[0]).is_global:
            return "the host resolves to an address that is not public"
    return None


def sign_and_send(due: webhook_store.DueDelivery, *, allow_private: bool,
                  timeout_s: float) -> tuple[bool, int | None, str | None]:
    """POST one delivery; (delivered, the answer's status, the error)."""
    problem = target_problem(due.url, allow_private=allow_private)
    if problem:
        return False, None, problem
    body = json.dumps({"type": due.event_type, "timestamp": due.created_at.isoformat(),
                       "data": due.payload}, separators=(",", ":"))
    now = datetime.now(UTC)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "webhook-id": due.message_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(due.secret).sign(due.message_id, now, body)}
    request = urllib.request.Request(due.url, data=body.encode(), headers=headers,  # noqa: S310
                                     method="POST")
    try:
        with OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
            return 200 <= status < 300, status, None if status < 300 else f"HTTP {status}"
    except urllib.error.HTTPError as error:
        return False, error.code, f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return False, None, str(getattr(error, "reason", error))[:300]


def deliver_pending(runtime: Runtime) -> int:
    """Fan new events out, then send every delivery that is due; how many were sent."""
    settings = runtime.settings
    with runtime.session() as session:
        webhook_store.fan_out(session)
    with runtime.session() as session:
        due = webhook_store.lease_due(session, lease=LEASE)
    for delivery in due:
        delivered, status, error = sign_and_send(
            delivery, allow_private=settings.webhook_allow_private_targets,
            timeout_s=settings.webhook_timeout_seconds)
        with runtime.session() as session:
            webhook_store.record_attempt(session, delivery_id=delivery.delivery_id,
                                         delivered=delivered, response_status=status,
                                         error=error)
    return len(due)
