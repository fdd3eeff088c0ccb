"""The served document is valid OpenAPI 3.0 and passes a strict linter (Redocly CLI's
recommended-strict, tests/clients/redocly.yaml) with no error and no ambiguous path beyond the
known exceptions listed beside it; every operation has a summary and a description, and
declares the security it needs (a generated client then makes an authenticated call): all
but the public ones listed here, which is what a caller without credentials finds."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from bundles.errors import Refusal
from handlers.document import served_document
from openapi import SPEC_DIR
from tests.clients import CLIENTS_DIR, DemoServer, demo_server, node_tool
from tests.factories import Api

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Every operation needs a bearer token (a login's or a `cw_` API token) but these, listed with
# the security each declares. (The document itself, /openapi.json, is served to anyone.)
AUTHENTICATED = [{"bearerAuth": []}, {"oauth2Password": []}]
PUBLIC = {
    ("GET", "/"): [],
    ("GET", "/version"): [],
    ("POST", "/auth/login"): [],
    ("GET", "/health"): [{"bearerAuth": []}, {}],  # the details for an authenticated caller
    ("POST", "/webhook/sensors/{sensor_id}"): [{"ingestKey": []}],  # a device: its sensor's key
    # The webhook event catalog is public, as the document holding the same schemas is.
    ("GET", "/webhooks/event-types"): [],
    # An HTTP-auth MQTT broker: the broker secret of the settings.
    ("POST", "/internal/mqtt/authenticate"): [{"brokerSecret": []}],
    ("POST", "/internal/mqtt/authorize"): [{"brokerSecret": []}],
}
# Public operations that still need a credential of their own, and refuse a caller without.
OWN_CREDENTIAL = {key for key, security in PUBLIC.items()
                  if security and {} not in security and "bearerAuth" not in security[0]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("server") / "var") as running:
        yield running


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, item[method]) for path, item in document["paths"].items()
            for method in HTTP_METHODS if method in item]


def test_the_served_document_is_valid_openapi(server: DemoServer) -> None:
    validate(server.document)
    assert server.document["openapi"] == "3.0.3"


def test_every_operation_has_a_summary_a_description_and_declares_its_security() -> None:
    document = served_document("/api")
    undescribed = [f"{method} {path}" for method, path, operation in operations(document)
                   if not operation.get("summary") or not operation.get("description")
                   or operation["summary"].strip() == operation["description"].strip()]
    assert undescribed == []
    declared = {(method, path): operation.get("security")
                for method, path, operation in operations(document)}
    assert {key: declared.get(key) for key in PUBLIC} == PUBLIC
    assert {key: security for key, security in declared.items()
            if key not in PUBLIC and security != AUTHENTICATED} == {}


def test_every_operation_but_the_public_ones_refuses_a_caller_without_credentials(
    api: Api,
) -> None:
    answers = {}
    for method, path, _ in operations(served_document("/api")):
        url = "/api" + re.sub(r"\{[^}]+\}", "1", path)
        answers[(method, path)] = api.client.request(method, url).status_code
    refused = {key for key, status in answers.items() if status == 401}
    assert refused == set(answers) - set(PUBLIC) | OWN_CREDENTIAL


def test_the_bundle_refusal_component_has_the_fields_a_bundle_refusal_answers_with() -> None:
    # Defined for the import operations (which name it in the registry contract work).
    schemas = yaml.safe_load((SPEC_DIR / "components" / "schemas.yaml").read_text())
    refused = schemas["BundleRefused"]["allOf"]
    assert refused[0] == {"$ref": "#/Problem"}
    assert refused[1]["properties"]["errors"]["items"] == {"$ref": "#/BundleRefusal"}
    refusal = schemas["BundleRefusal"]
    answered = Refusal(document=0, pointer="/members/x/area", code="unknown_area",
                       message="no such area").as_dict()
    assert sorted(refusal["required"]) == sorted(refusal["properties"]) == sorted(answered)


def test_the_served_document_passes_the_strict_linter(server: DemoServer, tmp_path: Path) -> None:
    redocly = node_tool("redocly")
    (tmp_path / "openapi.json").write_text(json.dumps(server.document))
    for name in ("redocly.yaml", ".redocly.lint-ignore.yaml"):
        (tmp_path / name).write_bytes((CLIENTS_DIR / name).read_bytes())
    result = subprocess.run([str(redocly), "lint", "--config", "redocly.yaml", "--format",
                             "stylish", "openapi.json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Your API description is valid" in output
    assert "7 problems are explicitly ignored" in output
