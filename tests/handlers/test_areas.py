"""Areas of a community: read, create or replace with the boundary invariants, delete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, community_doc, invalid_request, member_doc

AREA_URL = "/api/admin/communities/{community}/areas/{area}"


def seed(api: Api) -> None:
    """Community a: area north (AC-a-1), a free primary substation AC-a-2 and a secondary one;
    community b as built by the factory."""
    document = community_doc("a", members={
        "op": member_doc("op", role="operator", user_id="op@a.test"),
        "alice": member_doc("alice"),
    })
    document["community"]["topology"] += [
        {"id": "AC-a-2", "type": "primary_substation", "name": "CP South"},
        {"id": "CS-a-1", "type": "secondary_substation", "parent": "AC-a-1"},
    ]
    api.import_yaml(document, community_doc("b", members={"bob": member_doc("bob")}))


def area_body(boundary: str = "AC-a-2", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "South",
                            "boundary": {"source": "gse_cabine_primarie", "id": boundary},
                            "topology": [boundary]}
    body.update(changes)
    return body


def url(area: str, community: str = "a") -> str:
    return AREA_URL.format(community=community, area=area)


# get_area


def test_get_area(api: Api) -> None:
    seed(api)
    response = api.client.get(url("north"), headers=api.login("op@a.test"))
    assert response.status_code == 200
    assert response.json() == {"key": "north", "name": "North",
                               "boundary": {"source": "gse_cabine_primarie", "id": "AC-a-1"},
                               "topology": ["AC-a-1"], "extra": {}}


def test_get_unknown_area(api: Api) -> None:
    seed(api)
    response = api.client.get(url("south"), headers=api.admin())
    assert response.status_code == 404
    assert response.json()["code"] == "area_not_found"


def test_get_area_of_another_community(api: Api) -> None:
    seed(api)
    response = api.client.get(url("north", "b"), headers=api.login("op@a.test"))
    assert response.status_code == 404
    assert response.json()["code"] == "community_not_found"


def test_get_area_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get(url("x" * 129), headers=api.admin())
    assert response.status_code == 400


def test_get_area_needs_a_token(api: Api) -> None:
    assert api.client.get(url("north")).status_code == 401


def test_get_area_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url("north"), headers=api.login("alice@example.org"))
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"


# put_area


def test_put_area_creates_then_replaces(api: Api) -> None:
    seed(api)
    headers = api.login("op@a.test")
    created = api.client.put(url("south"), json=area_body(extra={"note": "new"}),
                             headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["key"] == "a"
    assert created.json()["areas"]["south"] == {
        "key": "south", "name": "South",
        "boundary": {"source": "gse_cabine_primarie", "id": "AC-a-2"},
        "topology": ["AC-a-2"], "extra": {"note": "new"}}
    replaced = api.client.put(url("south"), json=area_body(name="South valley"),
                              headers=headers)
    assert replaced.status_code == 200
    assert replaced.json()["areas"]["south"]["name"] == "South valley"
    assert replaced.json()["areas"]["south"]["extra"] == {}
    detail = api.client.get("/api/admin/communities/a", headers=headers).json()
    assert list(detail["areas"]) == ["north", "south"]


def test_put_area_may_keep_its_own_boundary(api: Api) -> None:
    seed(api)
    response = api.client.put(url("north"), json=area_body("AC-a-1", name="North side"),
                              headers=api.admin())
    assert response.status_code == 200
    assert response.json()["areas"]["north"]["name"] == "North side"
    community = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert community["areas"]["north"] == response.json()["areas"]["north"]


@pytest.mark.parametrize("body", [
    area_body(topology=["AC-a-1"]),
    area_body("CS-a-1"),
    area_body("AC-nowhere"),
], ids=["topology-not-boundary", "secondary-substation", "unknown-node"])
def test_put_area_refuses_a_broken_topology(api: Api, body: dict[str, Any]) -> None:
    seed(api)
    response = api.client.put(url("south"), json=body, headers=api.admin())
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_area_boundary"
    assert problem["errors"][0]["code"] == "invalid_area_boundary"
    assert api.client.get(url("south"), headers=api.admin()).status_code == 404


def test_put_area_refuses_extra_naming_area_properties(api: Api) -> None:
    seed(api)
    response = api.client.put(url("south"), json=area_body(extra={"name": "x"}),
                              headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "reserved_extra_key"


def test_put_area_refuses_a_boundary_another_area_has(api: Api) -> None:
    seed(api)
    response = api.client.put(url("south"), json=area_body("AC-a-1"), headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_area_boundary"


@pytest.mark.parametrize("body", [
    {"name": "South", "topology": ["AC-a-2"]},
    area_body(topology=[]),
    area_body(boundary={"source": "osm", "id": "AC-a-2"}),
    area_body(colour="red"),
], ids=["no-boundary", "empty-topology", "unknown-source", "unknown-property"])
def test_put_area_refuses_a_malformed_body(api: Api, body: dict[str, Any]) -> None:
    seed(api)
    response = api.client.put(url("south"), json=body, headers=api.admin())
    invalid_request(response)


def test_put_area_in_unknown_or_foreign_community(api: Api) -> None:
    seed(api)
    for community, headers in (("nope", api.admin()), ("b", api.login("op@a.test"))):
        response = api.client.put(url("south", community), json=area_body(), headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "community_not_found"


def test_put_area_refuses_another_media_type(api: Api) -> None:
    seed(api)
    response = api.client.put(url("south"), content=b"name: South",
                              headers={**api.admin(), "Content-Type": "text/plain"})
    assert response.status_code == 415


def test_put_area_refuses_a_huge_body(api: Api) -> None:
    seed(api)
    body = area_body(extra={"blob": "x" * (3 * 1024 * 1024)})
    response = api.client.put(url("south"), json=body, headers=api.admin())
    assert response.status_code == 413


def test_put_area_needs_a_token(api: Api) -> None:
    assert api.client.put(url("south"), json=area_body()).status_code == 401


def test_put_area_is_not_for_plain_members_nor_overseers(api: Api) -> None:
    seed(api)
    member = api.client.put(url("south"), json=area_body(),
                            headers=api.login("alice@example.org"))
    assert member.status_code == 403
    assert member.json()["code"] == "not_an_administrator"
    overseer = api.client.put(url("south"), json=area_body(),
                              headers=api.login("watch@commonwatt.test", role="overseer"))
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"


# delete_area


def test_delete_area(api: Api) -> None:
    seed(api)
    headers = api.login("op@a.test")
    assert api.client.put(url("south"), json=area_body(), headers=headers).status_code == 200
    response = api.client.delete(url("south"), headers=headers)
    assert response.status_code == 200
    assert list(response.json()["areas"]) == ["north"]
    assert api.client.get(url("south"), headers=headers).status_code == 404


def test_delete_area_a_member_is_in(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("north"), headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "area_in_use"
    assert api.client.get(url("north"), headers=api.admin()).status_code == 200


def test_delete_unknown_area(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("south"), headers=api.admin())
    assert response.status_code == 404
    assert response.json()["code"] == "area_not_found"


def test_delete_area_of_another_community(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("north", "b"), headers=api.login("op@a.test"))
    assert response.status_code == 404
    assert response.json()["code"] == "community_not_found"


def test_delete_area_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.delete(url("x" * 129), headers=api.admin())
    invalid_request(response)


def test_delete_area_needs_a_token(api: Api) -> None:
    assert api.client.delete(url("north")).status_code == 401


def test_delete_area_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("north"), headers=api.login("alice@example.org"))
    assert response.status_code == 403


# values the bundle format refuses


def nested(levels: int) -> dict[str, Any]:
    """A mapping whose containers nest `levels` deep (itself included)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("key", ["north%20east", "n%C3%B6rd", "a,b", "a%5Cb"])
