"""Telemetry through the active holding: one community per sensor id, readings kept per
community, members reading their meters only while their membership is active."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from handlers.settings import Settings
from storage.models import Asset, Community, Member
from tests.factories import Api, community_doc, member_doc, to_yaml
from tests.storage.telemetry.old_files import old_store_with

DAY = "2026-03-02"
ADMIN = "/api/admin/communities"
SENSOR_READS = ("series", "latest", "readings", "daily", "metrics")
MULTI_SENSOR_READS = ("series", "latest", "metrics")


def _community(key: str, members: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A community of two areas (north and south), each behind its own primary substation."""
    doc = community_doc(key, members)
    south = f"AC-{key}-2"
    doc["community"]["areas"]["south"] = {
        "name": "South", "boundary": {"source": "gse_cabine_primarie", "id": south},
        "topology": [south]}
    doc["community"]["topology"].append({"id": south, "type": "primary_substation"})
    doc["community"]["settings"] = {"timezone": "Europe/Rome", "incentive_eur_per_mwh": 110}
    return doc


def _alpha() -> dict[str, Any]:
    """Community A: its operator and members of every status, meters a-<member>."""
    return _community("alpha", {
        "op-a": member_doc("op-a", role="operator", user_id="op@alpha.test"),
        "ana": member_doc("ana", user_id="ana@alpha.test", sensors=("a-ana",)),
        "pia": member_doc("pia", role="prosumer", area="south", user_id="pia@alpha.test",
                          sensors=("a-pia",)),
        "ugo": member_doc("ugo", area="south", sensors=("a-ugo",)),
        "sue": member_doc("sue", status="suspended", user_id="sue@alpha.test",
                          sensors=("a-sue",)),
        "pen": member_doc("pen", status="pending", area="south", sensors=("a-pen",)),
        "ina": member_doc("ina", status="inactive", sensors=("a-ina",)),
    })


def _beta(**extra: dict[str, Any]) -> dict[str, Any]:
    """Community B: its operator, an active, a pending and a suspended member."""
    return _community("beta", {
        "op-b": member_doc("op-b", role="operator", user_id="op@beta.test"),
        "bo": member_doc("bo", user_id="bo@beta.test", sensors=("b-bo",)),
        "bpend": member_doc("bpend", status="pending", area="south", sensors=("b-pend",)),
        "bsus": member_doc("bsus", status="suspended", sensors=("b-sus",)),
        **extra,
    })


@pytest.fixture
def both(api: Api) -> Api:
    api.import_yaml(_alpha(), _beta())
    return api


def _rows(sensor: str, channel: str, values: list[float]) -> list[dict[str, Any]]:
    return [{"sensor_id": sensor, "channel": channel, "ts": f"{DAY}T10:{minute:02d}:00Z",
             "value": value} for minute, value in enumerate(values)]


def _ingest(api: Api, headers: dict[str, str], *rows: list[dict[str, Any]]) -> Any:
    return api.client.post("/api/telemetry/readings",
                           json={"readings": [row for batch in rows for row in batch]},
                           headers=headers)


def _meter(member: str, sensor: str, pod: str) -> dict[str, Any]:
    return {"member_key": member, "asset_type": "meter", "properties": {
        "name": "Meter", "sensor_id": sensor, "meter_type": "bidirectional", "pod": pod}}


def _set_status(api: Api, community: str, member: str, status: str) -> None:
    response = api.client.post(f"{ADMIN}/{community}/members/{member}/status",
                              json={"status": status}, headers=api.admin())
    assert response.status_code == 200, response.text


def _series_values(api: Api, headers: dict[str, str], *sensors: str) -> dict[str, list[float]]:
    response = api.client.get("/api/telemetry/series", params={
        "sensor_id": list(sensors), "channel": "energy_export", "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T23:00:00Z"}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["sensor_id"]: item["value"] for item in response.json()["series"]}


def _balance(api: Api, headers: dict[str, str], community: str = "alpha") -> Any:
    return api.client.get(f"/api/telemetry/communities/{community}/energy-balance",
                          params={"from": DAY, "to": DAY}, headers=headers)


