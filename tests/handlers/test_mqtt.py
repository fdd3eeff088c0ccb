"""The MQTT door against a real Mosquitto on a free port, configured by `commonwatt mqtt
sync`'s files: devices publish as their sensors, the server stores, refuses and survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from handlers.app import create_app
from handlers.mqtt_broker import write_broker_files
from handlers.settings import Settings
from tests.databases import fresh_database_url
from tests.factories import DEFAULT_PASSWORD, Api, community_doc, make_user, member_doc
from tests.handlers.test_cli import free_port, stop, wait_healthy
from tests.mosquitto import (
    SERVER_PASSWORD,
    SERVER_USER,
    Device,
    broker_settings,
    running_broker,
    tls_files,
    wait_for,
)

DAY = "2026-11-20"
ALPHA_SENSOR = "alpha-meter-1"
BETA_SENSOR = "beta-meter-1"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only: the MQTT door adds nothing backend-specific to the registry."""
    with fresh_database_url("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def broker_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, broker_port: int) -> Settings:
    return settings.model_copy(update=broker_settings(tmp_path / "mqtt", broker_port))


@pytest.fixture
def broker(settings: Settings, broker_port: int) -> Iterator[Path]:
    """Mosquitto on the files the project writes (no device yet: the server's start and
    every key change rewrite them and make it reload)."""
    assert settings.mqtt_broker_dir is not None
    write_broker_files(settings, [])
    with running_broker(settings.mqtt_broker_dir, broker_port):
        yield settings.mqtt_broker_dir


@pytest.fixture
def api(broker: Path, api: Api) -> Api:
    """The in-process server, its MQTT link connected to the broker."""
    assert api.runtime.mqtt is not None
    wait_for(lambda: api.runtime.mqtt.connected)
    return api


def two_communities() -> list[dict[str, Any]]:
    """Two communities, members of every status; each has one sensor with a device."""
    alpha = community_doc("alpha", {
        "alice": member_doc("alice", sensors=(ALPHA_SENSOR, "alpha-meter-2")),
        "bruno": member_doc("bruno", status="suspended", sensors=("alpha-meter-3",)),
        "chiara": member_doc("chiara", status="pending"),
        "dario": member_doc("dario", status="inactive", sensors=("alpha-meter-4",)),
    })
    beta = community_doc("beta", {
        "elena": member_doc("elena", sensors=(BETA_SENSOR,)),
        "fabio": member_doc("fabio", status="suspended"),
    })
    return [alpha, beta]


def provision(api: Api) -> dict[str, str]:
    """The two communities imported and an ingest key for each community's sensor."""
    api.import_yaml(*two_communities())
    return {ALPHA_SENSOR: new_key(api, "alpha", ALPHA_SENSOR),
            BETA_SENSOR: new_key(api, "beta", BETA_SENSOR)}


def new_key(api: Api, community: str, sensor_id: str) -> str:
    response = api.client.post(
        f"/api/admin/communities/{community}/sensors/{sensor_id}/ingest-key",
        headers=api.admin())
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def readings(minutes: range, *, channel: str = "power", scale: float = 1.0) -> dict[str, Any]:
    """A device push body: one reading a minute of DAY."""
    return {"readings": [{"channel": channel, "ts": f"{DAY}T{minute // 60:02d}:"
                          f"{minute % 60:02d}:00Z", "value": minute * scale}
                         for minute in minutes]}


def stored(api: Api, sensor_id: str, channel: str = "power") -> list[dict[str, Any]]:
    response = api.client.get("/api/telemetry/readings", headers=api.admin(), params={
        "sensor_id": sensor_id, "channel": channel, "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T23:59:00Z", "limit": 1000})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_each_device_publishes_its_own_readings_only(api: Api, broker_port: int) -> None:
    keys = provision(api)
    alpha = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR])
    beta = Device(broker_port, BETA_SENSOR, keys[BETA_SENSOR])
    try:
        assert alpha.connected.is_set() and beta.connected.is_set()
        alpha.publish(readings(range(0, 30)))
        beta.publish(readings(range(0, 10), scale=2.0))
        # The broker's ACL drops a publish to another sensor's topic (MQTT 3.1.1 has no
        # refusal for it): beta's series never sees alpha's values.
        alpha.publish(readings(range(100, 110), scale=-1.0),
                      topic=f"commonwatt/sensors/{BETA_SENSOR}/readings")
        wait_for(lambda: len(stored(api, ALPHA_SENSOR)) == 30
                 and len(stored(api, BETA_SENSOR)) == 10)
        time.sleep(0.5)  # room for a misrouted message to arrive, were it let through
        assert [item["value"] for item in stored(api, ALPHA_SENSOR)] == [
            float(minute) for minute in range(30)]
        assert [item["value"] for item in stored(api, BETA_SENSOR)] == [
            minute * 2.0 for minute in range(10)]
        # A sensor of an unkeyed meter, or of a suspended member, is no MQTT account.
        assert not Device(broker_port, "alpha-meter-3", keys[ALPHA_SENSOR]).connected.is_set()
    finally:
        alpha.close()
        beta.close()
    health = api.client.get("/api/health", headers=api.admin()).json()
    assert health["mqtt"]["connected"] is True and health["mqtt"]["refused"] == 0
    assert health["mqtt"]["stored"] == 40 and health["mqtt"]["last_message_at"] is not None
    anonymous = api.client.get("/api/health").json()
    assert anonymous == {"status": "ok"}


