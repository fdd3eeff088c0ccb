"""Threshold rules over HTTP: CRUD with access and refusals, and firings from every ingest path
(JSON batches, uploads, device pushes) listed with the reading that fired them."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, select

from handlers.rule_firing import check_silence
from storage.models import WebhookOutbox
from tests.factories import Api, community_doc, member_doc

DAY = "2026-03-02"
RULES = "/api/admin/communities/{key}/rules"


def _communities(api: Api) -> None:
    """Two communities, each with members of every status, an operator, and two meters."""
    for key in ("alpha", "beta"):
        members: dict[str, Any] = {
            "op": member_doc(f"{key}-op", user_id=f"op@{key}.test", role="operator"),
            "m0": member_doc(f"{key}-m0", user_id=f"m0@{key}.test", sensors=(f"{key}-s0",)),
            "m1": member_doc(f"{key}-m1", user_id=f"m1@{key}.test", area="north",
                             sensors=(f"{key}-s1",)),
            "m2": member_doc(f"{key}-m2", user_id=f"m2@{key}.test", status="suspended"),
            "m3": member_doc(f"{key}-m3", user_id=f"m3@{key}.test", status="pending"),
        }
        api.import_yaml(community_doc(key, members))


def _rows(sensor: str, values: list[float], channel: str = "power") -> list[dict[str, Any]]:
    return [{"sensor_id": sensor, "channel": channel, "ts": f"{DAY}T10:{minute:02d}:00Z",
             "value": value} for minute, value in enumerate(values)]


def _create(api: Api, headers: dict[str, str], key: str = "alpha", **body: Any) -> Any:
    return api.client.post(RULES.format(key=key), headers=headers, json={
        "name": "overload", "channel": "power", "operator": "gt", "threshold": 100, **body})


def _events(api: Api, rule_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = api.client.get(RULES.format(key="alpha") + f"/{rule_id}/events", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@pytest.fixture
def alpha(api: Api) -> Api:
    _communities(api)
    return api


def test_crud_reads_back_after_every_write(alpha: Api) -> None:
    api = alpha
    operator = api.login("op@alpha.test")
    created = _create(api, operator, sensor_id="alpha-s0", cooldown_seconds=60)
    assert created.status_code == 201, created.text
    rule = created.json()
    url = RULES.format(key="alpha") + f"/{rule['id']}"
    shown = api.client.get(url, headers=operator).json()
    assert shown == rule and shown["actions"] == ["event"] and shown["operator"] == "gt"
    listed = api.client.get(RULES.format(key="alpha"), headers=operator).json()
    assert [item["id"] for item in listed["items"]] == [rule["id"]]
    replaced = api.client.put(url, headers=operator, json={
        "name": "brown-out", "channel": "voltage", "operator": "not_between",
        "threshold": 207, "threshold_high": 253, "for_seconds": 120, "actions": ["log"]})
    assert replaced.status_code == 200, replaced.text
    shown = api.client.get(url, headers=operator).json()
    assert (shown["name"], shown["channel"], shown["threshold_high"], shown["sensor_id"],
            shown["for_seconds"], shown["actions"]) == (
        "brown-out", "voltage", 253, None, 120, ["log"])
    silence = api.client.post(RULES.format(key="alpha"), headers=api.admin(), json={
        "name": "quiet", "kind": "silence", "channel": "power", "silence_seconds": 900})
    assert silence.status_code == 201, silence.text
    assert "operator" not in silence.json() and silence.json()["silence_seconds"] == 900
    assert api.client.delete(url, headers=operator).status_code == 204
    assert api.client.get(url, headers=operator).status_code == 404
    listed = api.client.get(RULES.format(key="alpha"), headers=operator).json()
    assert [item["name"] for item in listed["items"]] == ["quiet"]


def test_access_member_403_other_community_404(alpha: Api) -> None:
    api = alpha
    rule = _create(api, api.login("op@alpha.test")).json()
    url = RULES.format(key="alpha") + f"/{rule['id']}"
    member = api.login("m0@alpha.test")
    for answer in (api.client.get(RULES.format(key="alpha"), headers=member),
                   _create(api, member), api.client.get(url, headers=member)):
        assert answer.status_code == 403 and answer.json()["code"] == "not_an_administrator"
    other = api.login("op@beta.test")
    assert api.client.get(url, headers=other).status_code == 404
    for answer in (api.client.get(RULES.format(key="beta") + f"/{rule['id']}", headers=other),
                   api.client.delete(RULES.format(key="beta") + f"/{rule['id']}",
                                     headers=other),
                   api.client.get(RULES.format(key="beta") + f"/{rule['id']}/events",
                                  headers=other)):
        assert answer.status_code == 404 and answer.json()["code"] == "rule_not_found"
    overseer = api.login("eye@example.org", role="overseer")
    assert _create(api, overseer).json()["code"] == "read_only"
    assert api.client.get(RULES.format(key="alpha")).status_code == 401
    assert api.client.get(url, headers=api.admin()).status_code == 200


@pytest.mark.parametrize(("body", "code"), [
    ({"operator": "between"}, "threshold_high_required"),
    ({"operator": "between", "threshold": 5, "threshold_high": 1}, "inverted_range"),
    ({"threshold_high": 5}, "unexpected_threshold_high"),
    ({"threshold": None}, "threshold_required"),
    ({"kind": "silence", "threshold": None}, "silence_duration_required"),
    ({"kind": "silence", "silence_seconds": 60}, "silence_without_threshold"),
    ({"silence_seconds": 60}, "threshold_without_silence"),
    ({"sensor_id": "beta-s0"}, "unknown_sensor"),
])
def test_refusals_are_422_with_codes_and_store_nothing(alpha: Api, body: dict[str, Any],
                                                       code: str) -> None:
    api = alpha
    answer = _create(api, api.admin(), **body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code and answer.json()["errors"][0]["code"] == code
    assert api.client.get(RULES.format(key="alpha"), headers=api.admin()).json()["items"] == []


def test_malformed_bodies_and_ids_are_400_and_404(alpha: Api) -> None:
    api = alpha
    assert _create(api, api.admin(), operator="above").status_code == 400
    assert _create(api, api.admin(), channel="pressure").status_code == 400
    assert _create(api, api.admin(), colour="red").status_code == 400
    assert api.client.get(RULES.format(key="alpha") + "/999",
                          headers=api.admin()).json()["code"] == "rule_not_found"
    assert api.client.get(RULES.format(key="nowhere"),
                          headers=api.admin()).json()["code"] == "community_not_found"
    assert api.client.get(RULES.format(key="alpha"), params={"cursor": "!"},
                          headers=api.admin()).status_code == 400


def test_json_batch_fires_on_a_middle_reading_with_its_reading(alpha: Api) -> None:
    api = alpha
    rule = _create(api, api.admin(), sensor_id="alpha-s0").json()
    community_wide = _create(api, api.admin(), key="beta", threshold=0).json()
    stored = api.client.post("/api/telemetry/readings", headers=api.admin(), json={
        "readings": _rows("alpha-s0", [5, 150, 7]) + _rows("alpha-s1", [500])})
    assert stored.status_code == 200, stored.text
    events = _events(api, rule["id"], api.admin())
    assert [event["reading"] for event in events] == [
        {"sensor_id": "alpha-s0", "channel": "power", "ts": f"{DAY}T10:01:00.000Z",
         "value": 150.0}]
    assert events[0]["fired_at"]
    beta = api.client.get(RULES.format(key="beta") + f"/{community_wide['id']}/events",
                          headers=api.admin()).json()
    assert beta["items"] == []  # alpha's readings never fire beta's rules
    with Session(api.engine) as session:
        outbox = session.exec(select(WebhookOutbox)).all()
        assert [event.event_type for event in outbox
                if event.event_type != "community.imported"] == ["rule.triggered"]


def test_uploads_fire_too(alpha: Api) -> None:
    api = alpha
    rule = _create(api, api.admin(), operator="lte", threshold=0).json()
    csv = "sensor_id,channel,ts,value\n" + "\n".join(
        f"alpha-s1,power,{DAY}T11:0{minute}:00Z,{value}"
        for minute, value in enumerate([4, 0, 3]))
    answer = api.client.post("/api/telemetry/readings", content=csv.encode(),
                             headers={**api.admin(), "Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    sink = io.BytesIO()
    pq.write_table(pa.table({"sensor_id": ["alpha-s0"] * 2, "channel": ["power"] * 2,
                             "ts": [f"{DAY}T12:00:00Z", f"{DAY}T12:01:00Z"],
                             "value": [-1.0, 8.0]}), sink)
    answer = api.client.post("/api/telemetry/readings", content=sink.getvalue(), headers={
        **api.admin(), "Content-Type": "application/vnd.apache.parquet"})
    assert answer.status_code == 200, answer.text
    fired = [(event["reading"]["sensor_id"], event["reading"]["value"])
             for event in _events(api, rule["id"], api.admin())]
    assert fired == [("alpha-s1", 0.0), ("alpha-s0", -1.0)]


def test_device_push_fires_and_silence_is_checked_by_the_scheduler(alpha: Api) -> None:
    api = alpha
    rule = _create(api, api.admin(), channel="soc", operator="lt", threshold=20,
                   sensor_id="alpha-s1").json()
    silence = api.client.post(RULES.format(key="alpha"), headers=api.admin(), json={
        "name": "quiet", "kind": "silence", "channel": "soc", "silence_seconds": 60}).json()
    key = api.client.post("/api/admin/communities/alpha/sensors/alpha-s1/ingest-key",
                          headers=api.admin()).json()["key"]
    pushed = api.client.post("/api/webhook/sensors/alpha-s1", headers={"X-Ingest-Key": key},
                             json={"readings": [
                                 {"channel": "soc", "ts": f"{DAY}T10:00:00Z", "value": 35},
                                 {"channel": "soc", "ts": f"{DAY}T10:01:00Z", "value": 15}]})
    assert pushed.status_code == 200, pushed.text
    assert [event["reading"]["value"] for event in _events(api, rule["id"], api.admin())] == [
        15.0]
    assert check_silence(api.runtime) == 1  # its last reading is long past
    assert check_silence(api.runtime) == 0  # told once per silence
    told = _events(api, silence["id"], api.admin())
    assert [(event["reading"]["sensor_id"], event["reading"]["ts"]) for event in told] == [
        ("alpha-s1", f"{DAY}T10:01:00.000Z")]
