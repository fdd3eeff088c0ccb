"""API tokens: create (the secret is shown once), list, delete."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from handlers import present
from handlers.access import caller_of
from handlers.problems import Problem
from handlers.runtime import current_runtime
from storage import tokens
from storage.models import utc_now


async def create_token(body: dict[str, Any], token_info: dict[str, Any]) -> tuple[dict, int]:
    caller = caller_of(token_info)
    if caller.auth != "session":
        # A token minting tokens would let a stolen (or expiring) one outlive itself.
        raise Problem(403, "session_required",
                      "API tokens are created with a login session's access token, "
                      "not with an API token")
    days = body.get("expires_in_days")
    expires_at = utc_now() + timedelta(days=days) if days else None
    with current_runtime().session() as session:
        token, plaintext = tokens.create_api_token(
            session, user_id=caller.user_id, name=body["name"], expires_at=expires_at)
        return {**present.api_token(token, caller.email), "token": plaintext}, 201


async def list_tokens(token_info: dict[str, Any], all: bool = False, limit: int | None = None,
                      cursor: str | None = None) -> dict[str, Any]:
    caller = caller_of(token_info)
    if all and not caller.is_platform_admin:
        raise Problem(403, "not_an_administrator", "only platform admins may list every token")
    with current_runtime().session() as session:
        page = tokens.list_api_tokens(session, user_id=None if all else caller.user_id,
                                      limit=limit, cursor=cursor)
        return {"items": [present.api_token(token, user.email) for token, user in page.items],
                "next_cursor": page.next_cursor}


async def delete_token(token_id: int, token_info: dict[str, Any]) -> tuple[None, int]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        tokens.delete_api_token(session, token_id=token_id,
                                user_id=None if caller.is_platform_admin else caller.user_id)
    return None, 204
