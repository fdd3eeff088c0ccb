"""Cross-community lookups: by user id, sensor id, delivery point; single and batch."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.models import Asset, Member
from tests.factories import Api, community_doc, invalid_request, member_doc

BASE = "/api/admin/lookup"


@pytest.fixture
def api_with_data(api: Api) -> Api:
    """Communities a and b; dual@x.test is active in a and suspended in b; shared sensor and POD.

    `shared-s` and `IT-shared` are held by alice (active, in a) and by bruno (inactive, in b).
    """
    # b first: its holders of the shared ids are not active, so a may hold them too.
    api.import_yaml(community_doc("b", members={
        "bea": member_doc("bea", user_id="bea@b.test", sensors=("b-s1",)),
        "bruno": member_doc("bruno", status="inactive", sensors=("shared-s",),
                            pods=("IT-shared",)),
        "dual": member_doc("dual", user_id="dual@x.test", status="suspended"),
    }))
    api.import_yaml(community_doc("a", members={
        "op": member_doc("op", role="operator", user_id="op@a.test"),
        "alice": member_doc("alice", user_id="alice@a.test", sensors=("a-s1",),
                            pods=("IT-shared",)),
        "dual": member_doc("dual", user_id="dual@x.test"),
    }))
    # A sensor id is held by one community whatever its members' status, so neither an import
    # nor an asset write builds this state any more: alice's meter on shared-s is put in place.
    with Session(api.engine) as session:
        alice = session.exec(select(Member).where(Member.key == "alice",
                                                  Member.user_id == "alice@a.test")).one()
        assert alice.id is not None
        properties = {"name": "Meter 1 of alice", "sensor_id": "shared-s",
                      "meter_type": "bidirectional", "pod": "IT-shared"}
        session.add(Asset(community_id=alice.community_id, member_id=alice.id, key="m-alice-1",
                          asset_type="meter", name=properties["name"], sensor_id="shared-s",
                          meter_type="bidirectional", pod="IT-shared", properties=properties,
                          position=1000))
        session.commit()
    return api


def activate(api: Api, member_key: str) -> None:
    """Make every member with this key active (to build states the import refuses)."""
    with Session(api.engine) as session:
        session.execute(update(Member).where(col(Member.key) == member_key)
                        .values(status="active"))
        session.commit()


def refusals(api: Api, method: str, url: str, **kwargs: Any) -> None:
    """401 without a token, 403 for a plain member."""
    assert api.client.request(method, url, **kwargs).status_code == 401
    plain = api.client.request(method, url, headers=api.login("alice@a.test"), **kwargs)
    assert plain.status_code == 403
    assert plain.json()["code"] == "not_an_administrator"


# lookup_community_by_user_id

def test_community_by_user_id(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/community-by-user-id/bea@b.test", headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["community"] == {"id": "b", "key": "b", "name": "Community b"}
    assert (response.json()["member"]["key"], response.json()["member"]["user_id"]) == (
        "bea", "bea@b.test")
    # dual is active in a only.
    dual = api.client.get(f"{BASE}/community-by-user-id/dual@x.test", headers=api.admin())
    assert dual.json()["community"]["key"] == "a"


def test_community_by_user_id_ambiguous(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "dual")
    response = api.client.get(f"{BASE}/community-by-user-id/dual@x.test", headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_member"
    # An operator of a sees only a, so nothing is ambiguous for it.
    scoped = api.client.get(f"{BASE}/community-by-user-id/dual@x.test",
                            headers=api.login("op@a.test"))
    assert scoped.status_code == 200
    assert scoped.json()["community"]["key"] == "a"


def test_community_by_user_id_not_found(api_with_data: Api) -> None:
    api = api_with_data
    for user_id in ("nobody@x.test", "bruno@example.org"):  # bruno is not active
        response = api.client.get(f"{BASE}/community-by-user-id/{user_id}", headers=api.admin())
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"
    foreign = api.client.get(f"{BASE}/community-by-user-id/bea@b.test",
                             headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_community_by_user_id_refusals(api_with_data: Api) -> None:
    api = api_with_data
    refusals(api, "GET", f"{BASE}/community-by-user-id/bea@b.test")
    invalid_request(api.client.get(f"{BASE}/community-by-user-id/{'u' * 321}",
                          headers=api.admin()))


# lookup_community_by_sensor_id

def test_community_by_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    overseer = api.login("eye@commonwatt.test", role="overseer")
    response = api.client.get(f"{BASE}/community-by-sensor-id/b-s1", headers=overseer)
    assert response.status_code == 200, response.text
    assert response.json()["community"] == {"id": "b", "key": "b", "name": "Community b"}
    assert response.json()["member"]["key"] == "bea"
    assert response.json()["asset"]["key"] == "m-bea-0"
    # shared-s is also on bruno's meter in b, but bruno is inactive: alice's community answers.
    shared = api.client.get(f"{BASE}/community-by-sensor-id/shared-s", headers=overseer)
    assert shared.json()["community"]["key"] == "a"


def test_community_by_sensor_id_ambiguous(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "bruno")
    response = api.client.get(f"{BASE}/community-by-sensor-id/shared-s", headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_sensor"


def test_community_by_sensor_id_not_found(api_with_data: Api) -> None:
    api = api_with_data
    missing = api.client.get(f"{BASE}/community-by-sensor-id/zzz", headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "sensor_not_found"
    foreign = api.client.get(f"{BASE}/community-by-sensor-id/b-s1",
                             headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_community_by_sensor_id_refusals(api_with_data: Api) -> None:
    api = api_with_data
    refusals(api, "GET", f"{BASE}/community-by-sensor-id/b-s1")
    invalid_request(api.client.get(f"{BASE}/community-by-sensor-id/{'s' * 257}",
                          headers=api.admin()))


# lookup_community_by_delivery_point

def test_community_by_delivery_point(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/community-by-delivery-point/IT-bea-POD",
                              headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["community"]["key"] == "b"
    assert response.json()["member"]["key"] == "bea"
    assert response.json()["delivery_point"]["id"] == "IT-bea-POD"
    shared = api.client.get(f"{BASE}/community-by-delivery-point/IT-shared",
                            headers=api.admin())
    assert shared.json()["community"]["key"] == "a"


def test_community_by_delivery_point_ambiguous(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "bruno")
    response = api.client.get(f"{BASE}/community-by-delivery-point/IT-shared",
                              headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_delivery_point"
    scoped = api.client.get(f"{BASE}/community-by-delivery-point/IT-shared",
                            headers=api.login("op@a.test"))
    assert scoped.status_code == 200
    assert scoped.json()["community"]["key"] == "a"


def test_community_by_delivery_point_not_found(api_with_data: Api) -> None:
    api = api_with_data
    missing = api.client.get(f"{BASE}/community-by-delivery-point/IT-0", headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "delivery_point_not_found"
    foreign = api.client.get(f"{BASE}/community-by-delivery-point/IT-bea-POD",
                             headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_community_by_delivery_point_refusals(api_with_data: Api) -> None:
    api = api_with_data
    refusals(api, "GET", f"{BASE}/community-by-delivery-point/IT-bea-POD")
    invalid_request(api.client.get(f"{BASE}/community-by-delivery-point/{'d' * 257}",
                          headers=api.admin()))


# lookup_member_by_user_id

def test_member_by_user_id_prefers_the_active_membership(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/member-by-user-id/dual@x.test", headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["community_key"] == "a"
    assert response.json()["key"] == "dual"
    assert response.json()["status"] == "active"


def test_member_by_user_id_without_active_membership(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/member-by-user-id/bruno@example.org",
                              headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "inactive"
    assert response.json()["community_key"] == "b"


def test_member_by_user_id_ambiguous(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "dual")
    response = api.client.get(f"{BASE}/member-by-user-id/dual@x.test", headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_member"


def test_member_by_user_id_not_found(api_with_data: Api) -> None:
    api = api_with_data
    missing = api.client.get(f"{BASE}/member-by-user-id/nobody@x.test", headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    foreign = api.client.get(f"{BASE}/member-by-user-id/bea@b.test",
                             headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_member_by_user_id_refusals(api_with_data: Api) -> None:
    api = api_with_data
    refusals(api, "GET", f"{BASE}/member-by-user-id/bea@b.test")
    invalid_request(api.client.get(f"{BASE}/member-by-user-id/{'u' * 321}",
                          headers=api.admin()))


# lookup_asset_by_sensor_id

def test_asset_by_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/asset-by-sensor-id/b-s1", headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "m-bea-0", "key": "m-bea-0", "asset_type": "meter", "owner_key": "bea",
        "owner_user_id": "bea@b.test", "member_key": "bea", "community_key": "b",
        "community_name": "Community b", "name": "Meter 0 of bea", "sensor_id": "b-s1",
        "device": {}, "relationships": {},
        "properties": {"name": "Meter 0 of bea", "sensor_id": "b-s1",
                       "meter_type": "bidirectional", "pod": "IT-bea-POD"}}
    shared = api.client.get(f"{BASE}/asset-by-sensor-id/shared-s", headers=api.admin())
    assert (shared.json()["community_key"], shared.json()["key"]) == ("a", "m-alice-1")


def test_asset_by_sensor_id_ambiguous(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "bruno")
    response = api.client.get(f"{BASE}/asset-by-sensor-id/shared-s", headers=api.admin())
    assert response.status_code == 409
    assert response.json()["code"] == "ambiguous_sensor"


def test_asset_by_sensor_id_not_found(api_with_data: Api) -> None:
    api = api_with_data
    missing = api.client.get(f"{BASE}/asset-by-sensor-id/zzz", headers=api.admin())
    assert missing.status_code == 404
    assert missing.json()["code"] == "sensor_not_found"
    foreign = api.client.get(f"{BASE}/asset-by-sensor-id/b-s1", headers=api.login("op@a.test"))
    assert foreign.status_code == 404


def test_asset_by_sensor_id_refusals(api_with_data: Api) -> None:
    api = api_with_data
    refusals(api, "GET", f"{BASE}/asset-by-sensor-id/b-s1")
    invalid_request(api.client.get(f"{BASE}/asset-by-sensor-id/{'s' * 257}",
                          headers=api.admin()))


# lookup_assets_by_sensor_ids

def test_assets_by_sensor_ids(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(),
                               json={"sensor_ids": ["b-s1", "unknown", "a-s1", "b-s1", "shared-s"]})
    assert response.status_code == 200, response.text
    items = response.json()
    assert [(item["community_key"], item["key"]) for item in items] == [
        ("b", "m-bea-0"), ("a", "m-alice-0"), ("a", "m-alice-1")]


def test_assets_by_sensor_ids_empty_and_unknown(api_with_data: Api) -> None:
    api = api_with_data
    for body in ([], ["nothing", "at-all"]):
        response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(),
                                   json={"sensor_ids": body})
        assert response.status_code == 200, response.text
        assert response.json() == []


def test_assets_by_sensor_ids_scoped_for_operators(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "bruno")  # even with shared-s held twice, a's operator sees only a's asset
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.login("op@a.test"),
                               json={"sensor_ids": ["b-s1", "a-s1", "shared-s"]})
    assert response.status_code == 200, response.text
    assert [item["key"] for item in response.json()] == ["m-alice-0", "m-alice-1"]


def test_assets_by_sensor_ids_at_the_limit(api_with_data: Api) -> None:
    api = api_with_data
    many = [f"x-{index}" for index in range(499)] + ["a-s1"]
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(),
                               json={"sensor_ids": many})
    assert response.status_code == 200, response.text
    assert [item["key"] for item in response.json()] == ["m-alice-0"]


def test_assets_by_sensor_ids_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/assets-by-sensor-ids"
    for body in ({"sensor_ids": [f"s-{index}" for index in range(501)]}, {"ids": ["a"]},
                 {"sensor_ids": [""]}, {"sensor_ids": [1, 2]}, ["a-s1"]):
        invalid_request(api.client.post(url, headers=api.admin(), json=body))


def test_assets_by_sensor_ids_media_type_and_size(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/assets-by-sensor-ids"
    wrong_type = api.client.post(url, content=b"a-s1",
                                 headers={**api.admin(), "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_large = api.client.post(url, headers=api.admin(),
                                json={"sensor_ids": ["x" * (3 * 1024 * 1024)]})
    assert too_large.status_code == 413


def test_assets_by_sensor_ids_refusals(api_with_data: Api) -> None:
    refusals(api_with_data, "POST", f"{BASE}/assets-by-sensor-ids", json={"sensor_ids": ["a-s1"]})


# lookup_assets_by_user_ids

def test_assets_by_user_ids(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.post(f"{BASE}/assets-by-user-ids", headers=api.admin(),
                               json={"user_ids": ["bea@b.test", "nobody@x.test"]})
    assert response.status_code == 200, response.text
    assert [(item["community_key"], item["key"], item["owner_user_id"])
            for item in response.json()] == [("b", "m-bea-0", "bea@b.test")]
    scoped = api.client.post(f"{BASE}/assets-by-user-ids", headers=api.login("op@a.test"),
                             json={"user_ids": ["bea@b.test"]})
    assert scoped.status_code == 200 and scoped.json() == []


def test_assets_by_user_ids_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/assets-by-user-ids"
    for body in ({"user_ids": [f"u-{index}" for index in range(501)]}, ["bea@b.test"], {}):
        invalid_request(api.client.post(url, headers=api.admin(), json=body))


def test_assets_by_user_ids_refusals(api_with_data: Api) -> None:
    refusals(api_with_data, "POST", f"{BASE}/assets-by-user-ids",
             json={"user_ids": ["bea@b.test"]})


# lookup_members_by_dids

def test_members_by_dids(api_with_data: Api) -> None:
    api = api_with_data
    assert api.client.patch("/api/admin/communities/b/members/bea", json={"did": "did:web:bea"},
                            headers=api.admin()).status_code == 200
    response = api.client.post(f"{BASE}/members-by-dids", headers=api.admin(),
                               json={"dids": ["did:web:bea", "did:web:nobody"]})
    assert response.status_code == 200, response.text
    assert [(item["community_key"], item["community_name"], item["key"])
            for item in response.json()] == [("b", "Community b", "bea")]
    scoped = api.client.post(f"{BASE}/members-by-dids", headers=api.login("op@a.test"),
                             json={"dids": ["did:web:bea"]})
    assert scoped.status_code == 200 and scoped.json() == []


def test_members_by_dids_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/members-by-dids"
    for body in ({"dids": [f"d-{index}" for index in range(501)]}, ["did:web:bea"], {}):
        invalid_request(api.client.post(url, headers=api.admin(), json=body))


def test_members_by_dids_refusals(api_with_data: Api) -> None:
    refusals(api_with_data, "POST", f"{BASE}/members-by-dids", json={"dids": ["did:web:a"]})
