"""Self-service: the caller's profile, member record, community, assets and delivery points."""

from __future__ import annotations

import pytest

from tests.factories import Api, community_doc, invalid_request, member_doc

PV = {"pv": {"pv-alice": {"name": "Roof PV", "rated_power": 6.0}}}
ENDPOINTS = ["/api/user", "/api/user/member", "/api/user/community", "/api/user/assets",
             "/api/user/assets/m-alice-0", "/api/user/delivery-points"]
ALWAYS_AVAILABLE = [path for path in ENDPOINTS if "m-alice-0" not in path]
MEMBERS_ONLY = [path for path in ENDPOINTS if path != "/api/user"]  # /user answers anyone


def seed(api: Api) -> None:
    """alice (a), bob (b), carol (a, pending); dana is an active member of both a and b."""
    api.import_yaml(
        community_doc("a", members={
            "alice": member_doc("alice", sensors=("a-s1",), pods=("IT-A2", "IT-A1"),
                                extra_assets=PV),
            "carol": member_doc("carol", status="pending"),
            "dana": member_doc("dana", sensors=("a-s9",), pods=("IT-DA",)),
        }),
        community_doc("b", members={
            "bob": member_doc("bob", sensors=("b-s1",)),
            "dana": member_doc("dana", pods=("IT-DB",)),
        }),
    )


def alice(api: Api) -> dict[str, str]:
    return api.login("alice@example.org")


def dana(api: Api) -> dict[str, str]:
    return api.login("dana@example.org")


# Every /user operation: 401, 403 not_a_member, 409 ambiguous_member, 400 bad community.


