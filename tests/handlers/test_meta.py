"""GET /health and GET /version."""

from __future__ import annotations

import yaml
from sqlalchemy import text

import openapi
from storage.migrate import head_revision
from tests.factories import Api, bearer, make_user


def test_anonymous_health_says_only_whether_the_service_is_up(api: Api) -> None:
    for headers in ({}, bearer("garbage")):
        response = api.client.get("/api/health", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_anonymous_health_is_503_without_details_when_the_database_is_broken(api: Api) -> None:
    with api.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    response = api.client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}


def test_health_reports_the_database(api: Api) -> None:
    response = api.client.get("/api/health", headers=api.login("ada@example.org"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["revision"] == head_revision()
    assert body["database"]["backend"] in {"sqlite", "postgresql"}


def test_health_is_503_when_the_database_is_broken(api: Api) -> None:
    headers = api.admin()
    with api.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    response = api.client.get("/api/health", headers=headers)
    assert response.status_code == 503
    assert response.json()["database"]["status"] == "error"


def test_version_names_the_service_and_api_version(api: Api) -> None:
    body = api.client.get("/api/version").json()
    assert body["name"] == "commonwatt"
    assert body["api_version"] == api.client.get("/api/openapi.json").json()["info"]["version"]


def test_openapi_document_is_self_contained_and_swagger_ui_is_served(api: Api) -> None:
    document = api.client.get("/api/openapi.json").json()
    assert document["openapi"] == "3.0.3"
    refs = [value for value in _walk(document) if isinstance(value, str)]
    assert not [ref for ref in refs if ref.endswith(".yaml") or ".yaml#" in ref]
    assert api.client.get("/api/ui/").status_code == 200


def test_the_served_document_keeps_its_component_references(api: Api) -> None:
    document = api.client.get("/api/openapi.json").json()

    refs = [value for value in _walk(document) if isinstance(value, str)]
    assert len(refs) > 100  # one named component per shape, not every use expanded
    for ref in refs:
        kind, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][kind], ref
    assert document["servers"] == [{"url": "/api"}]
    assert {**document, "servers": None} == {**openapi.bundled_spec(), "servers": None}
    as_yaml = yaml.safe_load(api.client.get("/api/openapi.yaml").text)
    assert as_yaml == document


def _walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [value for key, child in node.items() for value in
                ([child] if key == "$ref" else _walk(child))]
    if isinstance(node, list):
        return [value for child in node for value in _walk(child)]
    return []


def test_the_index_links_to_where_to_start_and_the_root_serves_the_page(api: Api) -> None:
    root = api.client.get("/", follow_redirects=False)
    assert root.status_code == 200 and root.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in root.text
    assert api.client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert api.client.get("/static/../pyproject.toml").status_code == 404
    bare = api.client.get("/api", follow_redirects=False)
    assert bare.status_code == 308 and bare.headers["location"] == "/api/"
    index = api.client.get("/api/")
    assert index.status_code == 200
    body = index.json()
    assert body["links"] == {"openapi": "/api/openapi.json", "swagger_ui": "/api/ui/",
                             "health": "/api/health", "version": "/api/version"}
    for link in body["links"].values():
        assert api.client.get(link).status_code == 200
    spec = api.client.get("/api/openapi.json").json()
    assert body["api_version"] == spec["info"]["version"] == "2026-11-23"
    assert body["version"] == api.client.get("/api/version").json()["version"]
    assert "software version" in spec["info"]["description"]


def test_oauth2_password_login_for_swagger_ui(api: Api) -> None:
    make_user(api.engine, "ops@example.org", password="a long enough password", role="admin")
    spec = api.client.get("/api/openapi.json").json()
    flow = spec["components"]["securitySchemes"]["oauth2Password"]["flows"]["password"]
    assert flow["tokenUrl"] == "/api/auth/login"
    answer = api.client.post(flow["tokenUrl"], data={
        "grant_type": "password", "username": "ops@example.org",
        "password": "a long enough password", "scope": "", "client_id": ""})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "bearer"
    me = api.client.get("/api/auth/me", headers=bearer(answer.json()["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == "ops@example.org"
    wrong = api.client.post(flow["tokenUrl"],
                            data={"username": "ops@example.org", "password": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
