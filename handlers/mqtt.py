"""The MQTT door: the server's subscriber to devices' readings topics.

paho-mqtt 2.x (not aiomqtt): it acknowledges a QoS 1 message only when told (manual_ack),
its network loop runs in its own thread beside the server's event loop, and it reconnects by
itself. Messages go to worker threads, a sensor always to the same one (its messages stay in
order); each is stored through the device push's write path (ingest_push, group commit) and
acknowledged to the broker only after its commit, or after its refusal is kept and published.
A store that fails leaves the message unacknowledged and tried again: nothing is lost.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
import zlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema_rs
import orjson
import paho.mqtt.client as paho

import openapi
from handlers.mqtt_broker import REFUSALS_TOPIC, SUBSCRIPTION, broker_address
from handlers.rule_firing import evaluate_stored
from storage.mqtt import device_account, record_refusal
from storage.telemetry.errors import MalformedUpload, ReadingsRefused, TooManyReadings
from storage.telemetry.ingest import ingest_push

if TYPE_CHECKING:
    from handlers.runtime import Runtime

LOG = logging.getLogger("commonwatt.mqtt")
MAX_PAYLOAD_BYTES = 64 * 1024  # the HTTP device push's body limit
RETRY_SECONDS = 1.0


class Refused(Exception):
    """A message refused with a code and reason (the HTTP push's code for the same fault)."""

    def __init__(self, code: str, detail: str, errors: list[dict[str, Any]] | None = None,
                 refused: int = 1) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors or []
        self.refused = refused


@lru_cache(maxsize=1)
def _payload_validator() -> Any:
    """The device push's body schema (WebhookReadings), checked as Connexion checks it."""
    schemas = openapi.bundled_spec()["components"]["schemas"]
    return jsonschema_rs.Draft4Validator({"$ref": "#/components/schemas/WebhookReadings",
                                          "components": {"schemas": schemas}})


def checked_readings(payload: bytes | bytearray) -> list[dict[str, Any]]:
    """The readings of a payload shaped as the HTTP device push's body; Refused if not."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Refused("body_too_large", f"the payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise Refused("bad_request",
                      f"the payload is not valid JSON: {str(error)[:120]}") from error
    for invalid in _payload_validator().iter_errors(document):
        where = "/".join(str(part) for part in invalid.instance_path)
        raise Refused("bad_request", f"{where or 'payload'}: {invalid.message[:200]}")
    readings: list[dict[str, Any]] = document["readings"]
    return readings


def sensor_of(topic: str) -> str | None:
    """The sensor id of a readings topic, None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["commonwatt", "sensors"] and parts[3] == "readings":
        return parts[2] or None
    return None


class MqttLink:
    """The server's connection to the broker, its workers, and what /health shows of it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.address = broker_address(settings.mqtt_url)
        self.connected = False
        self.last_message_at: datetime | None = None
        self.refused = 0
        self.stored = 0
        self._stopping = threading.Event()
        self._queues: list[queue.Queue[paho.MQTTMessage | None]] = [
            queue.Queue() for _ in range(settings.mqtt_workers)]
        self._workers = [threading.Thread(target=self._work, args=(inbox,), daemon=True,
                                          name=f"mqtt-worker-{index}")
                         for index, inbox in enumerate(self._queues)]
        self.client = self._client()

    def _client(self) -> paho.Client:
        settings = self.runtime.settings
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=settings.mqtt_client_id, clean_session=False,
                             protocol=paho.MQTTv311, manual_ack=True)
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file
                           else None, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect (in the background: a broker that is down is retried) and start workers."""
        for worker in self._workers:
            worker.start()
        self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect; messages not yet stored stay unacknowledged, for the next start."""
        self._stopping.set()
        self.client.disconnect()
        self.client.loop_stop()
        for inbox in self._queues:
            inbox.put(None)
        for worker in self._workers:
            worker.join(timeout=10)
        self.connected = False

    def status(self) -> dict[str, Any]:
        """The link as /health shows it."""
        return {"status": "ok" if self.connected else "error", "connected": self.connected,
                "last_message_at": None if self.last_message_at is None
                else self.last_message_at.isoformat().replace("+00:00", "Z"),
                "stored": self.stored, "refused": self.refused}

    # -- paho's callbacks (its network thread) ------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any,
                    reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            LOG.warning("MQTT broker refused the connection: %s", reason_code)
            return
        self.connected = True
        client.subscribe(SUBSCRIPTION, qos=1)
        LOG.info("MQTT connected to %s:%d", self.address.host, self.address.port)

    def _on_disconnect(self, _client: paho.Client, _userdata: Any, _flags: Any,
                       reason_code: Any, _properties: Any) -> None:
        self.connected = False
        if not self._stopping.is_set():
            LOG.warning("MQTT link lost (%s); reconnecting", reason_code)

    def _on_message(self, _client: paho.Client, _userdata: Any,
                    message: paho.MQTTMessage) -> None:
        self.last_message_at = datetime.now(UTC)
        shard = zlib.crc32(message.topic.encode("utf-8", "replace")) % len(self._queues)
        self._queues[shard].put(message)

    # -- workers --------------------------------------------------------------------------

    def _work(self, inbox: queue.Queue[paho.MQTTMessage | None]) -> None:
        while True:
            message = inbox.get()
            if message is None or self._stopping.is_set():
                return
            while not self._stopping.is_set():
                try:
                    self._handle(message)
                    break
                except Exception:  # a store or registry fault: the message is tried again
                    LOG.exception("MQTT message on %s not stored; trying again",
                                  message.topic)
                    self._stopping.wait(RETRY_SECONDS)
            else:
                return
            self.client.ack(message.mid, message.qos)

    def _handle(self, message: paho.MQTTMessage) -> None:
        """Store or refuse one message (raises only for faults worth another try)."""
        sensor_id = sensor_of(message.topic)
        if sensor_id is None:
            return  # not a readings topic: the subscription never sends one
        settings = self.runtime.settings
        with self.runtime.session(read_only=True) as session:
            account = device_account(session, sensor_id=sensor_id)
        try:
            # As the HTTP push: the key first, then the body, then the readings.
            if account is None:
                raise Refused("invalid_ingest_key", "the sensor has no ingest key held by an "
                              "active member of its community")
            readings = checked_readings(message.payload)
            try:
                result = ingest_push(
                    self.runtime.telemetry, sensor_id=sensor_id,
                    community_id=account.community_id, readings=readings,
                    max_future_ms=settings.telemetry_max_future_seconds * 1000)
            except ReadingsRefused as error:
                raise Refused(error.code, error.detail, error.refusals,
                              error.refused) from error
            except (MalformedUpload, TooManyReadings) as error:
                raise Refused(error.code, error.detail) from error
            self.stored += len(readings)
            # As every ingest path: the rules see the committed readings.
            evaluate_stored(self.runtime, result.readings, {sensor_id: account.community_id})
        except Refused as refusal:
            self._refuse(sensor_id, account.community_id if account else None, refusal)

    def _refuse(self, sensor_id: str, community_id: int | None, refusal: Refused) -> None:
        """Keep the refusal for operators, tell the device on its refusals topic, count it."""
        with self.runtime.session() as session:
            kept = record_refusal(session, sensor_id=sensor_id, community_id=community_id,
                                  code=refusal.code,
                                  detail=refusal.detail, errors=refusal.errors,
                                  keep=self.runtime.settings.mqtt_refusals_kept)
            received_at = kept.received_at
        notice = {"code": refusal.code, "detail": refusal.detail, "errors": refusal.errors,
                  "refused": refusal.refused,
                  "received_at": received_at.isoformat().replace("+00:00", "Z")}
        self.client.publish(REFUSALS_TOPIC.format(sensor_id=sensor_id), orjson.dumps(notice),
                            qos=1)
        self.refused += 1
        LOG.info("MQTT message of sensor %s refused: %s", sensor_id, refusal.code)


def wait_connected(link: MqttLink, timeout: float) -> bool:
    """Whether the link connects within `timeout` seconds (for tests and the CLI)."""
    deadline = time.monotonic() + timeout
    while not link.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return link.connected

