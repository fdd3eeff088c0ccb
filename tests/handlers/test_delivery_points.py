"""Delivery points: list, get by id, create or replace (and rename), delete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, community_doc, invalid_request, member_doc

BASE = "/api/admin/communities"


@pytest.fixture
def api_with_data(api: Api) -> Api:
    """Community a (operator op@a.test, alice, bob with two PODs) and community b (bea)."""
    api.import_yaml(
        community_doc("a", members={
            "op": member_doc("op", role="operator", user_id="op@a.test"),
            "alice": member_doc("alice", user_id="alice@a.test", sensors=("a-s1",)),
            "bob": member_doc("bob", sensors=("a-s2",), pods=("IT-bob-1", "IT-bob-2")),
        }),
        community_doc("b", members={
            "bea": member_doc("bea", sensors=("b-s1",), pods=("IT-bea-1",)),
            "bruno": member_doc("bruno", status="inactive", pods=("IT-bruno-1",)),
        }),
    )
    return api


def point(response: Any, dp_id: str) -> dict[str, Any]:
    """One delivery point of a DeliveryPointsResponse."""
    assert response.status_code == 200, response.text
    found: dict[str, Any] = next(dp for dp in response.json()["delivery_points"]
                                 if dp["id"] == dp_id)
    return found


def dp_body(member_key: str = "alice", **changes: Any) -> dict[str, Any]:
    return {"member_key": member_key, "type": "pod", **changes}


# list_delivery_points

def test_list_delivery_points(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/a/delivery-points", headers=api.admin())
    assert response.status_code == 200, response.text
    body = response.json()
    assert [dp["id"] for dp in body["items"]] == ["IT-op-POD", "IT-alice-POD", "IT-bob-1",
                                                 "IT-bob-2"]
    assert body["items"][1] == {"id": "IT-alice-POD", "key": "IT-alice-POD", "type": "pod",
                                "member_key": "alice", "member_name": "Member alice",
                                "community_key": "a", "description": None, "address": None,
                                "tariff": None, "active": True, "extra": {}}
    assert body["next_cursor"] is None


def test_list_delivery_points_filters(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    put = api.put_point(f"{BASE}/a/delivery-points/ES-cups-1", headers=headers,
                         json=dp_body("bob", type="cups", active=False))
    assert put.status_code == 200, put.text
    by_type = api.client.get(f"{BASE}/a/delivery-points", params={"type": "cups"},
                             headers=headers).json()
    assert [dp["id"] for dp in by_type["items"]] == ["ES-cups-1"]
    inactive = api.client.get(f"{BASE}/a/delivery-points", params={"active": "false"},
                              headers=headers).json()
    assert [dp["id"] for dp in inactive["items"]] == ["ES-cups-1"]
    active = api.client.get(f"{BASE}/a/delivery-points", params={"active": "true"},
                            headers=headers).json()
    assert "ES-cups-1" not in [dp["id"] for dp in active["items"]]


def test_list_delivery_points_pages(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get(f"{BASE}/a/delivery-points", params=params, headers=headers)
        assert page.status_code == 200, page.text
        seen += [dp["id"] for dp in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["IT-op-POD", "IT-alice-POD", "IT-bob-1", "IT-bob-2"]


def test_list_delivery_points_refuses_a_cursor_it_did_not_issue(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    garbage = api.client.get(f"{BASE}/a/delivery-points", params={"cursor": "nonsense!"},
                             headers=headers)
    invalid_request(garbage, ("query", "cursor"))


def test_list_delivery_points_bad_type(api_with_data: Api) -> None:
    response = api_with_data.client.get(f"{BASE}/a/delivery-points", params={"type": "plug"},
                                        headers=api_with_data.admin())
    invalid_request(response)


def test_list_delivery_points_needs_a_token(api_with_data: Api) -> None:
    response = api_with_data.client.get(f"{BASE}/a/delivery-points")
    assert response.status_code == 401


def test_list_delivery_points_refuses_plain_members(api_with_data: Api) -> None:
    response = api_with_data.client.get(f"{BASE}/a/delivery-points",
                                        headers=api_with_data.login("alice@a.test"))
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"


def test_list_delivery_points_unknown_and_foreign_community(api_with_data: Api) -> None:
    api = api_with_data
    missing = api.client.get(f"{BASE}/nope/delivery-points", headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "community_not_found"
    foreign = api.client.get(f"{BASE}/b/delivery-points", headers=api.login("op@a.test"))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


# get_delivery_point

def test_get_delivery_point(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/a/delivery-points/by-id/IT-bob-2",
                              headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    assert response.json()["delivery_point"]["member_key"] == "bob"
    assert response.json()["delivery_point"]["community_key"] == "a"
    assert response.json()["member"]["key"] == "bob"


def test_get_delivery_point_unknown_or_of_another_community(api_with_data: Api) -> None:
    api = api_with_data
    for dp_id in ("IT-none", "IT-bea-1"):
        response = api.client.get(f"{BASE}/a/delivery-points/by-id/{dp_id}",
                                  headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "delivery_point_not_found"


def test_get_delivery_point_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/delivery-points/by-id/IT-bob-2"
    assert api.client.get(url).status_code == 401
    assert api.client.get(url, headers=api.login("alice@a.test")).status_code == 403
    invalid_request(api.client.get(f"{BASE}/a/delivery-points/by-id/{'x' * 300}",
                          headers=api.admin()))
    foreign = api.client.get(f"{BASE}/b/delivery-points/by-id/IT-bea-1",
                             headers=api.login("op@a.test"))
    assert foreign.status_code == 404


# put_delivery_point

def test_put_delivery_point_creates_then_replaces(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    url = f"{BASE}/a/delivery-points/IT-new-1"
    created = api.put_point(url, headers=headers,
                             json=dp_body(description="Garage", tariff="BTA6",
                                          extra={"phase": 3}))
    assert created.status_code == 200, created.text
    assert [dp["id"] for dp in created.json()["delivery_points"]] == ["IT-alice-POD", "IT-new-1"]
    assert point(created, "IT-new-1") == {
        "id": "IT-new-1", "key": "IT-new-1", "type": "pod", "member_key": "alice",
        "member_name": "Member alice", "community_key": "a", "description": "Garage",
        "address": None, "tariff": "BTA6", "active": True, "extra": {"phase": 3}}
    replaced = api.put_point(url, headers=headers,
                             json=dp_body(type="ean", active=False))
    assert replaced.status_code == 200, replaced.text
    assert point(replaced, "IT-new-1")["type"] == "ean"
    assert point(replaced, "IT-new-1")["description"] is None  # a replace clears the rest
    listed = api.client.get(f"{BASE}/a/delivery-points", headers=headers).json()
    assert [dp["id"] for dp in listed["items"]][-1] == "IT-new-1"  # new rows go last
    fetched = api.client.get(f"{BASE}/a/delivery-points/by-id/IT-new-1", headers=headers)
    assert fetched.json()["delivery_point"] == point(replaced, "IT-new-1")


def test_put_delivery_point_of_another_member_is_held(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-bob-2", headers=api.admin(),
                             json=dp_body())
    assert response.status_code == 409
    assert response.json()["code"] == "delivery_point_held"


def test_put_delivery_point_refuses_a_path_word_and_another_id(api_with_data: Api) -> None:
    api = api_with_data
    reserved = api.put_point(f"{BASE}/a/delivery-points/by-id", headers=api.admin(),
                             json=dp_body())
    assert reserved.status_code == 422
    assert reserved.json()["code"] == "reserved_key"
    mismatch = api.client.put(f"{BASE}/a/members/alice/delivery-points/IT-1",
                              headers=api.admin(), json={"id": "IT-2", "type": "pod"})
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "key_mismatch"


def test_put_delivery_point_unknown_member(api_with_data: Api) -> None:
    api = api_with_data
    for member_key in ("nobody", "bea"):  # bea is a member of community b only
        response = api.put_point(f"{BASE}/a/delivery-points/IT-new-1", headers=api.admin(),
                                  json=dp_body(member_key))
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"


def test_put_delivery_point_held_by_active_member_elsewhere(api_with_data: Api) -> None:
    api = api_with_data
    held = api.put_point(f"{BASE}/a/delivery-points/IT-bea-1", headers=api.admin(),
                          json=dp_body())
    assert held.status_code == 409
    assert held.json()["code"] == "delivery_point_held"
    # bruno, who holds IT-bruno-1 in b, is inactive: the point may move to a.
    free = api.put_point(f"{BASE}/a/delivery-points/IT-bruno-1", headers=api.admin(),
                          json=dp_body())
    assert free.status_code == 200, free.text


def test_put_delivery_point_replaces_renames_and_meters_follow(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    response = api.put_point(f"{BASE}/a/delivery-points/IT-alice-NEW", headers=headers,
                              params={"replaces": "IT-alice-POD"},
                              json=dp_body(description="corrected"))
    assert response.status_code == 200, response.text
    assert point(response, "IT-alice-NEW")["description"] == "corrected"
    old = api.client.get(f"{BASE}/a/delivery-points/by-id/IT-alice-POD", headers=headers)
    assert old.status_code == 404
    meter = api.client.get(f"{BASE}/a/assets/m-alice-0", headers=headers).json()
    assert meter["properties"]["pod"] == "IT-alice-NEW"
    meters = api.client.get(f"{BASE}/a/meters", params={"owner": "alice"},
                            headers=headers).json()
    assert meters["items"][0]["pod"] == "IT-alice-NEW"
    assert meters["items"][0]["pod_type"] == "pod"


def test_put_delivery_point_replaces_itself_is_a_plain_replace(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-alice-POD",
                              params={"replaces": "IT-alice-POD"}, headers=api.admin(),
                              json=dp_body(tariff="T1"))
    assert response.status_code == 200, response.text
    assert point(response, "IT-alice-POD")["tariff"] == "T1"


def test_put_delivery_point_replaces_unknown(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-x", params={"replaces": "IT-bea-1"},
                              headers=api.admin(), json=dp_body())
    assert response.status_code == 404
    assert response.json()["code"] == "delivery_point_not_found"


def test_put_delivery_point_replaces_onto_existing(api_with_data: Api) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-bob-2",
                              params={"replaces": "IT-bob-1"}, headers=api.admin(),
                              json=dp_body("bob"))
    assert response.status_code == 409
    assert response.json()["code"] == "delivery_point_exists"
    # Nothing moved.
    assert api.client.get(f"{BASE}/a/delivery-points/by-id/IT-bob-1",
                          headers=api.admin()).status_code == 200


def test_put_delivery_point_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/delivery-points/IT-new-1"
    for body in ({"member_key": "alice"}, dp_body(type="socket"), dp_body(colour="red")):
        response = api.put_point(url, headers=api.admin(), json=body)
        assert invalid_request(response), body


def test_put_delivery_point_media_type_and_size(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/delivery-points/IT-new-1"
    wrong_type = api.put_point(url, content=b"member_key=alice",
                                headers={**api.admin(), "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_large = api.put_point(url, headers=api.admin(),
                               json=dp_body(extra={"blob": "x" * (3 * 1024 * 1024)}))
    assert too_large.status_code == 413


def test_put_delivery_point_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/delivery-points/IT-new-1"
    assert api.put_point(url, json=dp_body()).status_code == 401
    plain = api.put_point(url, headers=api.login("alice@a.test"), json=dp_body())
    assert plain.status_code == 403
    overseer = api.put_point(url, headers=api.login("eye@commonwatt.test", role="overseer"),
                              json=dp_body())
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"
    foreign = api.put_point(f"{BASE}/b/delivery-points/IT-new-1",
                             headers=api.login("op@a.test"), json=dp_body("bea"))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


# delete_delivery_point

def test_delete_delivery_point(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.login("op@a.test")
    response = api.delete_point(f"{BASE}/a/delivery-points/IT-bob-2", "bob", headers=headers)
    assert response.status_code == 200
    assert [point["id"] for point in response.json()["delivery_points"]] == ["IT-bob-1"]
    again = api.delete_point(f"{BASE}/a/delivery-points/IT-bob-2", "bob", headers=headers)
    assert again.status_code == 404
    assert again.json()["code"] == "delivery_point_not_found"


def test_delete_delivery_point_in_use(api_with_data: Api) -> None:
    api = api_with_data
    response = api.delete_point(f"{BASE}/a/delivery-points/IT-bob-1", "bob",
                                headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "delivery_point_linked"


def test_delete_delivery_point_refusals(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/a/delivery-points/IT-bob-2"
    assert api.delete_point(url, "bob").status_code == 401
    assert api.delete_point(url, "bob", headers=api.login("alice@a.test")).status_code == 403
    foreign = api.delete_point(f"{BASE}/a/delivery-points/IT-bea-1", "bob",
                               headers=api.admin())
    assert foreign.status_code == 404
    not_held = api.delete_point(f"{BASE}/a/delivery-points/IT-bob-2", "alice",
                                headers=api.admin())
    assert not_held.status_code == 404
    other = api.delete_point(f"{BASE}/b/delivery-points/IT-bea-1", "bea",
                             headers=api.login("op@a.test"))
    assert other.status_code == 404
    invalid_request(api.delete_point(f"{BASE}/a/delivery-points/{'x' * 300}", "bob",
                            headers=api.admin()))


def test_put_delivery_point_keeps_the_bundle_format(api_with_data: Api) -> None:
    api = api_with_data
    too_long = api.put_point(f"{BASE}/a/delivery-points/{'X' * 129}", headers=api.admin(),
                              json=dp_body())
    invalid_request(too_long)  # the body's id is at most 128 characters too
    shadowing = api.put_point(f"{BASE}/a/delivery-points/IT-new-1", headers=api.admin(),
                               json=dp_body(extra={"active": False, "note": "n"}))
    assert shadowing.status_code == 422
    assert shadowing.json()["code"] == "invalid_extra"


def test_written_delivery_points_export_and_import_back(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    assert api.put_point(f"{BASE}/a/delivery-points/IT-alice-NEW", headers=headers,
                          params={"replaces": "IT-alice-POD"},
                          json=dp_body(extra={"phase": 3})).status_code == 200
    assert api.put_point(f"{BASE}/a/delivery-points/ES-9", headers=headers,
                          json=dp_body("bob", type="cups", address="Calle 1")).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    report = reimport.json()["reports"][0]
    assert report["changes"]["assets"]["changed"] == 0
    found = api.client.get(f"{BASE}/a/delivery-points/by-id/IT-alice-NEW", headers=headers)
    assert found.json()["delivery_point"]["extra"] == {"phase": 3}
    meter = api.client.get(f"{BASE}/a/assets/m-alice-0", headers=headers).json()
    assert meter["properties"]["pod"] == "IT-alice-NEW"


def nested(levels: int) -> dict[str, Any]:
    """A mapping whose containers nest `levels` deep (itself included)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("extra", [
    {"note": "nul\x00"}, {"nul\x00": 1}, {"deep": nested(60)}], ids=["value", "key", "deep"])
def test_put_delivery_point_refuses_extra_the_bundle_format_refuses(
    api_with_data: Api, extra: dict[str, Any],
) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-new-1", headers=api.admin(),
                              json=dp_body(extra=extra))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_value"
    assert api.client.get(f"{BASE}/a/delivery-points/by-id/IT-new-1",
                          headers=api.admin()).status_code == 404


def test_deepest_delivery_point_extra_exports_and_imports_back(api_with_data: Api) -> None:
    api = api_with_data
    headers = api.admin()
    deepest = {"deep": nested(59)}  # extra nests 60 levels: the bundle's 64 in all
    assert api.put_point(f"{BASE}/a/delivery-points/IT-new-1", headers=headers,
                          json=dp_body(extra=deepest)).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    found = api.client.get(f"{BASE}/a/delivery-points/by-id/IT-new-1", headers=headers)
    assert found.json()["delivery_point"]["extra"] == deepest


def test_put_delivery_point_of_an_inactive_member_elsewhere_is_allowed(
    api_with_data: Api,
) -> None:
    api = api_with_data
    response = api.put_point(f"{BASE}/a/delivery-points/IT-bruno-1", headers=api.admin(),
                              json=dp_body())
    assert response.status_code == 200, response.text