def test_put_area_refuses_a_key_the_bundle_format_refuses(api: Api, key: str) -> None:
    seed(api)
    response = api.client.put(url(key), json=area_body(), headers=api.admin())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_key"
    detail = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert list(detail["areas"]) == ["north"]


@pytest.mark.parametrize("extra", [
    {"note": "nul\x00"}, {"nul\x00": 1}, {"deep": nested(61)}], ids=["value", "key", "deep"])
def test_put_area_refuses_extra_the_bundle_format_refuses(
    api: Api, extra: dict[str, Any],
) -> None:
    seed(api)
    response = api.client.put(url("south"), json=area_body(extra=extra), headers=api.admin())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_value"
    assert api.client.get(url("south"), headers=api.admin()).status_code == 404


def test_areas_written_by_the_api_export_and_import_back(api: Api) -> None:
    seed(api)
    headers = api.admin()
    deepest = {"deep": nested(60)}  # extra nests 61 levels: the bundle's 64 in all
    assert api.client.put(url("south.2:x-y_z"), json=area_body(extra=deepest),
                          headers=headers).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    assert reimport.json()["reports"][0]["changes"]["areas"] == {
        "added": 0, "removed": 0, "changed": 0}
    assert api.client.get(url("south.2:x-y_z"), headers=headers).json()["extra"] == deepest


# rename_area

def test_rename_area_moves_its_members(api: Api) -> None:
    seed(api)
    response = api.client.post(url("north") + "/rename", json={"new_key": "nord"},
                               headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["old_key"], body["new_key"], body["members_moved"]) == ("north", "nord", 2)
    assert list(body["community"]["areas"]) == ["nord"]
    member = api.client.get("/api/admin/communities/a/members/alice", headers=api.admin())
    assert member.json()["area"] == "nord"
    assert api.client.get(url("north"), headers=api.admin()).status_code == 404


def test_rename_area_refusals(api: Api) -> None:
    seed(api)
    api.client.put(url("south"), json=area_body(), headers=api.admin())
    taken = api.client.post(url("north") + "/rename", json={"new_key": "south"},
                            headers=api.admin())
    assert taken.status_code == 409
    assert taken.json()["code"] == "area_key_taken"
    unknown = api.client.post(url("west") + "/rename", json={"new_key": "x"},
                              headers=api.admin())
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "area_not_found"
    reserved = api.client.post(url("north") + "/rename", json={"new_key": "by-id"},
                               headers=api.admin())
    assert reserved.status_code == 422
    assert reserved.json()["code"] == "reserved_key"
    foreign = api.client.post(url("north", "b") + "/rename", json={"new_key": "x"},
                              headers=api.login("op@a.test"))
    assert foreign.status_code == 404
    assert api.client.post(url("north") + "/rename", json={"new_key": "x"}).status_code == 401
    empty = api.client.post(url("north") + "/rename", json={}, headers=api.admin())
    invalid_request(empty)
