"""Members of a community: list, create, read, change, deactivate or purge, their points."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import func
from sqlmodel import Session, select

from storage.models import Asset, DeliveryPoint
from tests.factories import Api, community_doc, invalid_request, member_doc

MEMBERS = "/api/admin/communities/{community}/members"


def seed(api: Api) -> None:
    """Community a: operator op, consumers alice (two PODs, two meters, a PV) and carol
    (pending); community b: bob, with a did-free record."""
    api.import_yaml(
        community_doc("a", members={
            "op": member_doc("op", role="operator", user_id="op@a.test"),
            "alice": member_doc("alice", sensors=("a-s1", "a-s2"), pods=("IT-Z", "IT-A"),
                                extra_assets={"pv": {"pv-alice": {"name": "Roof PV",
                                                                  "rated_power": 6.0}}}),
            "carol": member_doc("carol", role="prosumer", status="pending"),
        }),
        community_doc("b", members={"bob": member_doc("bob", sensors=("b-s1",))}),
    )


def url(community: str = "a", member: str | None = None, suffix: str = "") -> str:
    base = MEMBERS.format(community=community)
    return base + (f"/{member}" if member is not None else "") + suffix


def new_member(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"key": "dave", "user_id": "dave@example.org", "name": "Dave",
                            "role": "consumer", "area": "north"}
    body.update(changes)
    return body


def keys(response: Any) -> list[str]:
    return [item["key"] for item in response.json()["items"]]


def operator(api: Api) -> dict[str, str]:
    return api.login("op@a.test")


def stored(api: Api, community: str, member: str) -> dict[str, Any]:
    """The member as the API reads it back."""
    response = api.client.get(url(community, member), headers=api.admin())
    assert response.status_code == 200, response.text
    return dict(response.json())


def plain_member(api: Api) -> dict[str, str]:
    return api.login("alice@example.org")


# list_members


def test_list_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url(), headers=operator(api))
    assert response.status_code == 200
    body = response.json()
    assert [item["key"] for item in body["items"]] == ["op", "alice", "carol"]
    assert body["next_cursor"] is None
    alice = body["items"][1]
    assert alice["community_key"] == "a"
    assert alice["user_id"] == "alice@example.org"
    assert alice["role"] == "consumer"
    assert alice["status"] == "active"
    assert alice["area"] == "north"
    assert alice["extra"] == {}
    assert alice["created_at"].endswith("+00:00")


@pytest.mark.parametrize(("params", "expected"), [
    ({"role": "prosumer"}, ["carol"]),
    ({"status": "active"}, ["op", "alice"]),
    ({"area": "north"}, ["op", "alice", "carol"]),
    ({"area": "south"}, []),
    ({"role": "consumer", "status": "active"}, ["alice"]),
])
def test_list_members_filters(api: Api, params: dict[str, str], expected: list[str]) -> None:
    seed(api)
    response = api.client.get(url(), params=params, headers=api.admin())
    assert response.status_code == 200
    assert keys(response) == expected


def test_list_members_pages(api: Api) -> None:
    seed(api)
    first = api.client.get(url(), params={"limit": 2}, headers=api.admin())
    assert keys(first) == ["op", "alice"]
    cursor = first.json()["next_cursor"]
    second = api.client.get(url(), params={"limit": 2, "cursor": cursor}, headers=api.admin())
    assert keys(second) == ["carol"]
    assert second.json()["next_cursor"] is None


def test_list_members_cursor_of_another_listing_stays_within_that_listing(api: Api) -> None:
    seed(api)
    first = api.client.get(url(), params={"limit": 1}, headers=api.admin())
    other = api.client.get(url("b"), params={"cursor": first.json()["next_cursor"]},
                           headers=api.admin())
    assert other.status_code == 200
    assert {item["community_key"] for item in other.json()["items"]} <= {"b"}
    for cursor in ("garbage!", "-1", "0123456789abc"):  # not base 36, or too long
        response = api.client.get(url(), params={"cursor": cursor}, headers=api.admin())
        invalid_request(response, ("query", "cursor"))


@pytest.mark.parametrize("params", [{"cursor": "%%"}, {"limit": "ten"}, {"limit": "0"},
                                    {"limit": "501"}, {"role": "x" * 65}])
def test_list_members_refuses_bad_parameters(api: Api, params: dict[str, str]) -> None:
    seed(api)
    response = api.client.get(url(), params=params, headers=api.admin())
    invalid_request(response)


@pytest.mark.parametrize("params", [{"role": "king"}, {"status": "asleep"}])
def test_list_members_with_an_unknown_role_or_status_lists_none(
        api: Api, params: dict[str, str]) -> None:
    seed(api)
    response = api.client.get(url(), params=params, headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    everyone = api.client.get(url(), headers=api.admin()).json()["items"]
    assert everyone, "the seeded community has members"


def test_list_members_of_unknown_or_foreign_community(api: Api) -> None:
    seed(api)
    for community, headers in (("nope", api.admin()), ("b", operator(api))):
        response = api.client.get(url(community), headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "community_not_found"


def test_list_members_needs_a_token(api: Api) -> None:
    assert api.client.get(url()).status_code == 401


def test_list_members_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url(), headers=plain_member(api))
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"


# create_member


def test_create_member(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(type="schema:Person", did="did:web:dave",
                                                      extra={"nickname": "D"}),
                               headers=operator(api))
    assert response.status_code == 201
    body = response.json()
    assert body["key"] == "dave"
    assert body["community_key"] == "a"
    assert body["status"] == "pending"
    assert body["type"] == "schema:Person"
    assert body["did"] == "did:web:dave"
    assert body["extra"] == {"nickname": "D"}
    listed = api.client.get(url(), headers=operator(api))
    assert keys(listed) == ["op", "alice", "carol", "dave"]


def test_create_member_with_status(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(status="active"), headers=api.admin())
    assert response.status_code == 201
    assert response.json()["status"] == "active"
    assert response.json()["did"] is None
    assert stored(api, "a", "dave") == response.json()


@pytest.mark.parametrize(("changes", "code"), [
    ({"key": "alice"}, "member_key_taken"),
    ({"user_id": "alice@example.org"}, "user_id_taken"),
])
def test_create_member_refuses_a_taken_key_or_user_id(
    api: Api, changes: dict[str, str], code: str
) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(**changes), headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == code


def test_create_member_with_a_key_or_user_id_of_another_community(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(key="bob", user_id="bob@example.org"),
                               headers=api.admin())
    assert response.status_code == 201


def test_create_member_refuses_a_did_used_in_any_community(api: Api) -> None:
    seed(api)
    first = api.client.post(url("b"), json=new_member(did="did:web:x"), headers=api.admin())
    assert first.status_code == 201
    response = api.client.post(url(), json=new_member(did="did:web:x"), headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "did_taken"


def test_create_member_refuses_an_unknown_area(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(area="south"), headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_area"
    assert response.json()["errors"][0]["code"] == "unknown_area"


def test_create_member_refuses_extra_naming_member_properties(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(extra={"role": "admin"}),
                               headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "reserved_extra_key"


@pytest.mark.parametrize("body", [
    {"key": "dave", "name": "Dave", "role": "consumer", "area": "north"},
    new_member(key="bad key!"),
    new_member(role="king"),
    new_member(colour="red"),
], ids=["no-user-id", "bad-key", "bad-role", "unknown-property"])
def test_create_member_refuses_a_malformed_body(api: Api, body: dict[str, Any]) -> None:
    seed(api)
    response = api.client.post(url(), json=body, headers=api.admin())
    invalid_request(response)


def test_create_member_in_unknown_or_foreign_community(api: Api) -> None:
    seed(api)
    for community, headers in (("nope", api.admin()), ("b", operator(api))):
        response = api.client.post(url(community), json=new_member(), headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "community_not_found"


def test_create_member_refuses_another_media_type(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), content=b"key=dave",
                               headers={**api.admin(), "Content-Type": "text/plain"})
    assert response.status_code == 415


def test_create_member_refuses_a_huge_body(api: Api) -> None:
    seed(api)
    response = api.client.post(url(), json=new_member(extra={"blob": "x" * 3_000_000}),
                               headers=api.admin())
    assert response.status_code == 413


def test_create_member_needs_a_token(api: Api) -> None:
    assert api.client.post(url(), json=new_member()).status_code == 401


def test_create_member_is_not_for_plain_members_nor_overseers(api: Api) -> None:
    seed(api)
    member = api.client.post(url(), json=new_member(), headers=plain_member(api))
    assert member.status_code == 403
    assert member.json()["code"] == "not_an_administrator"
    overseer = api.client.post(url(), json=new_member(),
                               headers=api.login("watch@commonwatt.test", role="overseer"))
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"


# get_member


def test_get_member_detail(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "alice"), headers=operator(api))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "alice"
    assert [point["id"] for point in body["delivery_points"]] == ["IT-Z", "IT-A"]
    assert body["delivery_points"][0]["member_key"] == "alice"
    assert body["asset_counts"] == {"meter": 2, "pv": 1}


def test_get_member_without_assets(api: Api) -> None:
    seed(api)
    body = api.client.get(url("a", "carol"), headers=api.admin()).json()
    assert body["asset_counts"] == {}
    assert [point["id"] for point in body["delivery_points"]] == ["IT-carol-POD"]


def test_get_unknown_member_or_one_of_another_community(api: Api) -> None:
    seed(api)
    for member in ("nobody", "bob"):
        response = api.client.get(url("a", member), headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"


def test_get_member_of_foreign_community(api: Api) -> None:
    seed(api)
    response = api.client.get(url("b", "bob"), headers=operator(api))
    assert response.status_code == 404
    assert response.json()["code"] == "community_not_found"


def test_get_member_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get(url("a", "m" * 129), headers=api.admin())
    invalid_request(response)


def test_get_member_needs_a_token(api: Api) -> None:
    assert api.client.get(url("a", "alice")).status_code == 401


def test_get_member_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "alice"), headers=plain_member(api))
    assert response.status_code == 403


# update_member


def test_update_member_changes_only_given_properties(api: Api) -> None:
    seed(api)
    created = api.client.post(url(), json=new_member(type="schema:Person", did="did:web:d",
                                                     extra={"a": 1}), headers=api.admin())
    assert created.status_code == 201
    response = api.client.patch(url("a", "dave"), json={"name": "David", "role": "prosumer"},
                                headers=operator(api))
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "David"
    assert body["role"] == "prosumer"
    assert body["type"] == "schema:Person"
    assert body["did"] == "did:web:d"
    assert body["extra"] == {"a": 1}
    assert body["user_id"] == "dave@example.org"
    assert body["updated_at"] >= created.json()["updated_at"]
    assert stored(api, "a", "dave") == body


def test_update_member_clears_type_and_did_and_replaces_extra(api: Api) -> None:
    seed(api)
    api.client.post(url(), json=new_member(type="schema:Person", did="did:web:d",
                                           extra={"a": 1}), headers=api.admin())
    response = api.client.patch(url("a", "dave"),
                                json={"type": None, "did": None, "extra": {"b": 2}},
                                headers=api.admin())
    assert response.status_code == 200
    body = response.json()
    assert (body["type"], body["did"], body["extra"]) == (None, None, {"b": 2})
    stored = api.client.get(url("a", "dave"), headers=api.admin()).json()
    assert (stored["type"], stored["did"], stored["extra"]) == (None, None, {"b": 2})


def test_update_member_to_its_own_user_id_and_did(api: Api) -> None:
    seed(api)
    api.client.post(url(), json=new_member(did="did:web:d"), headers=api.admin())
    response = api.client.patch(url("a", "dave"),
                                json={"user_id": "dave@example.org", "did": "did:web:d"},
                                headers=api.admin())
    assert response.status_code == 200
    assert stored(api, "a", "dave") == response.json()
    assert (response.json()["user_id"], response.json()["did"]) == ("dave@example.org",
                                                                    "did:web:d")


def test_update_member_area(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json={"area": "north"}, headers=api.admin())
    assert response.status_code == 200
    assert response.json()["area"] == "north"
    assert stored(api, "a", "alice") == response.json()


@pytest.mark.parametrize(("patch", "code"), [
    ({"user_id": "op@a.test"}, "user_id_taken"),
    ({"did": "did:web:b"}, "did_taken"),
])
def test_update_member_refuses_a_taken_user_id_or_did(
    api: Api, patch: dict[str, str], code: str
) -> None:
    seed(api)
    api.client.post(url("b"), json=new_member(did="did:web:b"), headers=api.admin())
    response = api.client.patch(url("a", "alice"), json=patch, headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == code


def test_update_member_refuses_an_unknown_area(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json={"area": "south"}, headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_area"


def test_update_member_refuses_extra_naming_member_properties(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json={"extra": {"assets": {}}},
                                headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "reserved_extra_key"


def test_update_member_extra_keeps_the_bundle_shape_for_the_export(api: Api) -> None:
    document = community_doc("a", members={"alice": member_doc("alice")})
    document["members"]["alice"]["delivery_points"] = []
    document["members"]["alice"]["nickname"] = "Al"
    api.import_yaml(document)
    response = api.client.patch(url("a", "alice"), json={"extra": {"team": "blue"}},
                                headers=api.admin())
    assert response.status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"},
                              headers=api.admin())
    assert exported.status_code == 200
    member = yaml.safe_load(exported.text)["members"]["alice"]
    assert member["delivery_points"] == []
    assert member["team"] == "blue"
    assert "nickname" not in member


def test_update_member_refuses_the_bundle_layers_key_in_extra(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json={"extra": {"__bundle__": {}}},
                                headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "reserved_extra_key"


@pytest.mark.parametrize("body", [{}, {"name": None}, {"key": "other"}, {"role": "king"}],
                         ids=["empty", "null-name", "key", "bad-role"])
def test_update_member_refuses_a_malformed_body(api: Api, body: dict[str, Any]) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json=body, headers=api.admin())
    invalid_request(response)


def test_update_unknown_or_foreign_member(api: Api) -> None:
    seed(api)
    missing = api.client.patch(url("a", "bob"), json={"name": "B"}, headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.patch(url("b", "bob"), json={"name": "B"}, headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


def test_update_member_refuses_another_media_type(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), content=b"name=x",
                                headers={**api.admin(), "Content-Type": "text/plain"})
    assert response.status_code == 415


def test_update_member_refuses_a_huge_body(api: Api) -> None:
    seed(api)
    response = api.client.patch(url("a", "alice"), json={"extra": {"blob": "x" * 3_000_000}},
                                headers=api.admin())
    assert response.status_code == 413


def test_update_member_needs_a_token(api: Api) -> None:
    assert api.client.patch(url("a", "alice"), json={"name": "x"}).status_code == 401


def test_update_member_is_not_for_plain_members_nor_overseers(api: Api) -> None:
    seed(api)
    member = api.client.patch(url("a", "alice"), json={"name": "x"}, headers=plain_member(api))
    assert member.status_code == 403
    overseer = api.client.patch(url("a", "alice"), json={"name": "x"},
                                headers=api.login("watch@commonwatt.test", role="overseer"))
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"


# delete_member


def count_rows(api: Api, model: type[Asset] | type[DeliveryPoint]) -> int:
    with Session(api.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_delete_member_deactivates_it(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("a", "alice"), headers=operator(api))
    assert response.status_code == 200, response.text
    assert response.json() == {"community_key": "a", "member_key": "alice", "purged": False,
                               "status": "inactive", "assets_removed": 0}
    body = api.client.get(url("a", "alice"), headers=api.admin()).json()
    assert body["status"] == "inactive"
    assert body["asset_counts"] == {"meter": 2, "pv": 1}


def test_delete_member_with_purge_erases_it_and_its_holdings(api: Api) -> None:
    seed(api)
    points, assets = count_rows(api, DeliveryPoint), count_rows(api, Asset)
    response = api.client.delete(url("a", "alice"), params={"purge": "true"},
                                 headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json() == {"community_key": "a", "member_key": "alice", "purged": True,
                               "status": None, "assets_removed": 3}
    assert api.client.get(url("a", "alice"), headers=api.admin()).status_code == 404
    assert count_rows(api, DeliveryPoint) == points - 2
    assert count_rows(api, Asset) == assets - 3
    detail = api.client.get("/api/admin/communities/a", headers=api.admin()).json()
    assert detail["member_count"] == 2


def test_delete_unknown_or_foreign_member(api: Api) -> None:
    seed(api)
    missing = api.client.delete(url("a", "bob"), headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.delete(url("b", "bob"), headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


def test_delete_member_refuses_a_bad_purge(api: Api) -> None:
    seed(api)
    response = api.client.delete(url("a", "alice"), params={"purge": "perhaps"},
                                 headers=api.admin())
    invalid_request(response)


def test_delete_member_needs_a_token(api: Api) -> None:
    assert api.client.delete(url("a", "alice")).status_code == 401


def test_delete_member_is_not_for_plain_members_nor_overseers(api: Api) -> None:
    seed(api)
    assert api.client.delete(url("a", "alice"), headers=plain_member(api)).status_code == 403
    overseer = api.client.delete(url("a", "alice"),
                                 headers=api.login("watch@commonwatt.test", role="overseer"))
    assert overseer.status_code == 403
    assert overseer.json()["code"] == "read_only"


# set_member_status


def test_set_member_status(api: Api) -> None:
    seed(api)
    response = api.client.post(url("a", "carol", "/status"), json={"status": "active"},
                               headers=operator(api))
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    active = api.client.get(url(), params={"status": "active"}, headers=api.admin())
    assert keys(active) == ["op", "alice", "carol"]


@pytest.mark.parametrize("body", [{}, {"status": "asleep"}, {"status": "active", "x": 1}])
def test_set_member_status_refuses_a_malformed_body(api: Api, body: dict[str, Any]) -> None:
    seed(api)
    response = api.client.post(url("a", "carol", "/status"), json=body, headers=api.admin())
    invalid_request(response)


def test_set_status_of_unknown_or_foreign_member(api: Api) -> None:
    seed(api)
    missing = api.client.post(url("a", "bob", "/status"), json={"status": "active"},
                              headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.post(url("b", "bob", "/status"), json={"status": "active"},
                              headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


def test_set_member_status_refuses_another_media_type(api: Api) -> None:
    seed(api)
    response = api.client.post(url("a", "carol", "/status"), content=b"active",
                               headers={**api.admin(), "Content-Type": "text/plain"})
    assert response.status_code == 415


def test_set_member_status_refuses_a_huge_body(api: Api) -> None:
    seed(api)
    response = api.client.post(url("a", "carol", "/status"),
                               content=b'{"status": "active"' + b" " * 3_000_000 + b"}",
                              headers={**api.admin(), "Content-Type": "application/json"})
    assert response.status_code == 413


def test_set_member_status_needs_a_token(api: Api) -> None:
    response = api.client.post(url("a", "carol", "/status"), json={"status": "active"})
    assert response.status_code == 401


def test_set_member_status_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.post(url("a", "carol", "/status"), json={"status": "active"},
                               headers=plain_member(api))
    assert response.status_code == 403


# get_member_by_user_id


def test_get_member_by_user_id(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "by-user-id/alice@example.org"), headers=operator(api))
    assert response.status_code == 200
    body = response.json()
    assert body["key"] == "alice"
    assert body["asset_counts"] == {"meter": 2, "pv": 1}
    assert len(body["delivery_points"]) == 2


def test_get_member_by_unknown_or_foreign_user_id(api: Api) -> None:
    seed(api)
    for user_id in ("nobody@example.org", "bob@example.org"):
        response = api.client.get(url("a", f"by-user-id/{user_id}"), headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"
    foreign = api.client.get(url("b", "by-user-id/bob@example.org"), headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


def test_get_member_by_user_id_refuses_an_overlong_id(api: Api) -> None:
    response = api.client.get(url("a", "by-user-id/" + "u" * 321), headers=api.admin())
    invalid_request(response)


def test_get_member_by_user_id_needs_a_token(api: Api) -> None:
    assert api.client.get(url("a", "by-user-id/alice@example.org")).status_code == 401


def test_get_member_by_user_id_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "by-user-id/alice@example.org"),
                              headers=plain_member(api))
    assert response.status_code == 403


# list_member_delivery_points


def test_list_member_delivery_points(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "alice", "/delivery-points"), headers=operator(api))
    assert response.status_code == 200
    items = response.json()["delivery_points"]
    assert [point["id"] for point in items] == ["IT-Z", "IT-A"]
    assert items[0] == {"id": "IT-Z", "key": "IT-Z", "type": "pod", "member_key": "alice",
                        "member_name": "Member alice", "community_key": "a",
                        "description": None, "address": None, "tariff": None, "active": True,
                        "extra": {}}


def test_list_delivery_points_of_unknown_or_foreign_member(api: Api) -> None:
    seed(api)
    missing = api.client.get(url("a", "bob", "/delivery-points"), headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.get(url("b", "bob", "/delivery-points"), headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"


def test_list_member_delivery_points_refuses_an_overlong_key(api: Api) -> None:
    response = api.client.get(url("a", "m" * 129, "/delivery-points"), headers=api.admin())
    invalid_request(response)


def test_list_member_delivery_points_needs_a_token(api: Api) -> None:
    assert api.client.get(url("a", "alice", "/delivery-points")).status_code == 401


def test_list_member_delivery_points_is_not_for_plain_members(api: Api) -> None:
    seed(api)
    response = api.client.get(url("a", "alice", "/delivery-points"), headers=plain_member(api))
    assert response.status_code == 403


# cross-community claims when a member becomes active again


def nested(levels: int) -> dict[str, Any]:
    """A mapping whose containers nest `levels` deep (itself included)."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


