"""Errors as problem+json: framework errors, the body cap, and 500s with a request id."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

import openapi
from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api, community_doc, member_doc


def test_unknown_path_and_wrong_method_are_problems(api: Api) -> None:
    for response, status, code in (
        (api.client.get("/api/no-such-thing"), 404, "not_found"),
        (api.client.delete("/api/version"), 405, "method_not_allowed"),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == code and body["status"] == status and body["title"]


def test_every_response_carries_a_request_id(api: Api) -> None:
    generated = api.client.get("/api/version").headers["x-request-id"]
    assert len(generated) == 32
    echoed = api.client.get("/api/version", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = api.client.get("/api/version", headers={"X-Request-ID": "a\tb" * 50})
    assert hostile.headers["x-request-id"] != "a\tb" * 50


def test_streamed_body_over_the_cap_is_413_without_content_length(api: Api) -> None:
    def chunks() -> object:
        for _ in range(40):
            yield b" " * 65536

    response = api.client.post("/api/auth/login", content=chunks(),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_unexpected_error_is_a_500_problem_with_a_logged_request_id(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("handlers.meta.database_status", broken)
    with caplog.at_level(logging.ERROR, logger="commonwatt"):
        response = api.client.get("/api/health", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-42"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert any("req-42" in record.getMessage() for record in caplog.records)


def test_nul_characters_are_refused_on_every_backend(api: Api) -> None:
    headers = api.admin()
    for url in ("/api/admin/communities/a%00b", "/api/admin/communities?key=a%00b"):
        response = api.client.get(url, headers=headers)
        assert response.status_code == 422, url  # a rec-registry operation: never 400
        body = response.json()
        assert body["code"] == "invalid_value" and body["detail"][0]["type"] == "invalid_value"
    response = api.client.post("/api/admin/lookup/assets-by-sensor-ids",
                               json={"sensor_ids": ["a\x00b"]}, headers=headers)
    # a rec-registry operation: the spec's pattern refuses a NUL in a sensor id on every
    # backend, as the rec-registry refuses a request (422, listing where)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert response.json()["detail"][0]["loc"] == ["body", "sensor_ids", 0]
    assert response.headers["content-type"] == "application/json"


def test_chunked_json_body_is_read_like_any_other(api: Api) -> None:
    def chunks() -> object:
        yield b'{"email": "nobody@example.org", '
        yield b'"password": "not the password"}'

    response = api.client.post("/api/auth/login", content=chunks(),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_body_errors_point_at_the_value_without_echoing_it(api: Api) -> None:
    response = api.client.post("/api/auth/login",
                               json={"email": "a@b.c", "password": ["hunter2-secret"]})
    assert response.status_code == 400
    assert response.json()["detail"] == "body/password: fails 'type' (\"string\")"
    assert "hunter2-secret" not in response.text


def test_deeply_nested_json_is_400(api: Api) -> None:
    body = b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}'
    response = api.client.post("/api/auth/login", content=body,
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


def test_out_of_range_path_integer_is_400(api: Api) -> None:
    response = api.client.delete("/api/tokens/99999999999999999999", headers=api.admin())
    assert response.status_code == 400
    assert "token_id" in response.json()["detail"]


def test_busy_database_is_503_with_retry_after(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def locked(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    headers = api.admin()
    monkeypatch.setattr("storage.tokens.list_api_tokens", locked)
    response = api.client.get("/api/tokens", headers=headers)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "2"


BODY_OPERATIONS = [(method.upper(), path, operation)
                   for path, item in openapi.bundled_spec()["paths"].items()
                   for method, operation in item.items() if "requestBody" in operation]


@pytest.mark.parametrize(("method", "path", "operation"), BODY_OPERATIONS,
                         ids=[operation["operationId"] for _, _, operation in BODY_OPERATIONS])
def test_every_body_taking_operation_answers_413_and_415(
    api: Api, method: str, path: str, operation: dict
) -> None:
    # A number where the path takes an id (endpoints, dashboards, rules...), else a key.
    url = "/api" + re.sub(r"\{[^}]+\}", "x", re.sub(r"\{(endpoint|dashboard|widget|rule|job|"
                                                    r"token)_id\}", "1", path))
    headers = {} if operation.get("security") == [] else api.admin()
    if operation.get("security") == [{"brokerSecret": []}]:
        secret = "broker-secret-" + "s" * 20
        api.runtime.settings = api.runtime.settings.model_copy(
            update={"mqtt_broker_secret": SecretStr(secret)})
        headers = {"X-Broker-Secret": secret}
    if operation.get("security") == [{"ingestKey": []}]:
        api.import_yaml(community_doc("c", {"m": member_doc("m", sensors=("x",))}))
        created = api.client.post("/api/admin/communities/c/sensors/x/ingest-key",
                                  headers=api.admin())
        headers = {"X-Ingest-Key": created.json()["key"]}
    media_type = next(iter(operation["requestBody"]["content"]))
    wrong = api.client.request(method, url, content=b"<a/>",
                               headers={**headers, "Content-Type": "application/xml"})
    assert wrong.status_code == 415, wrong.text
    assert wrong.json()["code"] == "unsupported_media_type"
    huge = api.client.request(method, url, content=b" " * (3 * 1024 * 1024),
                              headers={**headers, "Content-Type": media_type})
    assert huge.status_code == 413, huge.text
    assert huge.json()["code"] == "body_too_large"
    for status in ("413", "415"):
        assert status in operation["responses"], f"{operation['operationId']} documents {status}"


def test_one_400_names_every_missing_required_parameter(api: Api) -> None:
    answer = api.client.get("/api/telemetry/readings?sensor_id=sens-0010", headers=api.admin())
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["code"] == "bad_request"
    assert problem["detail"] == "missing required query parameters: 'channel', 'from', 'to'"


def test_a_telemetry_file_held_by_another_process_shows_no_path_or_pid(
        settings: Settings, tmp_path: Path) -> None:
    path = settings.telemetry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(120)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        app = create_app(settings)
        with app.test_client() as client:
            api = Api(client=client, engine=app.runtime.engine)  # type: ignore[attr-defined]
            # Only an authenticated caller sees the components' details.
            health = client.get("/api/health", headers=api.admin()).json()
            api.import_yaml(community_doc("a", members={
                "x": member_doc("x", sensors=("sens-0010",))}))
            answer = client.get("/api/telemetry/channels", headers=api.admin())
            latest = client.get("/api/telemetry/latest?sensor_id=sens-0010",
                                headers=api.admin())
        app.runtime.close()  # type: ignore[attr-defined]
    finally:
        holder.kill()
        holder.wait()
    shown = json.dumps([health, latest.json(), answer.json()])
    assert latest.status_code == 503 and latest.json()["code"] == "telemetry_unavailable"
    assert health["telemetry"]["status"] == "error"
    assert str(tmp_path) not in shown and "PID" not in shown
    assert str(holder.pid) not in shown
