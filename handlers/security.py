"""Authentication: access tokens (JWT) and API tokens, and the Caller they resolve to."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import jwt
from connexion.lifecycle import ConnexionRequest

from handlers.runtime import SCOPE_KEY, Runtime
from storage import sensors as sensor_store
from storage import tokens as token_store
from storage import users as user_store
from storage.errors import NotFound
from storage.tokens import TOKEN_PREFIX

JWT_ALGORITHMS = ["HS256"]
JWT_ISSUER = "commonwatt"


@dataclass(frozen=True)
class Caller:
    """The authenticated account behind a request."""

    user_id: int
    email: str
    role: str
    auth: str  # "session" (an access token) or "api_token"
    jti: str | None = None
    expires_at: datetime | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_token_info(cls, token_info: dict[str, Any]) -> Caller:
        """The caller described by what authenticate_bearer returned."""
        expires = token_info.get("exp")
        return cls(
            user_id=int(token_info["uid"]),
            email=str(token_info["sub"]),
            role=str(token_info["role"]),
            auth=str(token_info["auth"]),
            jti=token_info.get("jti"),
            expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
        )


def issue_access_token(*, secret: str, user_id: int, email: str, ttl_seconds: int) -> str:
    """A signed, short-lived access token for the account."""
    now = datetime.now(UTC)
    claims = {
        "iss": JWT_ISSUER,
        "sub": email,
        "uid": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHMS[0])


def authenticate_bearer(token: str, request: ConnexionRequest) -> dict[str, Any] | None:
    """Connexion's bearer check: token info for a valid token, None for any other token."""
    runtime: Runtime = request.scope[SCOPE_KEY]
    if len(token) > 4096:
        return None
    with runtime.session(read_only=True) as session:
        if token.startswith(TOKEN_PREFIX):
            found = token_store.user_for_api_token(session, plaintext=token)
            if found is None:
                return None
            user, api_token = found
            if token_store.token_needs_touch(api_token):
                assert api_token.id is not None
                with runtime.session(read_only=False) as write_session:
                    token_store.touch_api_token(write_session, token_id=api_token.id)
            return {"sub": user.email, "uid": user.id, "role": user.role, "auth": "api_token",
                    "token_id": api_token.id}
        try:
            claims = jwt.decode(
                token, runtime.jwt_secret, algorithms=JWT_ALGORITHMS, issuer=JWT_ISSUER,
                options={"require": ["exp", "iat", "jti", "sub", "uid"]},
            )
        except jwt.PyJWTError:
            return None
        if not isinstance(claims.get("uid"), int) or not isinstance(claims.get("jti"), str):
            return None
        if token_store.is_access_token_revoked(session, jti=claims["jti"]):
            return None
        try:
            user = user_store.get_user(session, user_id=claims["uid"])
        except NotFound:
            return None
        return {"sub": user.email, "uid": user.id, "role": user.role, "auth": "session",
                "jti": claims["jti"], "exp": claims["exp"]}


def authenticate_ingest_key(api_key: str, required_scopes: Any,
                            request: ConnexionRequest) -> dict[str, Any] | None:
    """Connexion's check of X-Ingest-Key: token info naming the sensor of the request path
    when the key is that sensor's, None otherwise."""
    runtime: Runtime = request.scope[SCOPE_KEY]
    raw_path = request.scope.get("raw_path") or request.scope.get("path", "").encode()
    sensor_id = unquote(raw_path.decode("latin-1").rsplit("/", 1)[-1])
    with runtime.session(read_only=True) as session:
        community_id = sensor_store.ingest_key_community(session, sensor_id=sensor_id,
                                                         plaintext=api_key)
    if community_id is None:
        return None
    return {"sub": f"sensor:{sensor_id}", "sensor_id": sensor_id,
            "community_id": community_id, "auth": "ingest_key"}


def authenticate_broker_secret(api_key: str, required_scopes: Any,
                               request: ConnexionRequest) -> dict[str, Any] | None:
    """Connexion's check of X-Broker-Secret: the MQTT broker, when the secret is the one of
    COMMONWATT_MQTT_BROKER_SECRET (none set: nobody is)."""
    runtime: Runtime = request.scope[SCOPE_KEY]
    secret = runtime.settings.mqtt_broker_secret
    if secret is None or not hmac.compare_digest(secret.get_secret_value().encode(),
                                                 api_key.encode()):
        return None
    return {"sub": "mqtt-broker", "auth": "broker_secret"}