def held_elsewhere(api: Api) -> None:
    """Community a: inactive alice (sensor S1, POD IT-A) and inactive carol (POD IT-C);
    then community b, imported after: active bob holds S1, active dan holds IT-C. (S1 in
    both communities is a registry from before a sensor id was kept to one community
    whatever its members' status: bob's meter is given S1 directly in the database.)"""
    api.import_yaml(community_doc("a", members={
        "op": member_doc("op", role="operator", user_id="op@a.test"),
        "alice": member_doc("alice", status="inactive", sensors=("S1",), pods=("IT-A",)),
        "carol": member_doc("carol", status="inactive", pods=("IT-C",)),
    }))
    api.import_yaml(community_doc("b", members={
        "bob": member_doc("bob", sensors=("S1-later",), pods=("IT-B",)),
        "dan": member_doc("dan", pods=("IT-C",)),
    }))
    with Session(api.engine) as session:
        bob_meter = session.exec(select(Asset).where(Asset.sensor_id == "S1-later")).one()
        bob_meter.sensor_id = "S1"
        session.add(bob_meter)
        session.commit()


@pytest.mark.parametrize("how", ["status", "patch"])
@pytest.mark.parametrize(("member", "code", "value"), [
    ("alice", "sensor_held", "S1"), ("carol", "delivery_point_held", "IT-C")])
