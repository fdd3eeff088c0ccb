"""A community's outgoing webhook endpoints: CRUD (the secret shown once), secret rotation,
ping, the delivery log (messages and their attempts), redelivery and replay; the catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import openapi
from handlers.access import admin_community, caller_of
from handlers.present import timestamp
from handlers.problems import Problem
from handlers.runtime import current_runtime
from handlers.webhook_targets import url_problem
from storage import webhooks as webhook_store
from storage.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookOutbox

SCHEMA_REF = "#/components/schemas/"
BASE = "/api/admin/communities/{community}/webhooks/{endpoint}"


def present_endpoint(endpoint: WebhookEndpoint, community_key: str) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    return {"id": endpoint.id, "community": community_key, "url": endpoint.url,
            "description": endpoint.description, "event_types": list(endpoint.event_types),
            "enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason,
            "created_at": timestamp(endpoint.created_at)}


def present_message(delivery: WebhookDelivery, event: WebhookOutbox) -> dict[str, Any]:
    """A message (one event to one endpoint) and where its delivery stands."""
    return {"id": webhook_store.message_id_of(event.id), "event_type": event.event_type,
            "payload": event.payload, "created_at": timestamp(event.created_at),
            "status": delivery.status, "attempts": delivery.attempts,
            "next_attempt_at": timestamp(delivery.next_attempt_at),
            "last_attempt_at": timestamp(delivery.last_attempt_at),
            "delivered_at": timestamp(delivery.delivered_at),
            "response_status": delivery.response_status, "last_error": delivery.last_error}


def present_attempt(attempt: WebhookAttempt) -> dict[str, Any]:
    """One attempt of a delivery as the log shows it."""
    return {"id": attempt.id, "attempted_at": timestamp(attempt.attempted_at),
            "response_status": attempt.response_status, "latency_ms": attempt.latency_ms,
            "response_body": attempt.response_body, "error": attempt.error}


def _checked_url(url: str) -> str:
    problem = url_problem(url,
                          allow_private=current_runtime().settings.webhook_allow_private_targets)
    if problem:
        raise Problem(422, "invalid_webhook_url", problem)
    return url


async def list_webhooks(community_key: str, token_info: dict[str, Any],
                        limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = webhook_store.list_endpoints(session, community_id=community.id, limit=limit,
                                            cursor=cursor)
        return {"items": [present_endpoint(endpoint, community.key) for endpoint in page.items],
                "next_cursor": page.next_cursor}


async def create_webhook(community_key: str, body: dict[str, Any],
                         token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    url = _checked_url(body["url"])
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        endpoint = webhook_store.create_endpoint(
            session, community_id=community.id, url=url,
            description=body.get("description"), event_types=body.get("event_types", []))
        return {**present_endpoint(endpoint, community.key), "secret": endpoint.secret}, 201


async def get_webhook(community_key: str, endpoint_id: int,
                      token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        endpoint = webhook_store.get_endpoint(session, community_id=community.id,
                                              endpoint_id=endpoint_id)
        return present_endpoint(endpoint, community.key)


async def update_webhook(community_key: str, endpoint_id: int, body: dict[str, Any],
                         token_info: dict[str, Any]) -> dict[str, Any]:
    if "url" in body:
        _checked_url(body["url"])
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        endpoint = webhook_store.update_endpoint(session, community_id=community.id,
                                                 endpoint_id=endpoint_id, changes=body)
        return present_endpoint(endpoint, community.key)


async def delete_webhook(community_key: str, endpoint_id: int,
                         token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        webhook_store.delete_endpoint(session, community_id=community.id,
                                      endpoint_id=endpoint_id)
    return None, 204


async def rotate_webhook_secret(community_key: str, endpoint_id: int,
                                token_info: dict[str, Any]) -> dict[str, Any]:
    runtime = current_runtime()
    overlap = timedelta(seconds=runtime.settings.webhook_secret_overlap_seconds)
    with runtime.session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        endpoint = webhook_store.rotate_secret(session, community_id=community.id,
                                               endpoint_id=endpoint_id, overlap=overlap)
        return {**present_endpoint(endpoint, community.key), "secret": endpoint.secret,
                "previous_secret_expires_at": timestamp(endpoint.previous_secret_expires_at)}


async def test_webhook(community_key: str, endpoint_id: int,
                       token_info: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        delivery = webhook_store.send_ping(session, community_id=community.id,
                                           endpoint_id=endpoint_id)
        event = session.get(WebhookOutbox, delivery.outbox_id)
        assert event is not None
        answer = present_message(delivery, event)
    location = (BASE.format(community=community.key, endpoint=endpoint_id)
                + f"/messages/{answer['id']}")
    return answer, 202, {"Location": location}


async def list_webhook_messages(community_key: str, endpoint_id: int,
                                token_info: dict[str, Any], status: str | None = None,
                                limit: int | None = None,
                                cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = webhook_store.list_messages(session, community_id=community.id,
                                           endpoint_id=endpoint_id, status=status,
                                           limit=limit, cursor=cursor)
        return {"items": [present_message(delivery, event) for delivery, event in page.items],
                "next_cursor": page.next_cursor}


async def get_webhook_message(community_key: str, endpoint_id: int, message_id: str,
                              token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        delivery, event = webhook_store.get_message(
            session, community_id=community.id, endpoint_id=endpoint_id, message_id=message_id)
        return present_message(delivery, event)


async def list_webhook_message_attempts(community_key: str, endpoint_id: int,
                                        message_id: str, token_info: dict[str, Any],
                                        limit: int | None = None,
                                        cursor: str | None = None) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        page = webhook_store.list_attempts(session, community_id=community.id,
                                           endpoint_id=endpoint_id, message_id=message_id,
                                           limit=limit, cursor=cursor)
        return {"items": [present_attempt(attempt) for attempt in page.items],
                "next_cursor": page.next_cursor}


async def redeliver_webhook_message(community_key: str, endpoint_id: int, message_id: str,
                                    token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        delivery, event = webhook_store.redeliver(
            session, community_id=community.id, endpoint_id=endpoint_id, message_id=message_id)
        return present_message(delivery, event), 202


async def replay_webhook(community_key: str, endpoint_id: int, body: dict[str, Any],
                         token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    since = _instant(body["since"])
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        queued = webhook_store.replay_since(session, community_id=community.id,
                                            endpoint_id=endpoint_id, since=since)
    return {"since": timestamp(since), "queued": queued}, 202


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(400, "bad_request", f"since {text!r} is not an RFC 3339 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_schema_name(event_type: str) -> str:
    """The spec component of an event type: `member.created` is WebhookEventMemberCreated."""
    words = event_type.replace("_", ".").split(".")
    return "WebhookEvent" + "".join(word.capitalize() for word in words)


def _inlined(node: Any, schemas: dict[str, Any]) -> Any:
    """A schema with its `#/components/schemas/...` references replaced by their targets."""
    if isinstance(node, list):
        return [_inlined(item, schemas) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
        return _inlined(schemas[ref.removeprefix(SCHEMA_REF)], schemas)
    return {key: _inlined(value, schemas) for key, value in node.items()}


async def list_webhook_event_types() -> dict[str, Any]:
    schemas = openapi.bundled_spec()["components"]["schemas"]
    items = []
    for event_type in webhook_store.EVENT_TYPES:
        schema = _inlined(schemas[event_schema_name(event_type)], schemas)
        items.append({"type": event_type, "description": schema.get("description", ""),
                      "schema": schema})
    return {"items": items}