def test_a_rotated_or_revoked_key_is_cut_off(api: Api, broker_port: int) -> None:
    keys = provision(api)
    old = keys[ALPHA_SENSOR]
    assert Device(broker_port, ALPHA_SENSOR, old).connected.is_set()
    rotated = new_key(api, "alpha", ALPHA_SENSOR)
    refused = Device(broker_port, ALPHA_SENSOR, old)
    assert not refused.connected.is_set() and refused.reason is not None
    assert refused.reason.is_failure
    device = Device(broker_port, ALPHA_SENSOR, rotated)
    try:
        assert device.connected.is_set()
        device.publish(readings(range(5)))
        wait_for(lambda: len(stored(api, ALPHA_SENSOR)) == 5)
    finally:
        device.close()
    revoked = api.client.delete(f"/api/admin/communities/alpha/sensors/{ALPHA_SENSOR}/ingest-key",
                                headers=api.admin())
    assert revoked.status_code == 204
    assert not Device(broker_port, ALPHA_SENSOR, rotated).connected.is_set()
    # The other community's device is untouched by alpha's changes.
    assert Device(broker_port, BETA_SENSOR, keys[BETA_SENSOR]).connected.is_set()


def test_readings_over_mqtt_fire_the_communitys_rules_on_every_reading(
    api: Api, broker_port: int,
) -> None:
    keys = provision(api)
    rules = {community: api.client.post(
        f"/api/admin/communities/{community}/rules", headers=api.admin(),
        json={"name": "high", "channel": "power", "operator": "gt", "threshold": 25}).json()
        for community in ("alpha", "beta")}
    alpha = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR])
    try:
        # One message: only its middle readings cross the threshold, none the last one.
        alpha.publish({"readings": [{"channel": "power", "ts": f"{DAY}T10:0{minute}:00Z",
                                     "value": value}
                                    for minute, value in enumerate([10, 30, 40, 5])]})
        wait_for(lambda: len(stored(api, ALPHA_SENSOR)) == 4)

        def fired(community: str) -> list[float]:
            response = api.client.get(
                f"/api/admin/communities/{community}/rules/{rules[community]['id']}/events",
                headers=api.admin())
            assert response.status_code == 200, response.text
            return [event["reading"]["value"] for event in response.json()["items"]]

        wait_for(lambda: len(fired("alpha")) == 2)
        assert sorted(fired("alpha")) == [30.0, 40.0]
        assert fired("beta") == []  # another community's rule never sees alpha's readings
    finally:
        alpha.close()