def test_a_member_holding_what_another_community_holds_stays_inactive(
    api: Api, how: str, member: str, code: str, value: str,
) -> None:
    held_elsewhere(api)
    if how == "status":
        response = api.client.post(url("a", member, "/status"), json={"status": "active"},
                                   headers=operator(api))
    else:
        response = api.client.patch(url("a", member), json={"status": "active", "name": "New"},
                                    headers=operator(api))
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == code
    assert repr(value) in body["detail"]
    assert "Community b" not in body["detail"] and "'b'" not in body["detail"]
    stored = api.client.get(url("a", member), headers=operator(api)).json()
    assert stored["status"] == "inactive"
    assert stored["name"] == f"Member {member}"


def test_a_member_holding_nothing_claimed_elsewhere_becomes_active(api: Api) -> None:
    held_elsewhere(api)
    api.client.patch(url("b", "bob"), json={"status": "inactive"}, headers=api.admin())
    # bob is inactive, but his meter in b still carries S1: alice stays inactive.
    still = api.client.post(url("a", "alice", "/status"), json={"status": "active"},
                            headers=operator(api))
    assert still.status_code == 409
    assert still.json()["code"] == "sensor_held"
    assert api.delete_asset("/api/admin/communities/b/assets/m-bob-0", "bob",
                            headers=api.admin()).status_code == 204
    response = api.client.post(url("a", "alice", "/status"), json={"status": "active"},
                               headers=operator(api))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    assert stored(api, "a", "alice")["status"] == "active"
    # Now no meter of b may carry S1 again, whatever its member's status: alice holds it.
    back = api.put_asset("/api/admin/communities/b/assets/m-bob-9", headers=api.admin(),
                          json={"member_key": "bob", "asset_type": "meter", "properties": {
                              "name": "Back", "sensor_id": "S1", "meter_type": "consumption",
                              "pod": "IT-B"}})
    assert back.status_code == 409
    assert back.json()["code"] == "sensor_held"