def _read(api: Api, what: str, headers: dict[str, str], *sensors: str) -> Any:
    window = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:00:00Z"}
    params: dict[str, Any] = {
        "series": {"sensor_id": list(sensors), "channel": "energy_import", **window},
        "latest": {"sensor_id": list(sensors)},
        "readings": {"sensor_id": sensors[0], "channel": "energy_import", **window},
        "daily": {"sensor_id": sensors[0], "from": DAY, "to": DAY},
        "metrics": {"sensor_id": list(sensors)},
    }[what]
    return api.client.get(f"/api/telemetry/{what}", params=params, headers=headers)


def _legacy_asset(api: Api, community: str, member: str, key: str, sensor: str) -> None:
    """An asset written straight into the registry, as one from before a sensor id was kept
    to one community whatever its members' status."""
    with Session(api.engine) as session:
        holder = session.exec(select(Member).join(Community).where(
            Community.key == community, Member.key == member)).one()
        assert holder.id is not None
        session.add(Asset(community_id=holder.community_id, member_id=holder.id, key=key,
                          asset_type="meter", name="Legacy", sensor_id=sensor,
                          meter_type="bidirectional",
                          properties={"name": "Legacy", "sensor_id": sensor}))
        session.commit()


@pytest.mark.parametrize("member", ["bpend", "bsus", "bo"])
@pytest.mark.parametrize("sensor", ["a-sue", "a-pen", "a-ina"])
def test_an_operator_cannot_give_a_meter_of_another_community_to_any_member(
        both: Api, member: str, sensor: str) -> None:
    """B's operator puts A's meter id (of a suspended, pending or inactive member of A) on a
    member of B of any status: refused, as an asset write and as an import."""
    api = both
    operator_b = api.login("op@beta.test")
    response = api.put_asset(f"{ADMIN}/beta/assets/m-claim", headers=operator_b,
                              json=_meter(member, sensor, f"IT-{member}-POD"))
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "sensor_held"
    assert "alpha" not in response.json()["detail"]
    imported = api.client.post(
        "/api/admin/import/yaml", params={"force": True}, headers={
            **api.admin(), "Content-Type": "application/yaml"},
        content=to_yaml(_beta(claim=member_doc("claim", status="pending",
                                             sensors=("b-own", sensor)))))
    assert imported.status_code == 422, imported.text
    refusals = imported.json()["errors"]
    assert [(item["code"], item["pointer"]) for item in refusals] == [
        ("sensor_held", "/members/claim/assets/meter/m-claim-1/sensor_id")]
    # A's active meter was refused before too; it still is.
    assert api.put_asset(f"{ADMIN}/beta/assets/m-claim", headers=operator_b,
                          json=_meter(member, "a-pia", f"IT-{member}-POD")).status_code == 409


def test_a_meter_claimed_first_by_another_community_is_refused_to_its_own(both: Api) -> None:
    """The race: B claims an id (on its pending member) before A attaches its new meter; A
    is refused, and nothing B writes under that id is ever A's."""
    api = both
    operator_a, operator_b = api.login("op@alpha.test"), api.login("op@beta.test")
    claimed = api.put_asset(f"{ADMIN}/beta/assets/m-claim", headers=operator_b,
                             json=_meter("bpend", "a-new", "IT-bpend-POD"))
    assert claimed.status_code == 200, claimed.text
    attached = api.put_asset(f"{ADMIN}/alpha/assets/m-new", headers=operator_a,
                              json=_meter("pia", "a-new", "IT-pia-POD"))
    assert attached.status_code == 409, attached.text
    assert attached.json()["code"] == "sensor_held"
    # B's member is pending: no active holding, so B writes nothing under the id.
    refused = _ingest(api, operator_b, _rows("a-new", "energy_export", [999999.0]))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "unknown_sensor"
    assert _read(api, "latest", operator_a, "a-new").status_code == 404


