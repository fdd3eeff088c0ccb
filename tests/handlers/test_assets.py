"""Assets and meters: list, detail, by sensor id, create or replace, delete, meters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, community_doc, invalid_request, member_doc

BASE = "/api/admin/communities"
PV = {"pv-alice": {"name": "Roof", "rated_power": 6.0, "panel_type": "bifacial"}}


@pytest.fixture
def api_with_data(api: Api) -> Api:
    """Community a (operator op@a.test, alice with a meter and a PV, bob) and community b."""
    api.import_yaml(
        community_doc("a", members={
            "op": member_doc("op", role="operator", user_id="op@a.test"),
            "alice": member_doc("alice", user_id="alice@a.test", sensors=("a-s1",),
                                extra_assets={"pv": PV}),
            "bob": member_doc("bob", sensors=("a-s2", "a-s3"), pods=("IT-bob-1", "IT-bob-2")),
        }),
        community_doc("b", members={
            "bea": member_doc("bea", sensors=("b-s1",)),
            "bruno": member_doc("bruno", status="inactive", sensors=("b-s2",)),
        }),
    )
    return api


def meter_body(member_key: str = "alice", **properties: Any) -> dict[str, Any]:
    defaults = {"name": "New meter", "sensor_id": "a-new", "meter_type": "consumption",
                "pod": f"IT-{member_key}-POD"}
    return {"member_key": member_key, "asset_type": "meter",
            "properties": {**defaults, **properties}}


def keys(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["key"] for item in response.json()["items"]]


# list_assets

def test_list_assets(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/a/assets", headers=api.admin())
    assert keys(response) == ["m-alice-0", "pv-alice", "m-bob-0", "m-bob-1"]
    assert response.json()["items"][1] == {
        "id": "pv-alice", "key": "pv-alice", "asset_type": "pv", "owner_key": "alice",
        "owner_user_id": "alice@a.test", "member_key": "alice", "community_key": "a",
        "community_name": "Community a", "device": {}, "relationships": {},
        "name": "Roof", "sensor_id": None, "properties": PV["pv-alice"]}
    assert response.json()["next_cursor"] is None


def test_list_assets_filters(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    url = f"{BASE}/a/assets"
    assert keys(api.client.get(url, params={"asset_type": "pv"}, headers=headers)) == [
        "pv-alice"]
    assert keys(api.client.get(url, params={"owner": "bob"}, headers=headers)) == [
        "m-bob-0", "m-bob-1"]
    assert keys(api.client.get(url, params={"owner": "alice", "asset_type": "meter"},
                               headers=headers)) == ["m-alice-0"]
    assert keys(api.client.get(url, params={"owner": "bea"}, headers=headers)) == []


def test_list_assets_pages(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    first = api.client.get(f"{BASE}/a/assets", params={"limit": 3}, headers=headers)
    assert keys(first) == ["m-alice-0", "pv-alice", "m-bob-0"]
    second = api.client.get(f"{BASE}/a/assets",
                            params={"limit": 3, "cursor": first.json()["next_cursor"]},
                            headers=headers)
    assert keys(second) == ["m-bob-1"]
    assert second.json()["next_cursor"] is None
    other_filter = api.client.get(f"{BASE}/a/assets", headers=headers, params={
        "owner": "bob", "cursor": first.json()["next_cursor"]})
    assert keys(other_filter) == ["m-bob-1"]  # a cursor is a position; the filter still holds


def test_list_assets_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets"
    invalid_request(api.client.get(url, params={"asset_type": "windmill"},
                          headers=api.admin()))
    assert api.client.get(url).status_code == 401
    plain = api.client.get(url, headers=api.login("alice@a.test"))
    assert plain.status_code == 403
    assert plain.json()["code"] == "not_an_administrator"
    assert api.client.get(f"{BASE}/zz/assets", headers=api.admin()).status_code == 404
    foreign = api.client.get(f"{BASE}/b/assets", headers=api.login("op@a.test"))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


# get_asset

def test_get_asset(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/a/assets/m-bob-1", headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "m-bob-1", "key": "m-bob-1", "asset_type": "meter", "owner_key": "bob",
        "owner_user_id": "bob@example.org", "member_key": "bob", "community_key": "a",
        "community_name": "Community a", "device": {}, "relationships": {},
        "name": "Meter 1 of bob", "sensor_id": "a-s3",
        "properties": {"name": "Meter 1 of bob", "sensor_id": "a-s3",
                       "meter_type": "bidirectional", "pod": "IT-bob-1"}}


def test_get_asset_unknown_or_of_another_community(api_with_data: Api) -> None:
    api = api_with_data
    for key in ("nothing", "m-bea-0"):
        response = api.client.get(f"{BASE}/a/assets/{key}", headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "asset_not_found"


def test_get_asset_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/m-bob-1"
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=api.login("alice@a.test")).status_code == 403
    invalid_request(api.client.get(f"{BASE}/a/assets/{'k' * 129}", headers=api.admin()))
    foreign = api.client.get(f"{BASE}/b/assets/m-bea-0", headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_overseer_reads_assets(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/b/assets/m-bea-0",
                              headers=api.login("eye@commonwatt.test", role="overseer"))
    assert response.status_code == 200, response.text


# get_asset_by_sensor_id

def test_get_asset_by_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/a/assets/by-sensor-id/a-s2", headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["key"] == "m-bob-0"
    assert response.json()["member_key"] == "bob"


def test_get_asset_by_sensor_id_refusals(api_with_data: Api) -> None:
    api = api_with_data
    for sensor in ("unknown", "b-s1"):
        response = api.client.get(f"{BASE}/a/assets/by-sensor-id/{sensor}", headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "asset_not_found"
    url = f"{BASE}/a/assets/by-sensor-id/a-s2"
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=api.login("alice@a.test")).status_code == 403
    assert api.client.get(f"{BASE}/b/assets/by-sensor-id/b-s1",
                          headers=api.login("op@a.test")).status_code == 404
    invalid_request(api.client.get(f"{BASE}/a/assets/by-sensor-id/{'s' * 257}",
                          headers=api.admin()))


# put_asset

def test_put_asset_creates_then_replaces(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    url = f"{BASE}/a/assets/m-alice-new"
    created = api.put_asset(url, headers=headers,
                             json=meter_body(protocol="mqtt", vendor_note="kept"))
    assert created.status_code == 200, created.text
    assert created.json()["sensor_id"] == "a-new"
    assert created.json()["properties"]["vendor_note"] == "kept"
    replaced = api.put_asset(url, headers=headers, json=meter_body(
        name="Renamed meter", sensor_id="a-newer"))
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["owner_key"], replaced.json()["owner_user_id"]) == (
        "alice", "alice@a.test")
    assert replaced.json()["name"] == "Renamed meter"
    assert "protocol" not in replaced.json()["properties"]
    fetched = api.client.get(url, headers=headers)
    assert fetched.json() == replaced.json()
    assert api.client.get(f"{BASE}/a/assets/by-sensor-id/a-new",
                          headers=headers).status_code == 404
    assert keys(api.client.get(f"{BASE}/a/assets", headers=headers))[-1] == "m-alice-new"


def test_put_asset_changes_type(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/m-alice-0"
    response = api.put_asset(url, headers=api.admin(), json={
        "member_key": "alice", "asset_type": "load",
        "properties": {"name": "Fridge", "load_type": "refrigeration"}})
    assert response.status_code == 200, response.text
    assert response.json()["asset_type"] == "load"
    assert response.json()["sensor_id"] is None
    meters = api.client.get(f"{BASE}/a/meters", params={"owner": "alice"}, headers=api.admin())
    assert keys(meters) == []
    # The delivery point it measured is free again.
    assert api.delete_point(f"{BASE}/a/delivery-points/IT-alice-POD", "alice",
                            headers=api.admin()).status_code == 200


def test_put_asset_keeps_its_own_sensor(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/m-alice-0", headers=api.admin(),
                              json=meter_body(sensor_id="a-s1", name="Renamed"))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"


def test_put_asset_schema_problems(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/pv-2", headers=api.admin(), json={
        "member_key": "alice", "asset_type": "pv",
        "properties": {"name": "Roof", "rated_power": -1, "panel_type": "paper",
                       "device": {"mac_address": "nope"}}})
    assert response.status_code == 422, response.text
    errors = {(error["pointer"], error["code"]) for error in response.json()["errors"]}
    assert errors == {("/properties/rated_power", "schema_minimum"),
                      ("/properties/panel_type", "schema_enum"),
                      ("/properties/device/mac_address", "schema_pattern")}
    assert all(error["message"] for error in response.json()["errors"])


def test_put_meter_needs_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    body = meter_body()
    del body["properties"]["sensor_id"]
    response = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(), json=body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{
        "code": "schema_required", "pointer": "/properties/sensor_id",
        "message": "'sensor_id' is a required property"}]


def test_put_asset_unknown_member(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                             json=meter_body("bea", pod="IT-bea-POD"))
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"


def test_put_asset_of_another_member_is_taken(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/m-bob-1", headers=api.admin(),
                             json=meter_body(sensor_id="a-s2", pod="IT-alice-POD"))
    assert response.status_code == 409
    assert response.json()["code"] == "asset_key_taken"


def test_put_asset_refuses_a_path_word_and_another_key(api_with_data: Api) -> None:
    api = api_with_data
    reserved = api.put_asset(f"{BASE}/a/assets/by-sensor-id", headers=api.admin(),
                             json=meter_body())
    assert reserved.status_code == 422
    assert reserved.json()["code"] == "reserved_key"
    mismatch = api.client.put(f"{BASE}/a/members/alice/assets/m-1", headers=api.admin(),
                              json={"key": "m-2", "asset_type": "pv",
                                    "properties": {"name": "PV"}})
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "key_mismatch"


def test_put_asset_pod_of_another_member(api_with_data: Api) -> None:
    api = api_with_data
    for pod in ("IT-bob-1", "IT-nowhere"):
        response = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                                  json=meter_body(pod=pod))
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_pod"


def test_put_asset_sensor_on_another_asset(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                              json=meter_body(sensor_id="a-s2"))
    assert response.status_code == 409
    assert response.json()["code"] == "sensor_exists"


def test_put_asset_sensor_held_elsewhere(api_with_data: Api) -> None:
    api = api_with_data
    held = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                          json=meter_body(sensor_id="b-s1"))
    assert held.status_code == 409
    assert held.json()["code"] == "sensor_held"
    # b-s2 belongs to bruno, an inactive member of b: still b's sensor (readings are kept
    # per community), until b's asset carrying it is gone.
    inactive = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                              json=meter_body(sensor_id="b-s2"))
    assert inactive.status_code == 409
    assert inactive.json()["code"] == "sensor_held"
    assert api.delete_asset(f"{BASE}/b/assets/m-bruno-0", "bruno",
                             headers=api.admin()).status_code == 204
    free = api.put_asset(f"{BASE}/a/assets/m-x", headers=api.admin(),
                          json=meter_body(sensor_id="b-s2"))
    assert free.status_code == 200, free.text


def test_put_asset_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/m-x"
    bodies: list[Any] = [
        {"member_key": "alice", "asset_type": "pv", "properties": {}},  # no name
        {"member_key": "alice", "asset_type": "turbine", "properties": {"name": "T"}},
        {"member_key": "alice", "properties": {"name": "T"}},
        {**meter_body(), "colour": "red"},
        ["not", "an", "object"],
    ]
    for body in bodies:
        assert invalid_request(api.put_asset(url, headers=api.admin(), json=body)), body


def test_put_asset_media_type_and_size(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/m-x"
    wrong_type = api.put_asset(url, content=b"name: x",
                                headers={**api.admin(), "Content-Type": "application/yaml"})
    assert wrong_type.status_code == 415
    too_large = api.put_asset(url, headers=api.admin(),
                               json=meter_body(blob="x" * (3 * 1024 * 1024)))
    assert too_large.status_code == 413


def test_put_asset_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/m-x"
    assert api.put_asset(url, json=meter_body()).status_code == 401
    assert api.put_asset(url, headers=api.login("alice@a.test"),
                          json=meter_body()).status_code == 403
    overseer = api.put_asset(url, headers=api.login("eye@commonwatt.test", role="overseer"),
                              json=meter_body())
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"
    foreign = api.put_asset(f"{BASE}/b/assets/m-x", headers=api.login("op@a.test"),
                             json=meter_body("bea", pod="IT-bea-POD"))
    assert foreign.status_code == 404


# delete_asset

def test_delete_asset(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    assert api.delete_asset(f"{BASE}/a/assets/pv-alice", "alice",
                            headers=headers).status_code == 204
    again = api.delete_asset(f"{BASE}/a/assets/pv-alice", "alice", headers=headers)
    assert again.status_code == 404
    assert again.json()["code"] == "asset_not_found"


def test_delete_asset_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/assets/pv-alice"
    assert api.delete_asset(url, "alice").status_code == 401
    assert api.delete_asset(url, "alice", headers=api.login("alice@a.test")).status_code == 403
    assert api.delete_asset(f"{BASE}/a/assets/m-bea-0", "alice",
                            headers=api.admin()).status_code == 404
    assert api.delete_asset(f"{BASE}/a/assets/m-bob-1", "alice",
                            headers=api.admin()).status_code == 404
    assert api.delete_asset(f"{BASE}/b/assets/m-bea-0", "bea",
                             headers=api.login("op@a.test")).status_code == 404
    invalid_request(api.delete_asset(f"{BASE}/a/assets/{'k' * 129}", "alice",
                             headers=api.admin()))


# list_meters

def test_list_meters(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    cups = api.put_point(f"{BASE}/a/delivery-points/ES-1", headers=headers,
                          json={"member_key": "bob", "type": "cups"})
    assert cups.status_code == 200, cups.text
    moved = api.put_asset(f"{BASE}/a/assets/m-bob-1", headers=headers, json=meter_body(
        "bob", sensor_id="a-s3", pod="ES-1", meter_type="production", protocol="modbus"))
    assert moved.status_code == 200, moved.text
    response = api.client.get(f"{BASE}/a/meters", headers=headers)
    assert keys(response) == ["m-alice-0", "m-bob-0", "m-bob-1"]
    assert response.json()["items"][2] == {
        "id": "m-bob-1", "key": "m-bob-1", "member_key": "bob", "owner_key": "bob",
        "owner_user_id": "bob@example.org", "name": "New meter", "sensor_id": "a-s3",
        "meter_type": "production", "pod": "ES-1", "pod_type": "cups", "protocol": "modbus",
        "device": {}}
    assert response.json()["items"][0]["pod_type"] == "pod"
    assert keys(api.client.get(f"{BASE}/a/meters", params={"owner": "alice"},
                               headers=headers)) == ["m-alice-0"]


def test_list_meters_pages(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    first = api.client.get(f"{BASE}/a/meters", params={"limit": 2}, headers=headers)
    assert keys(first) == ["m-alice-0", "m-bob-0"]
    second = api.client.get(f"{BASE}/a/meters", headers=headers,
                            params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert keys(second) == ["m-bob-1"]
    garbage = api.client.get(f"{BASE}/a/meters", headers=headers, params={"cursor": "x!"})
    invalid_request(garbage, ("query", "cursor"))


def test_list_meters_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/meters"
    invalid_request(api.client.get(url, params={"cursor": "x!"}, headers=api.admin()))
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=api.login("alice@a.test")).status_code == 403
    assert api.client.get(f"{BASE}/b/meters", headers=api.login("op@a.test")).status_code == 404
    assert api.client.get(f"{BASE}/zz/meters", headers=api.admin()).status_code == 404


def test_put_asset_key_of_the_bundle_format(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/roof%20panel", headers=api.admin(), json={
        "member_key": "alice", "asset_type": "pv", "properties": {"name": "Roof"}})
    invalid_request(response)  # the body's key follows the bundle format too


def test_written_assets_export_and_import_back(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    assert api.put_asset(f"{BASE}/a/assets/m-bob-1", headers=headers, json=meter_body(
        "bob", sensor_id="a-s3", pod="IT-bob-2", vendor="acme")).status_code == 200
    assert api.put_asset(f"{BASE}/a/assets/hp-1", headers=headers, json={
        "member_key": "alice", "asset_type": "heat_pump",
        "properties": {"name": "HP", "thermal_power": 8}}).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    assert reimport.json()["reports"][0]["changes"]["assets"] == {
        "added": 0, "removed": 0, "changed": 0}
    fetched = api.client.get(f"{BASE}/a/assets/m-bob-1", headers=headers).json()
    assert fetched["properties"] == {"name": "New meter", "sensor_id": "a-s3",
                                     "meter_type": "consumption", "pod": "IT-bob-2",
                                     "vendor": "acme"}


def nested(levels: int) -> dict[str, Any]:
    """A mapping whose containers nest `levels` deep (itself included)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("extra", [
    {"note": "nul\x00"}, {"nul\x00": 1}, {"deep": nested(59)}], ids=["value", "key", "deep"])