def test_other_status_changes_of_a_member_holding_claimed_things_pass(api: Api) -> None:
    held_elsewhere(api)
    for status in ("pending", "suspended"):
        response = api.client.post(url("a", "alice", "/status"), json={"status": status},
                                   headers=operator(api))
        assert response.status_code == 200, response.text
        assert stored(api, "a", "alice")["status"] == status


# values the bundle format refuses


def test_create_member_refuses_a_key_ending_in_a_newline(api: Api) -> None:
    seed(api)
    # The spec's pattern ends in `$`, which lets a final newline through.
    response = api.client.post(url(), json=new_member(key="carl\n"), headers=operator(api))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_key"
    assert keys(api.client.get(url(), headers=operator(api))) == ["op", "alice", "carol"]


@pytest.mark.parametrize("extra", [
    {"note": "nul\x00"}, {"nul\x00": 1}, {"deep": nested(61)}], ids=["value", "key", "deep"])
def test_member_extra_the_bundle_format_refuses(api: Api, extra: dict[str, Any]) -> None:
    seed(api)
    created = api.client.post(url(), json=new_member(extra=extra), headers=operator(api))
    assert created.status_code == 422, created.text
    assert created.json()["code"] == "invalid_value"
    patched = api.client.patch(url("a", "alice"), json={"extra": extra}, headers=operator(api))
    assert patched.status_code == 422, patched.text
    assert patched.json()["code"] == "invalid_value"
    assert api.client.get(url("a", "alice"), headers=operator(api)).json()["extra"] == {}


