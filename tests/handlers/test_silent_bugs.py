"""What users would notice if a quiet bug crept in: a foreign sensor among one's own, the last
reading re-sent, a multi-document import committed piecemeal."""

from __future__ import annotations

import pytest

from tests.factories import Api, community_doc, member_doc, to_yaml
from tests.handlers.test_telemetry import DAY, OTHER, SENSOR, _community, _ingest, _rows

READS = [
    ("/api/telemetry/latest", {}),
    ("/api/telemetry/metrics", {}),
    ("/api/telemetry/series", {"channel": "power", "from": f"{DAY}T00:00:00Z",
                               "to": f"{DAY}T23:00:00Z"}),
    ("/api/telemetry/aggregates", {"channel": "power", "bucket": "hour",
                                   "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:00:00Z"}),
]


@pytest.mark.parametrize(("path", "params"), READS, ids=[path for path, _ in READS])
@pytest.mark.parametrize("order", ["own first", "foreign first"])
def test_a_member_naming_a_neighbours_sensor_beside_its_own_gets_nothing(
        api: Api, path: str, params: dict[str, str], order: str) -> None:
    _community(api)  # m0 carries SENSOR, m1 carries OTHER
    assert _ingest(api, _rows(SENSOR, "power", [1.0, 2.0])).status_code == 200
    assert _ingest(api, _rows(OTHER, "power", [7.0, 8.0])).status_code == 200
    sensors = [SENSOR, OTHER] if order == "own first" else [OTHER, SENSOR]
    member = api.login("m0@alpha.test")

    alone = api.client.get(path, params={**params, "sensor_id": SENSOR}, headers=member)
    mixed = api.client.get(path, params={**params, "sensor_id": sensors}, headers=member)

    assert alone.status_code == 200, alone.text
    assert mixed.status_code == 404, mixed.text
    assert mixed.json()["code"] == "sensor_not_found"
    assert "7.0" not in mixed.text and "8.0" not in mixed.text


def test_re_sending_the_last_reading_replaces_it(api: Api) -> None:
    _community(api)
    assert _ingest(api, _rows(SENSOR, "power", [1.0, 2.0, 3.0])).status_code == 200

    again = _ingest(api, _rows(SENSOR, "power", [30.0], start_minute=2))

    assert (again.json()["accepted"], again.json()["replaced"]) == (1, 1)
    page = api.client.get("/api/telemetry/readings", params={
        "sensor_id": SENSOR, "channel": "power", "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T01:00:00Z"}, headers=api.admin()).json()
    assert [item["value"] for item in page["items"]] == [1.0, 2.0, 30.0]
    latest = api.client.get("/api/telemetry/latest", params={"sensor_id": SENSOR},
                            headers=api.admin()).json()
    assert [item["value"] for item in latest["items"]] == [30.0]


def _communities(api: Api) -> list[str]:
    answer = api.client.get("/api/admin/communities", headers=api.admin()).json()
    items = answer["items"] if isinstance(answer, dict) else answer
    return sorted(item["key"] for item in items)


def test_a_multi_document_import_refused_by_its_second_document_stores_neither(api: Api) -> None:
    first = community_doc("one", {"a": member_doc("a", sensors=("meter-1",))})
    second = community_doc("two", {"b": member_doc("b", sensors=("meter-1",))})

    response = api.client.post(
        "/api/admin/import/yaml", content=to_yaml(first, second),
        headers={**api.admin(), "Content-Type": "application/yaml"})

    assert response.status_code == 422, response.text
    assert {(error["document"], error["code"]) for error in response.json()["errors"]} == {
        (1, "duplicate_key")}
    assert _communities(api) == []


def test_a_multi_document_import_refused_by_the_registry_stores_neither(api: Api) -> None:
    api.import_yaml(community_doc("held", {"h": member_doc("h", sensors=("meter-9",))}))
    first = community_doc("one", {"a": member_doc("a", sensors=("meter-1",))})
    second = community_doc("two", {"b": member_doc("b", sensors=("meter-9",))})

    response = api.client.post(
        "/api/admin/import/yaml", content=to_yaml(first, second),
        headers={**api.admin(), "Content-Type": "application/yaml"})

    assert response.status_code == 422, response.text
    assert [error["code"] for error in response.json()["errors"]] == ["sensor_held"]
    assert _communities(api) == ["held"]


def test_a_long_series_right_after_ingest_answers_before_any_compaction(api: Api) -> None:
    # A year asked at 1,000 points is sliced in whole hours from the hourly rollup; right after
    # an ingest no day is compacted yet and the rollup holds nothing of the sensor.
    _community(api)
    assert _ingest(api, _rows(SENSOR, "power", [1.0, 5.0, 2.0])).status_code == 200

    response = api.client.get("/api/telemetry/series", params={
        "sensor_id": [SENSOR, OTHER], "channel": "power", "from": "2026-01-01T00:00:00Z",
        "to": "2026-12-31T00:00:00Z", "max_points": 1000}, headers=api.admin())

    assert response.status_code == 200, response.text
    own, other = response.json()["series"]
    assert own["value"] == [1.0, 5.0, 2.0] and other["value"] == []
    # A year in which the sensor has no reading at all: nothing in the rollup nor in the days.
    empty = api.client.get("/api/telemetry/series", params={
        "sensor_id": SENSOR, "channel": "power", "from": "2024-01-01T00:00:00Z",
        "to": "2024-12-31T00:00:00Z", "max_points": 1000}, headers=api.admin())
    assert empty.status_code == 200, empty.text
    assert empty.json()["series"][0]["value"] == []