@pytest.mark.parametrize("path", ENDPOINTS)
def test_user_routes_need_a_token(api: Api, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 401


@pytest.mark.parametrize("path", MEMBERS_ONLY)
def test_user_routes_refuse_callers_without_an_active_membership(api: Api, path: str) -> None:
    seed(api)
    for email in ("stranger@example.org", "carol@example.org"):
        response = api.client.get(path, headers=api.login(email))
        assert response.status_code == 403
        assert response.json()["code"] == "not_a_member"


@pytest.mark.parametrize("path", MEMBERS_ONLY)
def test_user_routes_refuse_a_community_the_caller_is_not_in(api: Api, path: str) -> None:
    seed(api)
    response = api.client.get(path, params={"community": "b"}, headers=alice(api))
    assert response.status_code == 403
    assert response.json()["code"] == "not_a_member"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_user_routes_ask_members_of_several_communities_to_choose(api: Api, path: str) -> None:
    seed(api)
    response = api.client.get(path, headers=dana(api))
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_member"
    assert response.json()["community_keys"] == ["a", "b"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_user_routes_refuse_an_overlong_community(api: Api, path: str) -> None:
    response = api.client.get(path, params={"community": "c" * 129}, headers=alice(api))
    if path.startswith("/api/user/assets"):  # the rec-registry documents their refusals
        invalid_request(response, ("query", "community"))
    else:
        assert response.status_code == 400
        assert response.json()["code"] == "bad_request"
    assert "c" * 129 not in response.text  # the value is never echoed


# get_user_profile


def test_get_user_profile(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user", headers=alice(api))
    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["sub"] == "alice@example.org"
    assert body["user"]["email"] == "alice@example.org"
    assert body["user"]["role"] == "user"
    membership = body["membership"]
    assert membership["member"]["key"] == "alice"
    assert membership["member"]["community_key"] == "a"
    assert (membership["community"]["key"], membership["community"]["name"]) == (
        "a", "Community a")
    assert membership["assets_count"] == {"meter": 1, "pv": 1}
    assert membership["delivery_points_count"] == 2


def test_get_user_profile_without_an_active_membership(api: Api) -> None:
    seed(api)
    for email in ("stranger@example.org", "carol@example.org"):
        response = api.client.get("/api/user", headers=api.login(email))
        assert response.status_code == 200, response.text
        assert response.json()["profile"]["sub"] == email
        assert response.json()["membership"] is None
    other = api.client.get("/api/user", params={"community": "b"}, headers=alice(api))
    assert other.status_code == 200
    assert other.json()["membership"] is None


def test_get_user_profile_of_a_chosen_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user", params={"community": "b"}, headers=dana(api))
    assert response.status_code == 200
    assert response.json()["membership"]["community"]["key"] == "b"
    assert response.json()["membership"]["assets_count"] == {}


# get_user_member


def test_get_user_member(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/member", headers=alice(api))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "alice"
    assert [point["id"] for point in body["delivery_points"]] == ["IT-A2", "IT-A1"]
    assert body["asset_counts"] == {"meter": 1, "pv": 1}


def test_get_user_member_of_a_chosen_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/member", params={"community": "a"},
                              headers=dana(api))
    assert response.status_code == 200
    assert [point["id"] for point in response.json()["delivery_points"]] == ["IT-DA"]


# get_user_community


def test_get_user_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/community", headers=alice(api))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "a"
    assert (body["your_area"], body["your_role"]) == ("north", "consumer")
    assert body["member_count"] == 3
    assert list(body["areas"]) == ["north"]
    assert [node["id"] for node in body["topology"]] == ["AC-a-1"]


def test_get_user_community_of_a_chosen_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/community", params={"community": "b"},
                              headers=dana(api))
    assert response.status_code == 200
    assert response.json()["key"] == "b"


# list_user_assets


def test_list_user_assets(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/assets", headers=alice(api))
    assert response.status_code == 200
    items = response.json()["items"]
    assert response.json()["total"] == 2
    assert sorted(item["key"] for item in items) == ["m-alice-0", "pv-alice"]
    meter = next(item for item in items if item["key"] == "m-alice-0")
    assert meter["asset_type"] == "meter"
    assert meter["member_key"] == "alice"
    assert meter["community_key"] == "a"
    assert meter["sensor_id"] == "a-s1"
    assert meter["properties"]["meter_type"] == "bidirectional"


def test_list_user_assets_of_one_type(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/assets", params={"asset_type": "pv"},
                              headers=alice(api))
    assert [item["key"] for item in response.json()["items"]] == ["pv-alice"]
    none = api.client.get("/api/user/assets", params={"asset_type": "storage"},
                          headers=alice(api))
    assert none.json()["items"] == []


def test_list_user_assets_refuses_an_unknown_type(api: Api) -> None:
    response = api.client.get("/api/user/assets", params={"asset_type": "reactor"},
                              headers=alice(api))
    invalid_request(response)


# get_user_asset


def test_get_user_asset(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/assets/pv-alice", headers=alice(api))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "pv-alice"
    assert body["name"] == "Roof PV"
    assert body["properties"] == {"name": "Roof PV", "rated_power": 6.0}


@pytest.mark.parametrize("asset_key", ["m-dana-0", "m-bob-0", "nothing"],
                         ids=["same-community", "other-community", "unknown"])
def test_get_user_asset_of_someone_else(api: Api, asset_key: str) -> None:
    seed(api)
    response = api.client.get(f"/api/user/assets/{asset_key}", headers=alice(api))
    assert response.status_code == 404
    assert response.json()["code"] == "asset_not_found"


def test_get_user_asset_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get("/api/user/assets/" + "k" * 129, headers=alice(api))
    invalid_request(response)


# list_user_delivery_points


def test_list_user_delivery_points(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/delivery-points", headers=alice(api))
    assert response.status_code == 200
    items = response.json()["items"]
    assert response.json()["total"] == 2
    assert [point["id"] for point in items] == ["IT-A2", "IT-A1"]
    assert {point["member_key"] for point in items} == {"alice"}
    assert {point["community_key"] for point in items} == {"a"}


def test_list_user_delivery_points_of_a_chosen_community(api: Api) -> None:
    seed(api)
    response = api.client.get("/api/user/delivery-points", params={"community": "b"},
                              headers=dana(api))
    assert [point["id"] for point in response.json()["items"]] == ["IT-DB"]


def test_every_user_route_answers_an_active_member(api: Api) -> None:
    seed(api)
    assert all(api.client.get(path, headers=alice(api)).status_code == 200
               for path in ALWAYS_AVAILABLE)