def test_put_asset_refuses_properties_the_bundle_format_refuses(
    api_with_data: Api, extra: dict[str, Any],
) -> None:
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/pv-2", headers=api.admin(), json={
        "member_key": "alice", "asset_type": "pv", "properties": {"name": "Roof", **extra}})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_value"
    assert api.client.get(f"{BASE}/a/assets/pv-2", headers=api.admin()).status_code == 404


def test_deepest_asset_properties_export_and_import_back(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    properties = {"name": "Roof", "deep": nested(58)}  # 59 levels: the bundle's 64 in all
    assert api.put_asset(f"{BASE}/a/assets/pv-2", headers=headers, json={
        "member_key": "alice", "asset_type": "pv", "properties": properties}).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    assert reimport.json()["reports"][0]["changes"]["assets"] == {
        "added": 0, "removed": 0, "changed": 0}
    fetched = api.client.get(f"{BASE}/a/assets/pv-2", headers=headers).json()
    assert fetched["properties"] == properties


def test_put_asset_sensor_of_an_inactive_member_elsewhere_is_refused(
    api_with_data: Api,
) -> None:
    """b-s2 is carried by bruno, inactive in b: the id stays b's (its readings are b's)."""
    api = api_with_data
    response = api.put_asset(f"{BASE}/a/assets/m-new", headers=api.admin(),
                              json=meter_body(sensor_id="b-s2"))
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "sensor_held"