def test_with_a_legacy_registry_another_community_reads_and_writes_none_of_a_meter(
        both: Api) -> None:
    """A registry from before the fix where B carries A's meter ids too (an active member of
    B carries a-pia, a pending one a-ana): B's reads never show A's readings, B's writes
    (JSON, CSV, device push) never change A's series nor A's energy balance."""
    api = both
    operator_a, operator_b = api.login("op@alpha.test"), api.login("op@beta.test")
    written = _ingest(api, operator_a, _rows("a-ana", "energy_import", [400.0, 400.0]),
                      _rows("a-ugo", "energy_import", [400.0, 400.0]),
                      _rows("a-pia", "energy_export", [300.0, 300.0]))
    assert written.status_code == 200, written.text
    before = _balance(api, operator_a)
    assert before.status_code == 200, before.text
    assert before.json()["totals"]["shared_wh"] == 600.0  # in the south area
    assert before.json()["totals"]["withdrawn_wh"] == 1600.0
    _legacy_asset(api, "beta", "bo", "legacy-pia", "a-pia")
    _legacy_asset(api, "beta", "bpend", "legacy-ana", "a-ana")

    # B reads its own series under those ids: none of A's readings.
    assert _series_values(api, operator_b, "a-pia", "b-bo") == {"a-pia": [], "b-bo": []}
    assert _series_values(api, operator_b, "a-ana") == {"a-ana": []}
    assert _read(api, "latest", operator_b, "a-pia", "a-ana").json()["items"] == []
    # B writes through its active holding: B's series, not A's.
    pushed = _ingest(api, operator_b, _rows("a-pia", "energy_export", [999999.0]))
    assert pushed.status_code == 200, pushed.text
    upload = api.client.post(
        "/api/telemetry/readings", headers={**operator_b, "Content-Type": "text/csv"},
        content=f"sensor_id,channel,ts,value\na-pia,energy_export,{DAY}T10:01:00Z,999999\n")
    assert upload.status_code == 200, upload.text
    key = api.client.post(f"{ADMIN}/beta/sensors/a-pia/ingest-key", headers=operator_b)
    assert key.status_code == 201, key.text
    device = api.client.post("/api/webhook/sensors/a-pia", headers={
        "X-Ingest-Key": key.json()["key"]}, json={"readings": [
            {"channel": "energy_export", "ts": f"{DAY}T10:02:00Z", "value": 999999}]})
    assert device.status_code == 200, device.text
    # Through the pending member's holding, B writes nothing.
    assert _ingest(api, operator_b, _rows("a-ana", "energy_import", [1.0])).status_code == 422

    assert _series_values(api, operator_a, "a-pia") == {"a-pia": [300.0, 300.0]}
    assert _series_values(api, api.login("pia@alpha.test"), "a-pia") == {
        "a-pia": [300.0, 300.0]}
    assert _series_values(api, operator_b, "a-pia") == {"a-pia": [999999.0] * 3}
    after = _balance(api, operator_a)
    assert after.json()["totals"] == before.json()["totals"]
    assert after.json()["members"] == before.json()["members"]


def test_a_suspended_member_reads_neither_meter_nor_balance_until_reactivated(
        both: Api) -> None:
    api = both
    _set_status(api, "alpha", "sue", "active")
    operator_a = api.login("op@alpha.test")
    assert _ingest(api, operator_a, _rows("a-sue", "energy_import", [50.0]),
                   _rows("a-ana", "energy_import", [70.0])).status_code == 200
    _set_status(api, "alpha", "sue", "suspended")
    sue = api.login("sue@alpha.test")
    assert api.client.get("/api/user/member", headers=sue).json()["code"] == "not_a_member"
    for what in SENSOR_READS:
        asked_lists = [("a-sue",), ("a-sue", "a-ana")] if what in MULTI_SENSOR_READS \
            else [("a-sue",)]
        for asked in asked_lists:
            refused = _read(api, what, sue, *asked)
            assert refused.status_code == 404, (what, refused.text)
            assert refused.json()["code"] == "sensor_not_found"
    balance = _balance(api, sue)
    assert balance.status_code == 403, balance.text
    assert balance.json()["code"] == "not_a_member"
    sensors = api.client.get("/api/telemetry/communities/alpha/sensors", headers=sue)
    assert sensors.status_code == 403 and sensors.json()["code"] == "not_a_member"
    aggregates = api.client.get("/api/telemetry/aggregates", headers=sue, params={
        "community": "alpha", "channel": "energy_import", "bucket": "day",
        "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:00:00Z"})
    assert aggregates.status_code == 403 and aggregates.json()["code"] == "not_a_member"
    # The operator still reads the community's series of the suspended member's meter.
    assert _read(api, "latest", operator_a, "a-sue").json()["items"][0]["value"] == 50.0

    _set_status(api, "alpha", "sue", "active")
    for what in SENSOR_READS:
        assert _read(api, what, sue, "a-sue").status_code == 200, what
    for what in MULTI_SENSOR_READS:  # another's sensor beside one's own
        assert _read(api, what, sue, "a-sue", "a-ana").status_code == 404, what
    assert _read(api, "latest", sue, "a-sue").json()["items"][0]["value"] == 50.0
    balance = _balance(api, sue)
    assert balance.status_code == 200, balance.text
    assert [share["member_key"] for share in balance.json()["members"]] == ["sue"]


