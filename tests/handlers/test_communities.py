"""Communities: the listing, a community's detail and metadata patch, its topology."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, community_doc, invalid_request, member_doc


def seed(api: Api) -> None:
    """Communities a (an operator, a consumer) and b (a consumer)."""
    api.import_yaml(
        community_doc("a", members={
            "op": member_doc("op", role="operator", user_id="op@a.test"),
            "alice": member_doc("alice", sensors=("a-s1",)),
        }),
        community_doc("b", members={"bob": member_doc("bob", sensors=("b-s1",))}),
    )


def keys(body: dict[str, Any]) -> list[str]:
    return [item["key"] for item in body["items"]]


# list_communities


def test_platform_admin_lists_every_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities", headers=api.admin())
    assert response.status_code == 200
    body = response.json()
    assert keys(body) == ["a", "b"]
    assert body["next_cursor"] is None
    assert body["items"][0]["name"] == "Community a"


def test_overseer_lists_every_community(api: Api) -> None:
    seed(api)
    headers = api.login("watch@commonwatt.test", role="overseer")
    response = api.client.get("/api/admin/communities", headers=headers)
    assert response.status_code == 200
    assert keys(response.json()) == ["a", "b"]


def test_operator_lists_only_the_communities_it_administers(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities", headers=api.login("op@a.test"))
    assert response.status_code == 200
    assert keys(response.json()) == ["a"]


def test_key_filter(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities", params={"key": "b"},
                              headers=api.admin())
    assert keys(response.json()) == ["b"]
    operator = api.client.get("/api/admin/communities", params={"key": "b"},
                              headers=api.login("op@a.test"))
    assert operator.status_code == 200
    assert keys(operator.json()) == []


def test_communities_are_paginated(api: Api) -> None:
    seed(api)
    first = api.client.get("/api/admin/communities", params={"limit": 1}, headers=api.admin())
    assert keys(first.json()) == ["a"]
    cursor = first.json()["next_cursor"]
    assert cursor
    second = api.client.get("/api/admin/communities", params={"limit": 1, "cursor": cursor},
                            headers=api.admin())
    assert keys(second.json()) == ["b"]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage!", "eyJsIjoidG9rZW5zOk5vbmUifQ"])
def test_list_communities_refuses_a_foreign_cursor(api: Api, cursor: str) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities", params={"cursor": cursor},
                              headers=api.admin())
    invalid_request(response, ("query", "cursor"))


def test_list_communities_cursor_keeps_the_filter(api: Api) -> None:
    seed(api)
    first = api.client.get("/api/admin/communities", params={"limit": 1}, headers=api.admin())
    response = api.client.get(
        "/api/admin/communities",
        params={"key": "a", "cursor": first.json()["next_cursor"]}, headers=api.admin())
    assert response.status_code == 200
    assert {item["key"] for item in response.json()["items"]} <= {"a"}


def test_list_communities_refuses_a_bad_limit(api: Api) -> None:
    response = api.client.get("/api/admin/communities", params={"limit": "many"},
                              headers=api.admin())
    invalid_request(response)


def test_list_communities_needs_a_token(api: Api) -> None:
    response = api.client.get("/api/admin/communities")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


def test_list_communities_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities",
                              headers=api.login("alice@example.org"))
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"


# get_community


def test_get_community_detail(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities/a", headers=api.login("op@a.test"))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "a"
    assert body["settings"] == {"timezone": "Europe/Rome", "currency": "EUR"}
    assert body["member_count"] == 2
    assert body["id"] == body["key"]
    assert list(body["areas"]) == ["north"]
    assert body["areas"]["north"]["boundary"] == {"source": "gse_cabine_primarie", "id": "AC-a-1"}
    assert [node["id"] for node in body["topology"]] == ["AC-a-1"]


def test_get_community_keeps_topology_order(api: Api) -> None:
    document = community_doc("a")
    document["community"]["topology"] += [
        {"id": "Z-sec", "type": "secondary_substation", "parent": "AC-a-1"},
        {"id": "A-feeder", "type": "feeder", "parent": "Z-sec"},
    ]
    api.import_yaml(document)
    body = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert [node["id"] for node in body["topology"]] == ["AC-a-1", "Z-sec", "A-feeder"]
    assert body["topology"][1]["parent"] == "AC-a-1"


def test_get_unknown_community(api: Api) -> None:
    response = api.client.get("/api/admin/communities/nope", headers=api.admin())
    assert response.status_code == 404
    assert response.json()["code"] == "community_not_found"


def test_operator_cannot_see_another_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities/b", headers=api.login("op@a.test"))
    assert response.status_code == 404
    assert response.json()["code"] == "community_not_found"


def test_get_community_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get("/api/admin/communities/" + "k" * 129, headers=api.admin())
    invalid_request(response)


def test_get_community_needs_a_token(api: Api) -> None:
    assert api.client.get("/api/admin/communities/a").status_code == 401


def test_get_community_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities/a",
                              headers=api.login("alice@example.org"))
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"


# get_topology


def test_get_topology(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities/a/topology", headers=api.admin())
    assert response.status_code == 200
    assert response.json() == {"community_key": "a", "topology": [
        {"id": "AC-a-1", "type": "primary_substation", "name": None, "parent": None,
         "operator_id": None, "extra": {}}]}


def test_get_topology_of_unknown_or_foreign_community(api: Api) -> None:
    seed(api)
    for key, headers in (("nope", api.admin()), ("b", api.login("op@a.test"))):
        response = api.client.get(f"/api/admin/communities/{key}/topology", headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "community_not_found"


def test_get_topology_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get(f"/api/admin/communities/{'k' * 129}/topology",
                              headers=api.admin())
    invalid_request(response)


def test_get_topology_needs_a_token(api: Api) -> None:
    assert api.client.get("/api/admin/communities/a/topology").status_code == 401


def test_get_topology_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/admin/communities/a/topology",
                              headers=api.login("alice@example.org"))
    assert response.status_code == 403


# patch_community

def test_patch_community(api: Api) -> None:
    seed(api)
    url = "/api/admin/communities/a"
    response = api.client.patch(url, json={"name": "Renamed", "contact": {"email": "c@a.test"}},
                                headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["contact"]) == ("Renamed", {"email": "c@a.test"})
    assert body["settings"] == {"timezone": "Europe/Rome", "currency": "EUR"}
    assert list(body["areas"]) == ["north"]
    assert api.client.get(url, headers=api.admin()).json() == body
    cleared = api.client.patch(url, json={"contact": None}, headers=api.admin())
    assert cleared.json()["contact"] == {}
    assert api.client.get(url, headers=api.admin()).json()["contact"] == {}


def test_patch_community_refusals(api: Api) -> None:
    seed(api)
    url = "/api/admin/communities/a"
    unknown = api.client.patch("/api/admin/communities/nope", json={"name": "x"},
                               headers=api.admin())
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "community_not_found"
    foreign = api.client.patch("/api/admin/communities/b", json={"name": "x"},
                               headers=api.login("op@a.test"))
    assert foreign.status_code == 404
    for body in ({"areas": {}}, {"name": ""}, {"name": None}, {"contact": "c@a.test"},
                 {"legal": []}, {"extra": 1}, []):
        assert invalid_request(api.client.patch(url, json=body, headers=api.admin())), body
    assert api.client.patch(url, json={"name": "x"}).status_code == 401
    member = api.client.patch(url, json={"name": "x"}, headers=api.login("alice@example.org"))
    assert member.status_code == 403
    assert api.client.get(url, headers=api.admin()).json()["name"] == "Community a"


# upsert_topology_node, delete_topology_node

def node_url(node: str, community: str = "a") -> str:
    return f"/api/admin/communities/{community}/topology/{node}"


def test_upsert_topology_node(api: Api) -> None:
    seed(api)
    body = {"id": "CS-1", "type": "secondary_substation", "parent": "AC-a-1", "note": "kept"}
    response = api.client.put(node_url("CS-1"), json=body, headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    nodes = response.json()["topology"]
    assert [node["id"] for node in nodes] == ["AC-a-1", "CS-1"]
    assert nodes[1]["extra"] == {"note": "kept"}
    renamed = api.client.put(node_url("CS-1"), json={**body, "name": "Cabina"},
                             headers=api.admin())
    assert [node["name"] for node in renamed.json()["topology"]] == [None, "Cabina"]
    community = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert community["topology"] == renamed.json()["topology"]


def test_upsert_topology_node_refusals(api: Api) -> None:
    seed(api)
    mismatch = api.client.put(node_url("CS-1"), json={"id": "CS-2", "type": "feeder"},
                              headers=api.admin())
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "key_mismatch"
    orphan = api.client.put(node_url("CS-1"), json={"id": "CS-1", "type": "feeder",
                                                    "parent": "nowhere"}, headers=api.admin())
    assert orphan.status_code == 422
    assert orphan.json()["code"] == "unknown_parent"
    demoted = api.client.put(node_url("AC-a-1"), json={"id": "AC-a-1", "type": "feeder"},
                             headers=api.admin())
    assert demoted.status_code == 422
    assert demoted.json()["code"] == "invalid_area_boundary"
    unknown = api.client.put(node_url("X", "nope"), json={"id": "X", "type": "feeder"},
                             headers=api.admin())
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "community_not_found"
    invalid_request(api.client.put(node_url("X"), json={"id": "X"}, headers=api.admin()))
    assert api.client.put(node_url("X"), json={"id": "X", "type": "feeder"}).status_code == 401


def test_delete_topology_node(api: Api) -> None:
    seed(api)
    api.client.put(node_url("CS-1"), json={"id": "CS-1", "type": "feeder", "parent": "AC-a-1"},
                   headers=api.admin())
    response = api.client.delete(node_url("CS-1"), headers=api.login("op@a.test"))
    assert response.status_code == 200, response.text
    assert [node["id"] for node in response.json()["topology"]] == ["AC-a-1"]
    community = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert [node["id"] for node in community["topology"]] == ["AC-a-1"]


def test_delete_topology_node_refusals(api: Api) -> None:
    seed(api)
    api.client.put(node_url("CS-1"), json={"id": "CS-1", "type": "feeder", "parent": "AC-a-1"},
                   headers=api.admin())
    in_use = api.client.delete(node_url("AC-a-1"), headers=api.admin())
    assert in_use.status_code == 409
    assert in_use.json()["code"] == "topology_node_in_use"
    assert "north" in in_use.json()["detail"] and "CS-1" in in_use.json()["detail"]
    missing = api.client.delete(node_url("nowhere"), headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "topology_node_not_found"
    assert api.client.delete(node_url("CS-1", "nope"), headers=api.admin()).status_code == 404
    assert api.client.delete(node_url("CS-1")).status_code == 401
