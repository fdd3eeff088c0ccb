"""The MQTT door's operations: a sensor's refused messages, and the internal authentication
and ACL endpoints an HTTP-auth broker (EMQX) calls."""

from __future__ import annotations

import hmac
from typing import Any

from handlers import present
from handlers.access import admin_community, caller_of
from handlers.mqtt_broker import READINGS_TOPIC, REFUSALS_TOPIC, SUBSCRIPTION, broker_address
from handlers.runtime import current_runtime, in_thread
from storage import mqtt
from storage.sensors import ingest_key_community


async def list_mqtt_refusals(community_key: str, sensor_id: str,
                             token_info: dict[str, Any]) -> dict[str, Any]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key)
        assert community.id is not None
        refusals = mqtt.community_sensor_refusals(session, community_id=community.id,
                                                  sensor_id=sensor_id)
        items = [{"code": refusal.code, "detail": refusal.detail, "errors": refusal.errors,
                  "received_at": present.timestamp(refusal.received_at)}
                 for refusal in refusals]
    return {"sensor_id": sensor_id, "community": community.key, "items": items}


def _server_user() -> tuple[str | None, str | None]:
    settings = current_runtime().settings
    if not settings.mqtt_url:
        return None, None
    address = broker_address(settings.mqtt_url)
    return address.username, address.password


def _login_allowed(username: str, password: str) -> bool:
    server_user, server_password = _server_user()
    if server_user is not None and username == server_user:
        return server_password is not None and hmac.compare_digest(
            server_password.encode(), password.encode())
    with current_runtime().session(read_only=True) as session:
        return ingest_key_community(session, sensor_id=username, plaintext=password) is not None


async def authenticate_mqtt_client(body: dict[str, Any]) -> dict[str, Any]:
    allowed = await in_thread(_login_allowed, body["username"], body["password"])
    return {"result": "allow" if allowed else "deny", "is_superuser": False}


def access_allowed(username: str, topic: str, action: str, server_user: str | None) -> bool:
    """Whether the broker lets this client publish or subscribe on the topic."""
    if server_user is not None and username == server_user:
        if action == "subscribe":
            return topic == SUBSCRIPTION
        parts = topic.split("/")
        return (len(parts) == 4 and mqtt.usable_in_broker(parts[2])
                and topic == REFUSALS_TOPIC.format(sensor_id=parts[2]))
    if not mqtt.usable_in_broker(username):
        return False
    if action == "publish":
        return topic == READINGS_TOPIC.format(sensor_id=username)
    return topic == REFUSALS_TOPIC.format(sensor_id=username)


async def authorize_mqtt_client(body: dict[str, Any]) -> dict[str, Any]:
    allowed = access_allowed(body["username"], body["topic"], body["action"], _server_user()[0])
    return {"result": "allow" if allowed else "deny"}