@pytest.mark.parametrize("status", ["pending", "inactive"])
def test_members_not_active_read_nothing(both: Api, status: str) -> None:
    api = both
    member = {"pending": "pen", "inactive": "ina"}[status]
    _set_status(api, "alpha", member, "active")
    assert _ingest(api, api.login("op@alpha.test"),
                   _rows(f"a-{member}", "energy_import", [5.0])).status_code == 200
    _set_status(api, "alpha", member, status)
    headers = api.login(f"{member}@example.org")
    assert _read(api, "latest", headers, f"a-{member}").status_code == 404
    assert _balance(api, headers).status_code == 403


def test_a_meter_moved_to_another_community_brings_no_history(both: Api) -> None:
    api = both
    operator_a, operator_b = api.login("op@alpha.test"), api.login("op@beta.test")
    assert _ingest(api, operator_a,
                   _rows("a-ana", "energy_export", [11.0, 12.0])).status_code == 200
    assert api.delete_asset(f"{ADMIN}/alpha/assets/m-ana-0", "ana",
                            headers=operator_a).status_code == 204
    moved = api.put_asset(f"{ADMIN}/beta/assets/m-moved", headers=operator_b,
                           json=_meter("bo", "a-ana", "IT-bo-POD"))
    assert moved.status_code == 200, moved.text

    assert _series_values(api, operator_b, "a-ana") == {"a-ana": []}
    assert _read(api, "latest", operator_b, "a-ana").json()["items"] == []
    bo = api.login("bo@beta.test")
    for what in SENSOR_READS:
        assert _read(api, what, bo, "a-ana").status_code == 200, what
    assert _read(api, "latest", bo, "a-ana").json()["items"] == []
    assert _read(api, "daily", bo, "a-ana").json()["days"] == []
    sensors = api.client.get("/api/telemetry/communities/beta/sensors", headers=operator_b)
    listed = {item["sensor_id"]: item["channels"] for item in sensors.json()["sensors"]}
    assert listed["a-ana"] == []
    assert _ingest(api, operator_b, _rows("a-ana", "energy_export", [7.0])).status_code == 200
    assert _series_values(api, operator_b, "a-ana") == {"a-ana": [7.0]}
    # A platform admin reading the id now reads B's series: B holds the meter.
    assert _series_values(api, api.admin(), "a-ana") == {"a-ana": [7.0]}
    assert _read(api, "latest", operator_a, "a-ana").status_code == 404


def test_an_old_telemetry_file_is_given_to_the_community_of_each_active_holder(
        both: Api, settings: Settings) -> None:
    """A file of the layout before community keys, opened by the server: a sensor goes to the
    one community whose active member holds it; one held by no active member (a-sue), or by
    active members of two communities (a-pia, a legacy registry), stays unread."""
    api = both
    _legacy_asset(api, "beta", "bpend", "legacy-ana", "a-ana")
    _legacy_asset(api, "beta", "bo", "legacy-pia", "a-pia")
    # The server opened its (new, empty) store at start: close it, put the old file in its
    # place, and the next request opens that one.
    api.runtime.close()
    settings.telemetry_path().unlink()
    old_store_with(settings.telemetry_path(), {1: "a-ana", 2: "a-pia", 3: "a-sue", 4: "b-bo"})
    operator_a, operator_b = api.login("op@alpha.test"), api.login("op@beta.test")

    def latest(headers: dict[str, str], sensor: str) -> list[float]:
        response = _read(api, "latest", headers, sensor)
        assert response.status_code == 200, response.text
        return [item["value"] for item in response.json()["items"]]

    assert latest(operator_a, "a-ana") == [1.0]
    assert latest(api.login("ana@alpha.test"), "a-ana") == [1.0]
    assert latest(operator_b, "a-ana") == []
    assert latest(operator_a, "a-pia") == [] and latest(operator_b, "a-pia") == []
    assert latest(operator_a, "a-sue") == []
    assert latest(operator_b, "b-bo") == [4.0]
    assert api.client.get("/api/health", headers=api.admin()).json()["telemetry"][
        "sensors"] == 4
