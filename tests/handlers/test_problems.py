"""Errors as problem+json: framework errors, the body cap, and 500s with a request id."""

from __future__ import annotations

import logging

import pytest

from tests.factories import Api


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


def test_nul_characters_are_400_on_every_backend(api: Api) -> None:
    headers = api.admin()
    for url in ("/api/admin/communities/a%00b", "/api/admin/communities?key=a%00b"):
        response = api.client.get(url, headers=headers)
        assert response.status_code == 400, url
        assert response.json()["code"] == "invalid_value"
    response = api.client.post("/api/admin/lookup/assets-by-sensor-ids", json=["a\x00b"],
                               headers=headers)
    assert response.status_code in {200, 400}
    assert response.headers["content-type"].startswith("application/")


def test_chunked_json_body_is_read_like_any_other(api: Api) -> None:
    def chunks() -> object:
        yield b'{"email": "nobody@example.org", '
        yield b'"password": "not the password"}'

    response = api.client.post("/api/auth/login", content=chunks(),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
