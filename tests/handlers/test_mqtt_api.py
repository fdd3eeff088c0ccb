"""The MQTT door's operations: the internal authentication and ACL endpoints an HTTP-auth
broker (EMQX) calls, the health of a server without MQTT, and `commonwatt mqtt sync`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from handlers.cli import main
from handlers.settings import Settings
from tests.factories import Api, community_doc, member_doc, to_yaml
from tests.mosquitto import SERVER_PASSWORD, SERVER_USER, free_port

SECRET = "broker-secret-of-the-tests"
BROKER = {"X-Broker-Secret": SECRET}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Nothing listens on the port: the server's link keeps trying, the endpoints answer.
    return settings.model_copy(update={
        "mqtt_broker_secret": SecretStr(SECRET),
        "mqtt_url": f"mqtt://{SERVER_USER}:{SERVER_PASSWORD}@127.0.0.1:{free_port()}"})


def provision(api: Api) -> str:
    api.import_yaml(
        community_doc("alpha", {"alice": member_doc("alice", sensors=("alpha-meter-1",)),
                                "bruno": member_doc("bruno", status="suspended",
                                                    sensors=("alpha-meter-2",))}),
        community_doc("beta", {"elena": member_doc("elena", sensors=("beta-meter-1",))}))
    for community, sensor_id in (("alpha", "alpha-meter-2"), ("beta", "beta-meter-1")):
        api.client.post(f"/api/admin/communities/{community}/sensors/{sensor_id}/ingest-key",
                        headers=api.admin())
    response = api.client.post("/api/admin/communities/alpha/sensors/alpha-meter-1/ingest-key",
                               headers=api.admin())
    key: str = response.json()["key"]
    return key


def login(api: Api, username: str, password: str) -> str:
    response = api.client.post("/api/internal/mqtt/authenticate", headers=BROKER,
                               json={"username": username, "password": password,
                                     "clientid": "c1"})
    assert response.status_code == 200, response.text
    assert response.json()["is_superuser"] is False
    result: str = response.json()["result"]
    return result


def access(api: Api, username: str, topic: str, action: str) -> str:
    response = api.client.post("/api/internal/mqtt/authorize", headers=BROKER,
                               json={"username": username, "topic": topic, "action": action})
    assert response.status_code == 200, response.text
    result: str = response.json()["result"]
    return result


def test_a_device_logs_in_with_its_current_key_only(api: Api) -> None:
    key = provision(api)
    assert login(api, "alpha-meter-1", key) == "allow"
    assert login(api, "alpha-meter-1", key + "x") == "deny"
    assert login(api, "beta-meter-1", key) == "deny"
    assert login(api, "nope", key) == "deny"
    rotated = api.client.post("/api/admin/communities/alpha/sensors/alpha-meter-1/ingest-key",
                              headers=api.admin()).json()["key"]
    assert login(api, "alpha-meter-1", key) == "deny"
    assert login(api, "alpha-meter-1", rotated) == "allow"
    assert login(api, SERVER_USER, SERVER_PASSWORD) == "allow"
    assert login(api, SERVER_USER, "wrong") == "deny"


def test_a_device_publishes_and_subscribes_on_its_own_topics_only(api: Api) -> None:
    provision(api)
    assert access(api, "alpha-meter-1", "commonwatt/sensors/alpha-meter-1/readings",
                  "publish") == "allow"
    assert access(api, "alpha-meter-1", "commonwatt/sensors/beta-meter-1/readings",
                  "publish") == "deny"
    assert access(api, "alpha-meter-1", "commonwatt/sensors/alpha-meter-1/refusals",
                  "subscribe") == "allow"
    assert access(api, "alpha-meter-1", "commonwatt/sensors/+/readings", "subscribe") == "deny"
    assert access(api, "alpha-meter-1", "commonwatt/sensors/alpha-meter-1/refusals",
                  "publish") == "deny"
    assert access(api, SERVER_USER, "commonwatt/sensors/+/readings", "subscribe") == "allow"
    assert access(api, SERVER_USER, "commonwatt/sensors/beta-meter-1/refusals",
                  "publish") == "allow"
    assert access(api, SERVER_USER, "commonwatt/sensors/beta-meter-1/readings",
                  "publish") == "deny"
    assert access(api, SERVER_USER, "#", "subscribe") == "deny"


def test_the_internal_endpoints_need_the_broker_secret(api: Api) -> None:
    key = provision(api)
    body = {"username": "alpha-meter-1", "password": key}
    for headers in ({}, {"X-Broker-Secret": SECRET + "x"}, api.admin()):
        response = api.client.post("/api/internal/mqtt/authenticate", json=body,
                                   headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    unsigned = api.client.post("/api/internal/mqtt/authorize", json={
        "username": "alpha-meter-1", "topic": "commonwatt/sensors/alpha-meter-1/readings",
        "action": "publish"})
    assert unsigned.status_code == 401
    malformed = api.client.post("/api/internal/mqtt/authorize", headers=BROKER,
                                json={"username": "a", "topic": "t", "action": "delete"})
    assert malformed.status_code == 400
    missing = api.client.post("/api/internal/mqtt/authenticate", headers=BROKER,
                              json={"username": "alpha-meter-1"})
    assert missing.status_code == 400


def test_without_a_broker_secret_nobody_passes(settings: Settings, tmp_path: Path) -> None:
    from handlers.app import create_app

    app = create_app(settings.model_copy(update={"mqtt_broker_secret": None, "mqtt_url": ""}))
    with app.test_client() as client:
        response = client.post("/api/internal/mqtt/authenticate", headers=BROKER,
                               json={"username": "a", "password": "b"})
        assert response.status_code == 401
        assert app.runtime.mqtt is None  # type: ignore[attr-defined]
    app.runtime.close()  # type: ignore[attr-defined]


def test_mqtt_sync_writes_mosquittos_files_from_the_registry(
        environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mqtt", "sync"]) == 2
    assert "COMMONWATT_MQTT_BROKER_DIR" in capsys.readouterr().err
    broker_dir = tmp_path / "broker"
    monkeypatch.setenv("COMMONWATT_MQTT_BROKER_DIR", str(broker_dir))
    monkeypatch.setenv("COMMONWATT_MQTT_URL",
                       f"mqtt://{SERVER_USER}:{SERVER_PASSWORD}@127.0.0.1:18830")
    path = tmp_path / "alpha.yaml"
    path.write_bytes(to_yaml(community_doc("alpha")))
    assert main(["import", str(path)]) == 0
    capsys.readouterr()
    assert main(["mqtt", "sync"]) == 0
    assert "(0 devices)" in capsys.readouterr().out
    passwd = (broker_dir / "passwd").read_text()
    assert passwd.startswith(f"{SERVER_USER}:$7$101$") and SERVER_PASSWORD not in passwd
    assert (broker_dir / "passwd").stat().st_mode & 0o077 == 0
    acl = (broker_dir / "acl").read_text()
    assert "pattern write commonwatt/sensors/%u/readings" in acl
    assert "pattern read commonwatt/sensors/%u/refusals" in acl
    config = (broker_dir / "mosquitto.conf").read_text()
    assert "listener 18830 127.0.0.1" in config and "allow_anonymous false" in config
    assert f"password_file {broker_dir.resolve() / 'passwd'}" in config


def test_health_without_mqtt_has_no_mqtt_part(settings: Settings) -> None:
    from handlers.app import create_app

    app = create_app(settings.model_copy(update={"mqtt_url": ""}))
    with app.test_client() as client:
        api = Api(client=client, engine=app.runtime.engine)  # type: ignore[attr-defined]
        health = client.get("/api/health", headers=api.admin()).json()
        assert health["status"] == "ok" and "mqtt" not in health
    app.runtime.close()  # type: ignore[attr-defined]