def test_malformed_payloads_are_refused_with_a_reason_and_nothing_else_is_lost(
        api: Api, broker_port: int) -> None:
    keys = provision(api)
    device = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR])
    try:
        device.publish(readings(range(0, 10)))
        device.publish(b"{not json")
        device.publish({"readings": [{"channel": "power", "ts": f"{DAY}T01:00:00Z"}]})
        device.publish(readings(range(10, 20), channel="warp_drive"))
        device.publish({"readings": [
            {"channel": "power", "ts": f"{DAY}T02:00:00Z", "value": 1.0},
            {"channel": "power", "ts": "2199-12-31T00:00:00Z", "value": 2.0}]})
        device.publish(b'{"readings": [' + b" " * 70_000 + b"]}")
        device.publish(readings(range(20, 30)))
        wait_for(lambda: len(device.refusals) == 5)
    finally:
        device.close()
    wait_for(lambda: len(stored(api, ALPHA_SENSOR)) == 20)
    assert [item["value"] for item in stored(api, ALPHA_SENSOR)] == [
        float(minute) for minute in range(30) if minute < 10 or minute >= 20]
    codes = [notice["code"] for notice in device.refusals]
    assert codes == ["bad_request", "bad_request", "bad_request", "readings_refused",
                     "body_too_large"]
    assert "not valid JSON" in device.refusals[0]["detail"]
    assert "readings/0" in device.refusals[1]["detail"]
    assert device.refusals[3]["errors"] == [
        {"index": 1, "code": "future_timestamp",
         "message": "further in the future than the server accepts"}]
    listed = api.client.get(
        f"/api/admin/communities/alpha/sensors/{ALPHA_SENSOR}/mqtt-refusals",
        headers=api.admin())
    assert listed.status_code == 200, listed.text
    assert [item["code"] for item in listed.json()["items"]] == codes[::-1]
    assert api.client.get("/api/health", headers=api.admin()).json()["mqtt"]["refused"] == 5


def test_refusals_listing_is_for_the_sensors_community_admins(api: Api) -> None:
    provision(api)
    assert api.client.get(
        f"/api/admin/communities/beta/sensors/{ALPHA_SENSOR}/mqtt-refusals",
        headers=api.admin()).status_code == 404
    assert api.client.get(
        f"/api/admin/communities/alpha/sensors/{ALPHA_SENSOR}/mqtt-refusals").status_code == 401
    member = api.client.get(
        f"/api/admin/communities/alpha/sensors/{ALPHA_SENSOR}/mqtt-refusals",
        headers=api.login("alice@example.org"))
    assert member.status_code == 403
    assert member.json()["code"] == "not_an_administrator"
    empty = api.client.get(
        f"/api/admin/communities/alpha/sensors/{ALPHA_SENSOR}/mqtt-refusals",
        headers=api.admin())
    assert empty.json() == {"sensor_id": ALPHA_SENSOR, "community": "alpha", "items": []}


def test_readings_published_while_the_server_is_stopped_are_stored_once_at_start(
        settings: Settings, broker: Path, broker_port: int) -> None:
    first = create_app(settings)
    with first.test_client() as client:
        api = Api(client=client, engine=first.runtime.engine,  # type: ignore[attr-defined]
                  runtime=first.runtime)  # type: ignore[attr-defined]
        wait_for(lambda: api.runtime.mqtt.connected)
        keys = provision(api)
    device = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR])
    try:
        for start in range(0, 200, 20):  # the server is down: the broker keeps them
            device.publish(readings(range(start, start + 20)))
        device.publish(readings(range(0, 20)))  # a repeat: same identities, stored once
    finally:
        device.close()
    second = create_app(settings)
    with second.test_client() as client:
        api = Api(client=client, engine=second.runtime.engine,  # type: ignore[attr-defined]
                  runtime=second.runtime, _tokens=api._tokens)  # type: ignore[attr-defined]
        wait_for(lambda: api.runtime.mqtt.stored == 220)
        assert [item["value"] for item in stored(api, ALPHA_SENSOR)] == [
            float(minute) for minute in range(200)]
    second.runtime.close()  # type: ignore[attr-defined]



def test_a_message_the_store_cannot_take_is_not_acknowledged_and_stored_when_it_can(
        api: Api, broker_port: int) -> None:
    keys = provision(api)
    runtime = api.runtime
    runtime.telemetry.close()  # every write now fails with telemetry_unavailable
    device = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR])
    try:
        device.publish(readings(range(15)))
        time.sleep(2.5)  # tried, failed, tried again: held, not refused, not acknowledged
        assert runtime.mqtt.stored == 0 and runtime.mqtt.refused == 0
        assert device.refusals == []
        with runtime._telemetry_lock:
            runtime._telemetry = None  # the next use opens the store again
        wait_for(lambda: runtime.mqtt.stored == 15)
        assert [item["value"] for item in stored(api, ALPHA_SENSOR)] == [
            float(minute) for minute in range(15)]
    finally:
        device.close()


