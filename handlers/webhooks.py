"""A community's outgoing webhook endpoints: list, create (the secret shown once), get, delete."""

from __future__ import annotations

from typing import Any

from handlers.access import admin_community, caller_of
from handlers.present import timestamp
from handlers.problems import Problem
from handlers.runtime import current_runtime
from handlers.webhook_delivery import url_problem
from storage import webhooks as webhook_store
from storage.models import WebhookEndpoint


def present_endpoint(endpoint: WebhookEndpoint, community_key: str) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    return {"id": endpoint.id, "community": community_key, "url": endpoint.url,
            "description": endpoint.description, "event_types": list(endpoint.event_types),
            "created_at": timestamp(endpoint.created_at)}


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
    runtime = current_runtime()
    problem = url_problem(body["url"],
                          allow_private=runtime.settings.webhook_allow_private_targets)
    if problem:
        raise Problem(422, "invalid_webhook_url", problem)
    with runtime.session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        endpoint = webhook_store.create_endpoint(
            session, community_id=community.id, url=body["url"],
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


async def delete_webhook(community_key: str, endpoint_id: int,
                         token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        webhook_store.delete_endpoint(session, community_id=community.id,
                                      endpoint_id=endpoint_id)
    return None, 204
