"""Isolation, driven by the spec: every operation with a path key is checked, none by hand.

A community operator of A gets 404 for community B's objects, exactly as for keys that do not
exist; a plain member gets 403 on every admin route; a member gets 404 for another member's
objects on the /user routes.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

import openapi
from storage import rules, webhooks
from storage.models import Community
from tests.factories import Api, community_doc, member_doc, to_yaml

SPEC = openapi.bundled_spec()
OPERATIONS = [(method.upper(), path, operation)
              for path, item in SPEC["paths"].items()
              for method, operation in item.items()]

# The objects of community "b" that each path parameter names.
B_OBJECTS = {
    "community_key": "b",
    "member_key": "bea",
    "asset_key": "m-bea-0",
    "area_key": "north",
    "sensor_id": "b-sensor-1",
    "dp_id": "IT-bea-POD",
    "point_id": "IT-bea-POD",
    "node_id": "AC-b-1",
    "user_id": "bea@b.test",
    "endpoint_id": "1",  # the webhook endpoint two_communities gives b
    "message_id": "msg_3",  # the ping sent to that endpoint (after the two imports' events)
    "rule_id": "1",  # the threshold rule two_communities gives b
}
# A valid body for each write, so that the access check is what answers.
BODIES: dict[str, Any] = {
    "create_member": {"key": "newcomer", "user_id": "new@b.test", "name": "New", "role":
                      "consumer", "area": "north"},
    "update_member": {"name": "Renamed"},
    "create_webhook": {"url": "https://hooks.a.example/in"},
    "set_member_status": {"status": "suspended"},
    "put_area": {"name": "North", "boundary": {"source": "gse_cabine_primarie", "id": "AC-b-1"},
                 "topology": ["AC-b-1"]},
    "upsert_member_asset": {"key": "m-bea-0", "asset_type": "pv", "properties": {"name": "PV"}},
    "upsert_member_delivery_point": {"id": "IT-bea-POD", "type": "pod"},
    "put_member_name": {"name": "Renamed"},
    "put_member_role": {"role": "producer"},
    "put_member_area": {"area": "north"},
    "patch_member_profile": {"role": "producer"},
    "patch_community": {"name": "Renamed"},
    "rename_area": {"new_key": "south"},
    "upsert_topology_node": {"id": "AC-b-1", "type": "primary_substation"},
    "lookup_assets_by_sensor_ids": {"sensor_ids": ["b-sensor-1"]},
    "lookup_assets_by_user_ids": {"user_ids": ["bea@b.test"]},
    "lookup_members_by_dids": {"dids": ["did:web:bea"]},
    "import_bundle": {"bundle": {"version": "1.0"}},
    "update_webhook": {"description": "renamed"},
    "replay_webhook": {"since": "2026-01-01T00:00:00Z"},
    "create_rule": {"name": "high", "channel": "power", "operator": "gt", "threshold": 1},
    "replace_rule": {"name": "high", "channel": "power", "operator": "gt", "threshold": 2},
}


def admin_operations_with_path_keys() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for method, path, operation in OPERATIONS
            if path.startswith("/admin/") and "{" in path]


def admin_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for method, path, operation in OPERATIONS
            if path.startswith("/admin/")]


@pytest.fixture
def two_communities(api: Api) -> Api:
    api.import_yaml(
        community_doc("a", members={
            "op": member_doc("op", user_id="op@a.test", role="operator", sensors=("a-s1",)),
            "ann": member_doc("ann", user_id="ann@a.test", sensors=("a-s2",)),
        }),
        community_doc("b", members={
            "bea": member_doc("bea", user_id="bea@b.test", sensors=("b-sensor-1",)),
        }),
    )
    with Session(api.engine) as session:
        community_b = session.exec(select(Community).where(Community.key == "b")).one()
        assert community_b.id is not None
        endpoint = webhooks.create_endpoint(session, community_id=community_b.id,
                                            url="https://hooks.b.example/in",
                                            description=None, event_types=[])
        assert endpoint.id is not None
        ping = webhooks.send_ping(session, community_id=community_b.id,
                                  endpoint_id=endpoint.id)
        rule = rules.create_rule(session, community_id=community_b.id, spec=rules.RuleSpec(
            name="high", sensor_id="b-sensor-1", operator="gt", threshold=5))
        session.commit()
        assert str(endpoint.id) == B_OBJECTS["endpoint_id"]
        assert webhooks.message_id_of(ping.outbox_id) == B_OBJECTS["message_id"]
        assert str(rule.id) == B_OBJECTS["rule_id"]
    return api


def call(api: Api, method: str, path: str, operation: dict[str, Any],
         headers: dict[str, str]) -> Any:
    url = "/api" + path.format(**B_OBJECTS)
    body = BODIES.get(operation["operationId"])
    if method in {"POST", "PUT", "PATCH"} and body is None and "requestBody" in operation:
        content = operation["requestBody"]["content"]
        if "application/json" not in content:
            return api.client.request(method, url, content=b"version: '1.0'\n",
                                      headers={**headers, "Content-Type": "application/yaml"})
        body = {}
    return api.client.request(method, url, json=body, headers=headers)


def test_the_spec_has_admin_operations_with_path_keys() -> None:
    assert len(admin_operations_with_path_keys()) >= 20


def test_operator_of_a_gets_404_for_every_object_of_b(two_communities: Api) -> None:
    api = two_communities
    operator = api.login("op@a.test")
    wrong = []
    for method, path, operation in admin_operations_with_path_keys():
        response = call(api, method, path, operation, operator)
        if response.status_code != 404:
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert wrong == []


def test_plain_member_gets_403_on_every_admin_route(two_communities: Api) -> None:
    api = two_communities
    member = api.login("ann@a.test")
    wrong = []
    for method, path, operation in admin_operations():
        response = call(api, method, path.replace("{community_key}", "a"), operation, member)
        body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        if response.status_code != 403 or body.get("code") != "not_an_administrator":
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert wrong == []


def test_member_gets_404_for_another_members_asset(two_communities: Api) -> None:
    api = two_communities
    member = api.login("ann@a.test")
    for asset_key in ("m-bea-0", "m-op-0"):  # another community's, then a neighbour's
        response = api.client.get(f"/api/user/assets/{asset_key}", headers=member)
        assert response.status_code == 404
    assert api.client.get("/api/user/assets/m-ann-0", headers=member).status_code == 200


def test_operator_of_a_does_see_its_own_objects(two_communities: Api) -> None:
    api = two_communities
    operator = api.login("op@a.test")
    for path in ("/api/admin/communities/a", "/api/admin/communities/a/members/ann",
                 "/api/admin/communities/a/assets/m-ann-0",
                 "/api/admin/lookup/asset-by-sensor-id/a-s2"):
        assert api.client.get(path, headers=operator).status_code == 200, path


def test_operator_of_a_cannot_reach_b_through_references_in_a(two_communities: Api) -> None:
    api = two_communities
    operator = api.login("op@a.test")
    base = "/api/admin/communities/a"
    moved = api.put_asset(f"{base}/assets/stolen", headers=operator, json={
        "member_key": "bea", "asset_type": "pv", "properties": {"name": "PV"}})
    assert moved.status_code == 404
    assert moved.json()["code"] == "member_not_found"
    renamed = api.put_point(f"{base}/delivery-points/IT-new", headers=operator,
                             params={"replaces": "IT-bea-POD"},
                             json={"member_key": "ann", "type": "pod"})
    assert renamed.status_code == 404
    owned = api.client.get(f"{base}/assets", headers=operator, params={"owner": "bea"})
    assert owned.status_code == 200 and owned.json()["items"] == []
    exported = api.client.get("/api/admin/export", headers=operator,
                              params={"community": ["a", "b"]})
    assert exported.status_code == 404
    only_a = api.client.get("/api/admin/export", headers=operator)
    assert "id: a\n" in only_a.text and "id: b\n" not in only_a.text
    imported = api.client.post(
        "/api/admin/import/yaml", params={"force": "true"},
        content=to_yaml(community_doc("b", members={"bea": member_doc("bea")})),
        headers={**operator, "Content-Type": "application/yaml"})
    assert imported.status_code == 422
    assert {error["code"] for error in imported.json()["errors"]} == {"forbidden_community"}
    members_of_b = api.client.get("/api/admin/communities/b/members", headers=api.admin())
    assert [item["key"] for item in members_of_b.json()["items"]] == ["bea"]


def test_overseer_reads_everything_and_changes_nothing(two_communities: Api) -> None:
    api = two_communities
    overseer = api.login("watch@commonwatt.test", role="overseer")
    assert api.client.get("/api/admin/communities/b/members", headers=overseer).status_code == 200
    for method, url, body in (
        ("PATCH", "/api/admin/communities/b/members/bea", {"name": "X"}),
        ("DELETE", "/api/admin/communities/b/members/bea/assets/m-bea-0", None),
        ("POST", "/api/admin/import", {"bundle": community_doc("c")}),
    ):
        response = api.client.request(method, url, json=body, headers=overseer)
        assert response.status_code == 403, url
        assert response.json()["code"] == "read_only"