def test_members_written_by_the_api_export_and_import_back(api: Api) -> None:
    seed(api)
    headers = api.admin()
    deepest = {"deep": nested(60)}  # extra nests 61 levels: the bundle's 64 in all
    assert api.client.post(url(), json=new_member(key="dave.1:x-y_z", extra=deepest),
                           headers=headers).status_code == 201
    assert api.client.patch(url("a", "alice"), json={"extra": {"note": "tab\there"}},
                            headers=headers).status_code == 200
    exported = api.client.get("/api/admin/export", params={"community": "a"}, headers=headers)
    assert exported.status_code == 200, exported.text
    reimport = api.client.post("/api/admin/import/yaml", params={"force": "true"},
                               content=exported.content,
                               headers={**headers, "Content-Type": "application/yaml"})
    assert reimport.status_code == 200, reimport.text
    assert reimport.json()["reports"][0]["changes"]["members"] == {
        "added": 0, "removed": 0, "changed": 0}
    dave = api.client.get(url("a", "dave.1:x-y_z"), headers=headers).json()
    assert dave["extra"] == deepest


# put_member_name, put_member_role, put_member_area, patch_member_profile

@pytest.mark.parametrize(("suffix", "method", "body", "changed"), [
    ("/name", "PUT", {"name": "Alice B."}, {"name": "Alice B."}),
    ("/role", "PUT", {"role": "prosumer"}, {"role": "prosumer"}),
    ("/area", "PUT", {"area": "north"}, {"area": "north"}),
    ("/profile", "PATCH", {"role": "producer"}, {"role": "producer"}),
], ids=["name", "role", "area", "profile"])
def test_member_field_writes(api: Api, suffix: str, method: str, body: dict[str, Any],
                             changed: dict[str, Any]) -> None:
    seed(api)
    before = api.client.get(url("a", "alice"), headers=api.admin()).json()
    response = api.client.request(method, url("a", "alice", suffix), json=body,
                                  headers=operator(api))
    assert response.status_code == 200, response.text
    after = response.json()
    assert {name: after[name] for name in changed} == changed
    untouched = {"name", "role", "area", "status", "user_id"} - set(changed)
    assert {name: after[name] for name in untouched} == {name: before[name]
                                                         for name in untouched}
    assert [point["id"] for point in after["delivery_points"]] == ["IT-Z", "IT-A"]


