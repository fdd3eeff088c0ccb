"""Dashboards over HTTP: own and shared ones, widgets on the grid, every documented refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, community_doc, member_doc

LINE = {"kind": "line", "title": "Power", "x": 0, "y": 0, "w": 8, "h": 4, "window": "P1D",
        "sensors": ["alpha-s1", "alpha-s2"], "channel": "power"}
BALANCE = {"kind": "balance", "x": 8, "y": 0, "w": 4, "h": 4, "window": "P30D",
           "community": "alpha"}


@pytest.fixture
def communities(api: Api) -> Api:
    """alpha and beta, each with an operator, an active prosumer with two meters, and a
    suspended, an inactive and a pending member."""
    for key in ("alpha", "beta"):
        api.import_yaml(community_doc(key, {
            "op": member_doc(f"{key}-op", user_id=f"op@{key}.test", role="operator"),
            "pro": member_doc(f"{key}-pro", user_id=f"pro@{key}.test", role="prosumer",
                              sensors=(f"{key}-s1", f"{key}-s2")),
            "sus": member_doc(f"{key}-sus", user_id=f"sus@{key}.test", status="suspended"),
            "gone": member_doc(f"{key}-gone", user_id=f"gone@{key}.test", status="inactive"),
            "new": member_doc(f"{key}-new", user_id=f"new@{key}.test", status="pending")}))
    return api


def create(api: Api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.client.post("/api/dashboards", headers=headers,
                               json={"name": "Energy", **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_own_dashboard_with_widgets_round_trip(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    created = create(api, member, description="my meters", widgets=[LINE])
    assert created["owner"] == "pro@alpha.test" and created["community"] is None
    assert created["editable"] is True
    path = f"/api/dashboards/{created['id']}"
    added = api.client.post(f"{path}/widgets", headers=member, json={
        "kind": "gauge", "x": 8, "y": 0, "w": 4, "h": 2, "window": "PT1H",
        "sensors": ["alpha-s1"], "channel": "soc", "min": 0, "max": 100})
    assert added.status_code == 201, added.text
    shown = api.client.get(path, headers=member).json()
    assert [(w["kind"], w["x"], w["sensors"]) for w in shown["widgets"]] == [
        ("line", 0, ["alpha-s1", "alpha-s2"]), ("gauge", 8, ["alpha-s1"])]
    assert shown["widgets"][1]["min"] == 0 and shown["widgets"][1]["max"] == 100
    moved = api.client.put(f"{path}/widgets/{added.json()['id']}", headers=member, json={
        "kind": "latest", "title": "Charge", "x": 8, "y": 4, "w": 2, "h": 2, "window": "P1D",
        "sensors": ["alpha-s2"], "channel": "soc"})
    assert moved.status_code == 200, moved.text
    renamed = api.client.patch(path, headers=member, json={"name": "Mine"})
    assert renamed.status_code == 200
    shown = api.client.get(path, headers=member).json()
    assert shown["name"] == "Mine" and shown["description"] == "my meters"
    assert shown["widgets"][1]["kind"] == "latest" and shown["widgets"][1]["y"] == 4
    assert shown["widgets"][1]["min"] is None
    removed = api.client.delete(f"{path}/widgets/{added.json()['id']}", headers=member)
    assert removed.status_code == 204
    assert len(api.client.get(path, headers=member).json()["widgets"]) == 1
    assert api.client.delete(path, headers=member).status_code == 204
    gone = api.client.get(path, headers=member)
    assert gone.status_code == 404 and gone.json()["code"] == "dashboard_not_found"


def test_private_dashboards_are_their_owners_alone(communities: Api) -> None:
    api = communities
    owner = api.login("pro@alpha.test")
    dashboard = create(api, owner, widgets=[LINE])
    path = f"/api/dashboards/{dashboard['id']}"
    for other in (api.login("op@alpha.test"), api.login("pro@beta.test"),
                  api.login("root@commonwatt.test", role="admin")):
        assert [item["id"] for item in api.client.get(
            "/api/dashboards", headers=other).json()["items"]] == []
        for response in (api.client.get(path, headers=other),
                         api.client.patch(path, headers=other, json={"name": "x"}),
                         api.client.delete(path, headers=other),
                         api.client.post(f"{path}/widgets", headers=other, json=BALANCE)):
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "dashboard_not_found"
    assert api.client.get(path, headers=owner).json()["widgets"][0]["kind"] == "line"


def test_shared_dashboard_read_by_members_changed_by_operators(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    shared = create(api, member, community="alpha", widgets=[BALANCE])
    path = f"/api/dashboards/{shared['id']}"
    operator = api.login("op@alpha.test")
    seen = api.client.get(path, headers=operator).json()
    assert seen["community"] == "alpha" and seen["editable"] is True
    assert api.client.patch(path, headers=operator,
                            json={"description": "for everyone"}).status_code == 200
    operators_own = create(api, operator, community="alpha", name="Operations")
    listed = api.client.get("/api/dashboards", headers=member).json()["items"]
    assert [(item["id"], item["editable"]) for item in listed] == [
        (shared["id"], True), (operators_own["id"], False)]
    refused = api.client.patch(f"/api/dashboards/{operators_own['id']}", headers=member,
                               json={"name": "mine now"})
    assert refused.status_code == 403 and refused.json()["code"] == "dashboard_read_only"
    refused = api.client.delete(f"/api/dashboards/{operators_own['id']}", headers=member)
    assert refused.status_code == 403
    for outsider in ("sus@alpha.test", "gone@alpha.test", "op@beta.test"):
        answer = api.client.get(path, headers=api.login(outsider))
        assert answer.status_code == 404, outsider
    overseer = api.login("eye@example.org", role="overseer")
    assert api.client.get(path, headers=overseer).json()["editable"] is False
    assert api.client.get(f"/api/dashboards/{operators_own['id']}",
                          headers=member).json()["name"] == "Operations"
    unshared = api.client.patch(path, headers=member, json={"community": None})
    assert unshared.json()["community"] is None
    assert api.client.get(path, headers=operator).status_code == 404


def test_sharing_with_another_community_is_community_not_found(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    for community in ("beta", "nowhere"):
        answer = api.client.post("/api/dashboards", headers=member,
                                 json={"name": "x", "community": community})
        assert answer.status_code == 404 and answer.json()["code"] == "community_not_found"
    assert api.client.get("/api/dashboards", headers=member).json()["items"] == []
    admin_shared = create(api, api.admin(), community="beta")
    assert admin_shared["community"] == "beta"


@pytest.mark.parametrize(("widget", "status", "code"), [
    ({**LINE, "x": 6}, 422, "invalid_widget_place"),
    ({**LINE, "sensors": []}, 422, "invalid_widget"),
    ({**LINE, "sensors": ["a", "a"]}, 422, "invalid_widget"),
    ({**LINE, "channel": None}, 400, "bad_request"),
    ({key: value for key, value in LINE.items() if key != "channel"}, 422, "invalid_widget"),
    ({**LINE, "min": 1}, 422, "invalid_widget"),
    ({**LINE, "kind": "gauge", "sensors": ["alpha-s1"], "min": 5, "max": 5}, 422,
     "invalid_widget"),
    ({**LINE, "kind": "latest"}, 422, "invalid_widget"),
    ({**BALANCE, "sensors": ["alpha-s1"]}, 422, "invalid_widget"),
    ({**BALANCE, "community": None}, 422, "invalid_widget"),
    ({**LINE, "community": "alpha"}, 422, "invalid_widget"),
    ({**LINE, "x": 4, "y": 2}, 409, "widget_overlap"),
    ({**LINE, "w": 13}, 400, "bad_request"),
    ({**LINE, "window": "P2Y"}, 400, "bad_request"),
    ({**LINE, "kind": "pie"}, 400, "bad_request"),
])
def test_refused_widgets_leave_the_dashboard_as_it_was(communities: Api, widget: dict[str, Any],
                                                       status: int, code: str) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    dashboard = create(api, member, widgets=[LINE])
    path = f"/api/dashboards/{dashboard['id']}"
    answer = api.client.post(f"{path}/widgets", headers=member, json=widget)
    assert answer.status_code == status, answer.text
    if status != 400:
        assert answer.json()["code"] == code
    stored = api.client.get(path, headers=member).json()["widgets"]
    assert stored == dashboard["widgets"]
    if status == 409:
        return
    replaced = api.client.put(f"{path}/widgets/{stored[0]['id']}", headers=member, json=widget)
    assert replaced.status_code == status
    assert api.client.get(path, headers=member).json()["widgets"] == stored


def test_overlapping_widgets_refuse_the_whole_dashboard(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    refused = api.client.post("/api/dashboards", headers=member,
                              json={"name": "x", "widgets": [LINE, {**BALANCE, "x": 4}]})
    assert refused.status_code == 409 and refused.json()["code"] == "widget_overlap"
    assert api.client.get("/api/dashboards", headers=member).json()["items"] == []


def test_widgets_of_other_dashboards_and_bad_requests(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    first = create(api, member, widgets=[LINE])
    second = create(api, member)
    widget_id = first["widgets"][0]["id"]
    for response in (
            api.client.put(f"/api/dashboards/{second['id']}/widgets/{widget_id}",
                           headers=member, json=LINE),
            api.client.delete(f"/api/dashboards/{second['id']}/widgets/{widget_id}",
                              headers=member)):
        assert response.status_code == 404 and response.json()["code"] == "widget_not_found"
    assert api.client.get("/api/dashboards").status_code == 401
    assert api.client.get("/api/dashboards?cursor=NOT!", headers=member).status_code == 400
    assert api.client.patch(f"/api/dashboards/{first['id']}", headers=member,
                            json={}).status_code == 400
    assert api.client.post("/api/dashboards", headers=member, content=b"name=x",
                           ).status_code == 400


def test_listing_pages_with_a_cursor(communities: Api) -> None:
    api = communities
    member = api.login("pro@alpha.test")
    ids = [create(api, member, name=f"d{index}")["id"] for index in range(3)]
    first = api.client.get("/api/dashboards?limit=2", headers=member).json()
    rest = api.client.get(f"/api/dashboards?limit=2&cursor={first['next_cursor']}",
                          headers=member).json()
    assert [item["id"] for item in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None
