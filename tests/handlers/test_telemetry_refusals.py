"""Every documented 4xx of the telemetry operations, and the energy balance over HTTP."""

from __future__ import annotations

import pytest

import openapi
from tests.factories import Api
from tests.handlers.test_telemetry import DAY, OTHER, SENSOR, _community, _ingest, _rows

TELEMETRY_OPERATIONS = [(method.upper(), path) for path, item in
                        openapi.bundled_spec()["paths"].items()
                        if path.startswith("/telemetry/") for method in item]
RANGE = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T02:00:00Z"}


@pytest.mark.parametrize(("method", "path"), TELEMETRY_OPERATIONS)
def test_every_telemetry_operation_needs_a_token(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, "/api" + path.replace("{community_key}", "alpha"))
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


@pytest.mark.parametrize("path", ["readings", "series", "aggregates", "export"])
def test_range_must_run_forwards(api: Api, path: str) -> None:
    _community(api)
    params = {"sensor_id": SENSOR, "from": f"{DAY}T02:00:00Z", "to": f"{DAY}T01:00:00Z",
              **({"channel": "power"} if path != "export" else {}),
              **({"bucket": "hour"} if path == "aggregates" else {})}
    response = api.client.get(f"/api/telemetry/{path}", params=params, headers=api.admin())
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_range"
    params["from"] = "2026-03-02T00:00:00"  # no offset
    response = api.client.get(f"/api/telemetry/{path}", params=params, headers=api.admin())
    assert response.status_code == 400


@pytest.mark.parametrize(("path", "extra"), [
    ("readings", {"channel": "power", **RANGE}), ("series", {"channel": "power", **RANGE}),
    ("aggregates", {"channel": "power", "bucket": "hour", **RANGE}), ("latest", {}),
    ("metrics", {}), ("daily", {"from": "2026-03-01", "to": "2026-03-02"}),
    ("export", RANGE)])
def test_unknown_sensor_is_404(api: Api, path: str, extra: dict[str, str]) -> None:
    _community(api)
    response = api.client.get(f"/api/telemetry/{path}", params={"sensor_id": "nope", **extra},
                              headers=api.admin())
    assert response.status_code == 404
    assert response.json()["code"] == "sensor_not_found"


def test_too_many_buckets_is_422(api: Api) -> None:
    _community(api)
    response = api.client.get("/api/telemetry/aggregates", params={
        "sensor_id": SENSOR, "channel": "power", "bucket": "15min",
        "from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "query_too_large"


def test_xlsx_beyond_a_worksheet_is_422(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _community(api)
    _ingest(api, _rows(SENSOR, "power", [1.0, 2.0, 3.0]))
    monkeypatch.setattr("storage.telemetry.export.XLSX_MAX_ROWS", 2)
    response = api.client.get("/api/telemetry/export", params={
        "sensor_id": SENSOR, "format": "xlsx", **RANGE}, headers=api.admin())
    assert response.status_code == 422
    assert "XLSX" in response.json()["detail"]


def test_webhook_refusals(api: Api) -> None:
    _community(api)
    key = api.client.post(f"/api/admin/communities/alpha/sensors/{SENSOR}/ingest-key",
                          headers=api.admin()).json()["key"]
    headers = {"X-Ingest-Key": key}
    no_offset = {"readings": [{"channel": "power", "ts": f"{DAY}T00:00:00", "value": 1}]}
    response = api.client.post(f"/api/webhook/sensors/{SENSOR}", json=no_offset,
                               headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_timestamp"
    response = api.client.post(f"/api/webhook/sensors/{SENSOR}", json={"readings": "x"},
                               headers=headers)
    assert response.status_code == 400
    assert api.client.post(f"/api/webhook/sensors/{SENSOR}", json=no_offset).status_code == 401
    broken = api.client.post(f"/api/webhook/sensors/{SENSOR}%0Ax", json=no_offset,
                             headers=headers)
    assert broken.status_code == 404
    assert broken.headers["content-type"] == "application/problem+json"


def test_energy_balance_over_http(api: Api) -> None:
    _community(api, operator="op@alpha.test")
    # Stamped 10:00, the withdrawal counts for 09:00-10:00, the hour of the feed-in at 09:30.
    _ingest(api, _rows(SENSOR, "energy_import", [1000.0], start_minute=10 * 60))
    _ingest(api, _rows(OTHER, "energy_export", [400.0], start_minute=9 * 60 + 30))
    params = {"from": DAY, "to": DAY, "granularity": "day"}
    url = "/api/telemetry/communities/alpha/energy-balance"
    operator = api.client.get(url, params=params, headers=api.login("op@alpha.test"))
    assert operator.status_code == 200, operator.text
    body = operator.json()
    assert body["totals"]["shared_wh"] == 400 and body["incentive_eur_per_mwh"] == 110
    assert body["periods"][0]["start"] == "2026-03-01T23:00:00.000Z"
    parts = {share["member_key"]: share for share in body["members"]}
    assert parts["m0"]["shared_as_consumer_wh"] == 400
    assert parts["m1"]["shared_as_producer_wh"] == 400
    member = api.client.get(url, params=params, headers=api.login("m0@alpha.test")).json()
    assert [share["member_key"] for share in member["members"]] == ["m0"]
    # Two members: the totals less m0's own part would be m1's (see test_energy_balance.py).
    assert "totals" not in member and member["areas"] == [] and member["min_contributors"] == 3
    too_long = api.client.get(url, params={"from": "2025-01-01", "to": DAY},
                              headers=api.admin())
    assert too_long.status_code == 422 and too_long.json()["code"] == "range_too_long"
    assert api.client.get(url, params={"from": "x", "to": DAY},
                          headers=api.admin()).status_code == 400
    stranger = api.client.get(url, params=params, headers=api.login("who@else.test"))
    assert stranger.status_code == 404
    missing = api.client.get("/api/telemetry/communities/nowhere/energy-balance",
                             params=params, headers=api.admin())
    assert missing.status_code == 404
