"""A real Mosquitto for tests and benchmarks: started on a free port with the configuration
`commonwatt mqtt sync` writes, and MQTT clients acting as devices."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho

from tests.environment import skip_or_fail

SERVER_USER = "commonwatt-server"
SERVER_PASSWORD = "server-password-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    """The broker's path; skips (fails under CI) when Mosquitto is not installed."""
    found = shutil.which("mosquitto") or next(
        (path for path in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
         if Path(path).is_file()), None)
    if found is None:
        skip_or_fail("mosquitto is not installed")
    assert found is not None
    return found


def broker_settings(directory: Path, port: int) -> dict[str, Any]:
    """The MQTT settings of a server using the broker of `directory` on `port`."""
    return {"mqtt_url": f"mqtt://{SERVER_USER}:{SERVER_PASSWORD}@127.0.0.1:{port}",
            "mqtt_broker_dir": directory, "mqtt_broker_pid_file": directory / "mosquitto.pid"}


@contextmanager
def running_broker(directory: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Mosquitto on the mosquitto.conf the project wrote into `directory`, until the block
    ends."""
    process = subprocess.Popen([mosquitto_binary(), "-c", str(directory / "mosquitto.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    assert process.stderr is not None
                    raise AssertionError("mosquitto did not start: "
                                         + process.stderr.read().decode()) from None
                time.sleep(0.05)
        pid_file = directory / "mosquitto.pid"
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


class Device:
    """An MQTT client publishing as one sensor (username: the sensor id, password: its key)."""

    def __init__(self, port: int, sensor_id: str, key: str, *, client_id: str | None = None,
                 ca_file: Path | None = None) -> None:
        self.sensor_id = sensor_id
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.reason: Any = None
        self.refusals: list[dict[str, Any]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"device-{sensor_id}",
                                  protocol=paho.MQTTv311)
        self.client.username_pw_set(sensor_id, key)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.answered.wait(10)
        if not self.connected.is_set():
            self.close()  # refused: no retries left running behind the test

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason_code: Any,
                    _properties: Any) -> None:
        self.reason = reason_code
        if not reason_code.is_failure:
            client.subscribe(f"commonwatt/sensors/{self.sensor_id}/refusals", qos=1)
            self.connected.set()
        self.answered.set()

    def _on_message(self, _client: paho.Client, _userdata: Any,
                    message: paho.MQTTMessage) -> None:
        self.refusals.append(orjson.loads(message.payload))

    def publish(self, payload: Any, *, topic: str | None = None) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        info = self.client.publish(topic or f"commonwatt/sensors/{self.sensor_id}/readings",
                                   body, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(condition: Any, timeout: float = 20.0, step: float = 0.05) -> Any:
    """The first truthy value of `condition()` within `timeout` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last value {value!r}")
        time.sleep(step)


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it, made with openssl:
    (CA certificate, server certificate, server key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("openssl is not installed")
    assert openssl is not None
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key = directory / "server.crt", directory / "server.key"
    request = directory / "server.csr"
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
             "-days", "2", "-subj", "/CN=commonwatt-test-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
             "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", directory / "san.ext"]):
        subprocess.run([openssl, *map(str, command)], check=True, capture_output=True)
    return ca_cert, cert, key
