"""Login (throttled), logout and the calling account."""

from __future__ import annotations

import ipaddress
from typing import Any

from connexion import request

from handlers import present
from handlers.access import caller_of
from handlers.problems import Problem
from handlers.runtime import Runtime, current_runtime, in_thread
from handlers.security import issue_access_token
from storage import access, throttle, tokens, users


def client_network(host: str) -> str:
    """The unit failed logins are counted by: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _attempt_login(runtime: Runtime, email: str, password: str, address: str) -> str | int:
    """An access token, or the seconds to wait (0 for plain wrong credentials).

    Failures are counted per (account, address) pair, with growing delays, and per address;
    an account is never blocked as a whole, so a correct password from an address without
    failures always gets in.
    """
    settings = runtime.settings
    pair = throttle.pair_key(email=users.normalise_email(email), address=address)
    from_address = throttle.address_key(address)
    with runtime.session(read_only=True) as session:
        wait = throttle.retry_after_seconds(session, keys=[pair, from_address])
        user = None if wait else users.login_account(session, email=email)
    if wait:
        return wait
    # The slow hash check runs outside any transaction: it holds no database lock.
    matches = users.password_matches(user.password_hash if user else None, password)
    with runtime.session(read_only=False) as session:
        if user is None or not matches:
            throttle.record_pair_failure(
                session, key=pair, free_failures=settings.login_free_failures,
                base_seconds=settings.login_backoff_base_seconds,
                max_seconds=settings.login_backoff_max_seconds,
                window_seconds=settings.login_backoff_window_seconds)
            throttle.record_address_failure(
                session, key=from_address, max_failures=settings.login_max_failures_per_address,
                window_seconds=settings.login_lockout_seconds)
            return 0
        assert user.id is not None
        throttle.clear_failures(session, key=pair)
        users.rehash_if_needed(session, user_id=user.id, password=password)
    return issue_access_token(secret=runtime.jwt_secret, user_id=user.id, email=user.email,
                              ttl_seconds=settings.access_token_ttl_seconds)


async def login(body: dict[str, Any]) -> dict[str, Any]:
    runtime = current_runtime()
    address = client_network(request.client.host if request.client else "unknown")
    email = body["email"] if "email" in body else body["username"]  # JSON, or OAuth2's form
    outcome = await in_thread(_attempt_login, runtime, email, body["password"], address)
    if isinstance(outcome, int):
        if outcome:
            raise Problem(429, "too_many_attempts",
                          f"too many failed logins; try again in {outcome} seconds",
                          headers={"Retry-After": str(outcome)})
        raise Problem(401, "invalid_credentials", "the email or the password is wrong",
                      headers={"WWW-Authenticate": 'Bearer realm="commonwatt"'})
    return {"access_token": outcome, "token_type": "bearer",
            "expires_in": runtime.settings.access_token_ttl_seconds}


async def logout(token_info: dict[str, Any]) -> tuple[None, int]:
    caller = caller_of(token_info)
    if caller.auth != "session" or caller.jti is None or caller.expires_at is None:
        raise Problem(400, "not_a_session",
                      "logout revokes access tokens; delete an API token with DELETE /tokens/{id}")
    with current_runtime().session() as session:
        tokens.revoke_access_token(session, jti=caller.jti, expires_at=caller.expires_at)
    return None, 204


async def get_me(token_info: dict[str, Any]) -> dict[str, Any]:
    caller = caller_of(token_info)
    with current_runtime().session() as session:
        user = users.get_user(session, user_id=caller.user_id)
        held = access.memberships(session, user_id=caller.email)
        return {**present.account(user), "auth": caller.auth,
                "memberships": [{"community_key": community.key, "member_key": member.key,
                                 "role": member.role, "status": member.status}
                                for member, community in held]}