def server_process(settings: Settings, port: int) -> subprocess.Popen[str]:
    """`commonwatt serve` as a real process with the test's settings."""
    environment = {**os.environ, "COMMONWATT_DATA_DIR": str(settings.data_dir),
                   "COMMONWATT_DATABASE_URL": str(settings.database_url),
                   "COMMONWATT_JWT_SECRET": "test-secret-" + "x" * 40,
                   "COMMONWATT_MQTT_URL": settings.mqtt_url,
                   "COMMONWATT_MQTT_BROKER_DIR": str(settings.mqtt_broker_dir),
                   "COMMONWATT_MQTT_BROKER_PID_FILE": str(settings.mqtt_broker_pid_file),
                   "COMMONWATT_TELEMETRY_COMPACT_INTERVAL_SECONDS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)


def test_kill_9_of_the_server_loses_nothing_and_stores_each_reading_once(
        settings: Settings, broker: Path, broker_port: int) -> None:
    first = create_app(settings)
    with first.test_client() as client:
        api = Api(client=client, engine=first.runtime.engine,  # type: ignore[attr-defined]
                  runtime=first.runtime)  # type: ignore[attr-defined]
        wait_for(lambda: api.runtime.mqtt.connected)
        keys = provision(api)
        make_user(api.engine, "ops@example.org", role="admin")
    devices = [Device(broker_port, sensor_id, keys[sensor_id])
               for sensor_id in (ALPHA_SENSOR, BETA_SENSOR)]
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    server = server_process(settings, port)
    try:
        wait_healthy(base, server, time.monotonic() + 90)
        # 960 readings a sensor in 48 messages; the server is killed half-way through.
        for index, start in enumerate(range(0, 960, 20)):
            for device in devices:
                device.publish(readings(range(start, start + 20)))
            if index == 24:
                os.kill(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
        stop(server)
        server = server_process(settings, port)
        wait_healthy(base, server, time.monotonic() + 90)
        token = httpx.post(f"{base}/auth/login", json={
            "email": "ops@example.org", "password": DEFAULT_PASSWORD}).json()["access_token"]

        def count(sensor_id: str) -> list[float]:
            response = httpx.get(f"{base}/telemetry/readings", params={
                "sensor_id": sensor_id, "channel": "power", "from": f"{DAY}T00:00:00Z",
                "to": f"{DAY}T23:59:59Z", "limit": 1000},
                headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            return [item["value"] for item in response.json()["items"]]

        wait_for(lambda: len(count(ALPHA_SENSOR)) == 960 and len(count(BETA_SENSOR)) == 960,
                 timeout=60, step=0.5)
        for sensor_id in (ALPHA_SENSOR, BETA_SENSOR):
            assert count(sensor_id) == [float(minute) for minute in range(960)]
    finally:
        for device in devices:
            device.close()
        stop(server)


def test_the_server_and_the_devices_speak_tls_to_the_broker(
        settings: Settings, broker_port: int, tmp_path: Path) -> None:
    ca_cert, cert, key = tls_files(tmp_path / "tls")
    settings = settings.model_copy(update={
        "mqtt_url": f"mqtts://{SERVER_USER}:{SERVER_PASSWORD}@127.0.0.1:{broker_port}",
        "mqtt_ca_file": ca_cert})
    assert settings.mqtt_broker_dir is not None
    write_broker_files(settings, [])
    config = settings.mqtt_broker_dir / "mosquitto.conf"
    # The TLS listener: the project's configuration plus certfile and keyfile (README).
    config.write_text(config.read_text() + f"certfile {cert}\nkeyfile {key}\n")
    with running_broker(settings.mqtt_broker_dir, broker_port):
        app = create_app(settings)
        with app.test_client() as client:
            api = Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                      runtime=app.runtime)  # type: ignore[attr-defined]
            wait_for(lambda: api.runtime.mqtt.connected)
            keys = provision(api)
            assert not Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR]).connected.is_set()
            device = Device(broker_port, ALPHA_SENSOR, keys[ALPHA_SENSOR], ca_file=ca_cert)
            try:
                device.publish(readings(range(12)))
                wait_for(lambda: len(stored(api, ALPHA_SENSOR)) == 12)
            finally:
                device.close()
        app.runtime.close()  # type: ignore[attr-defined]
