"""The MQTT benchmark: readings/s from many simulated devices over MQTT (QoS 1) into the
store, beside the same readings over the HTTP device push, in one run.

    python -m tests.benchmarks.mqtt [--devices 50] [--messages 20] [--readings 50]
                                    [--http-clients 8]

A fresh data directory; the registry provisioned in process (one community, a member and a
keyed meter per device, an admin); Mosquitto started on a free port with the files
`commonwatt mqtt sync` writes; the real server as a subprocess (`python -m handlers.cli
serve`) subscribed to it. Then every device publishes its messages with QoS 1 at once (one
paho client each), timed until the server's /health counts every reading stored; then the
same number of readings, on another day, as HTTP device pushes from keep-alive clients,
timed until the last answer (each answer means stored). It prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

from handlers.app import create_app, create_runtime
from handlers.mqtt_broker import sync_broker
from handlers.settings import Settings
from tests.factories import DEFAULT_PASSWORD, Api, community_doc, make_user, member_doc
from tests.handlers.test_cli import stop, wait_healthy
from tests.mosquitto import Device, broker_settings, free_port, running_broker, wait_for

ADMIN = "bench-admin@commonwatt.test"
JWT_SECRET = "bench-secret-" + "x" * 40


def body(day: str, message: int, size: int) -> dict[str, Any]:
    """One device push: `size` one-second readings of a minute-aligned block of `day`."""
    start = message * size
    return {"readings": [{"channel": "power",
                          "ts": f"{day}T{(start + i) // 3600 % 24:02d}:"
                                f"{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z",
                          "value": float(start + i)} for i in range(size)]}


def provision(settings: Settings, devices: int) -> dict[str, str]:
    """The community, a keyed meter per device, and the admin; each device's key."""
    members = {f"m{index:04d}": member_doc(f"m{index:04d}", sensors=(f"bench-s{index:04d}",))
               for index in range(devices)}
    app = create_app(settings.model_copy(update={"mqtt_url": "", "mqtt_broker_dir": None}))
    keys = {}
    with app.test_client() as client:
        api = Api(client=client, engine=app.runtime.engine)  # type: ignore[attr-defined]
        api.import_yaml(community_doc("bench", members))
        for index in range(devices):
            sensor_id = f"bench-s{index:04d}"
            answer = client.post(f"/api/admin/communities/bench/sensors/{sensor_id}/ingest-key",
                                 headers=api.admin())
            keys[sensor_id] = answer.json()["key"]
        make_user(api.engine, ADMIN, role="admin")
    app.runtime.close()  # type: ignore[attr-defined]
    return keys


def server_process(settings: Settings, port: int) -> subprocess.Popen[str]:
    environment = {**os.environ, "COMMONWATT_DATA_DIR": str(settings.data_dir),
                   "COMMONWATT_JWT_SECRET": JWT_SECRET, "COMMONWATT_LOG_LEVEL": "WARNING",
                   "COMMONWATT_MQTT_URL": settings.mqtt_url,
                   "COMMONWATT_MQTT_BROKER_DIR": str(settings.mqtt_broker_dir),
                   "COMMONWATT_MQTT_BROKER_PID_FILE": str(settings.mqtt_broker_pid_file),
                   "COMMONWATT_TELEMETRY_COMPACT_INTERVAL_SECONDS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=environment)


def mqtt_phase(keys: dict[str, str], broker_port: int, base: str, token: str,
               args: argparse.Namespace) -> float:
    """Seconds from the first publish to every reading stored."""
    devices = [Device(broker_port, sensor_id, key) for sensor_id, key in keys.items()]
    payloads = [body("2026-11-10", message, args.readings) for message in range(args.messages)]
    headers = {"Authorization": f"Bearer {token}"}
    before = httpx.get(f"{base}/health", headers=headers).json()["mqtt"]["stored"]
    total = len(devices) * args.messages * args.readings
    started = time.perf_counter()

    def publish_all(device: Device) -> None:
        sent = [device.client.publish(f"commonwatt/sensors/{device.sensor_id}/readings",
                                      orjson.dumps(payload), qos=1) for payload in payloads]
        for info in sent:
            info.wait_for_publish(60)

    threads = [threading.Thread(target=publish_all, args=(device,)) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published = time.perf_counter() - started
    wait_for(lambda: httpx.get(f"{base}/health", headers=headers).json()["mqtt"]["stored"]
             - before >= total, timeout=600, step=0.02)
    elapsed = time.perf_counter() - started
    for device in devices:
        device.close()
    print(f"  (all PUBACKs from the broker after {published:.2f} s)", file=sys.stderr)
    return elapsed


def http_phase(keys: dict[str, str], base: str, args: argparse.Namespace) -> float:
    """Seconds to push the same number of readings over HTTP (another day)."""
    payloads = [body("2026-11-11", message, args.readings) for message in range(args.messages)]
    work = [(sensor_id, key, payload) for payload in payloads for sensor_id, key in keys.items()]
    local = threading.local()

    def push(item: tuple[str, str, dict[str, Any]]) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=60)
        sensor_id, key, payload = item
        answer = local.client.post(f"{base}/webhook/sensors/{sensor_id}", json=payload,
                                   headers={"X-Ingest-Key": key})
        return answer.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(args.http_clients) as pool:
        statuses = list(pool.map(push, work))
    elapsed = time.perf_counter() - started
    failed = [status for status in statuses if status != 200]
    if failed:
        print(f"  HTTP: {len(failed)} pushes not stored (statuses {sorted(set(failed))})",
              file=sys.stderr)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.mqtt")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="messages per device")
    parser.add_argument("--readings", type=int, default=50, help="readings per message")
    parser.add_argument("--http-clients", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cw-mqtt-bench-") as temp:
        root = Path(temp)
        broker_port, port = free_port(), free_port()
        settings = Settings(data_dir=root / "var", jwt_secret=SecretStr(JWT_SECRET),
                            telemetry_compact_interval_seconds=0,
                            **broker_settings(root / "mqtt", broker_port))
        print("provisioning ...", file=sys.stderr)
        keys = provision(settings, args.devices)
        runtime = create_runtime(settings)
        sync_broker(settings, runtime.engine)
        runtime.engine.dispose()
        base = f"http://127.0.0.1:{port}/api"
        with running_broker(root / "mqtt", broker_port):
            server = server_process(settings, port)
            try:
                wait_healthy(base, server, time.monotonic() + 90)
                token = httpx.post(f"{base}/auth/login", json={
                    "email": ADMIN, "password": DEFAULT_PASSWORD}).json()["access_token"]
                wait_for(lambda: httpx.get(f"{base}/health", headers={
                    "Authorization": f"Bearer {token}"}).json()["mqtt"]["connected"])
                print("MQTT phase ...", file=sys.stderr)
                mqtt_seconds = mqtt_phase(keys, broker_port, base, token, args)
                print("HTTP phase ...", file=sys.stderr)
                http_seconds = http_phase(keys, base, args)
            finally:
                stop(server)
    total = args.devices * args.messages * args.readings
    messages = args.devices * args.messages
    print(f"\nCommonWatt MQTT benchmark: {args.devices} devices x {args.messages} messages x "
          f"{args.readings} readings = {total:,} readings per door; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'door':<34}{'seconds':>10}{'readings/s':>14}{'messages/s':>14}")
    for name, seconds in ((f"MQTT, QoS 1 ({args.devices} devices)", mqtt_seconds),
                          (f"HTTP device push ({args.http_clients} clients)", http_seconds)):
        print(f"{name:<34}{seconds:>10.2f}{total / seconds:>14,.0f}"
              f"{messages / seconds:>14,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