@pytest.mark.parametrize(("suffix", "method", "body"), [
    ("/name", "PUT", {"name": "x"}), ("/role", "PUT", {"role": "consumer"}),
    ("/area", "PUT", {"area": "north"}), ("/profile", "PATCH", {"area": "north"}),
], ids=["name", "role", "area", "profile"])
def test_member_field_write_refusals(api: Api, suffix: str, method: str,
                                     body: dict[str, Any]) -> None:
    seed(api)
    missing = api.client.request(method, url("a", "nobody", suffix), json=body,
                                 headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.request(method, url("b", "bob", suffix), json=body,
                                 headers=operator(api))
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "community_not_found"
    extra = api.client.request(method, url("a", "alice", suffix),
                               json={**body, "status": "active"}, headers=api.admin())
    invalid_request(extra)
    assert api.client.request(method, url("a", "alice", suffix), json=body).status_code == 401
    member = api.client.request(method, url("a", "alice", suffix), json=body,
                                headers=plain_member(api))
    assert member.status_code == 403


def test_member_area_writes_refuse_an_unknown_area(api: Api) -> None:
    seed(api)
    for suffix, method in (("/area", "PUT"), ("/profile", "PATCH")):
        response = api.client.request(method, url("a", "alice", suffix), json={"area": "x"},
                                      headers=api.admin())
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_area"
    empty = api.client.patch(url("a", "alice", "/profile"), json={}, headers=api.admin())
    invalid_request(empty)
