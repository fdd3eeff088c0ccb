"""Cross-community lookups: by user id, sensor id, delivery point; single and batch."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col

from storage.models import Asset, Member
from tests.factories import Api, community_doc, member_doc

BASE = "/api/admin/lookup"


@pytest.fixture
def api_with_data(api: Api) -> Api:
    """Communities a and b; dual@x.test is active in a and suspended in b; shared sensor and POD.

    `shared-s` and `IT-shared` are held by alice (active, in a) and by bruno (inactive, in b).
    A sensor id is kept to one community whatever its members' status, so bruno's meter is
    given `shared-s` straight in the database, as a registry from before that rule holds it.
    """
    # b first: its holder of the shared POD is not active, so a may hold it too.
    api.import_yaml(community_doc("b", members={
        "bea": member_doc("bea", user_id="bea@b.test", sensors=("b-s1",)),
        "bruno": member_doc("bruno", status="inactive", sensors=("shared-s-later",),
                            pods=("IT-shared",)),
        "dual": member_doc("dual", user_id="dual@x.test", status="suspended"),
    }))
    api.import_yaml(community_doc("a", members={
        "op": member_doc("op", role="operator", user_id="op@a.test"),
        "alice": member_doc("alice", user_id="alice@a.test", sensors=("a-s1", "shared-s"),
                            pods=("IT-shared",)),
        "dual": member_doc("dual", user_id="dual@x.test"),
    }))
    with Session(api.engine) as session:
        session.execute(update(Asset).where(col(Asset.sensor_id) == "shared-s-later")
                        .values(sensor_id="shared-s"))
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
    assert response.json() == {"key": "b", "name": "Community b"}
    # dual is active in a only.
    dual = api.client.get(f"{BASE}/community-by-user-id/dual@x.test", headers=api.admin())
    assert dual.json()["key"] == "a"


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
    assert scoped.json()["key"] == "a"


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
    assert api.client.get(f"{BASE}/community-by-user-id/{'u' * 321}",
                          headers=api.admin()).status_code == 400


# lookup_community_by_sensor_id

def test_community_by_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    overseer = api.login("eye@commonwatt.test", role="overseer")
    response = api.client.get(f"{BASE}/community-by-sensor-id/b-s1", headers=overseer)
    assert response.status_code == 200, response.text
    assert response.json() == {"key": "b", "name": "Community b"}
    # shared-s is also on bruno's meter in b, but bruno is inactive: alice's community answers.
    shared = api.client.get(f"{BASE}/community-by-sensor-id/shared-s", headers=overseer)
    assert shared.json()["key"] == "a"


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
    assert api.client.get(f"{BASE}/community-by-sensor-id/{'s' * 257}",
                          headers=api.admin()).status_code == 400


# lookup_community_by_delivery_point

def test_community_by_delivery_point(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/community-by-delivery-point/IT-bea-POD",
                              headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["key"] == "b"
    shared = api.client.get(f"{BASE}/community-by-delivery-point/IT-shared",
                            headers=api.admin())
    assert shared.json()["key"] == "a"


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
    assert scoped.json()["key"] == "a"


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
    assert api.client.get(f"{BASE}/community-by-delivery-point/{'d' * 257}",
                          headers=api.admin()).status_code == 400


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
    assert api.client.get(f"{BASE}/member-by-user-id/{'u' * 321}",
                          headers=api.admin()).status_code == 400


# lookup_asset_by_sensor_id

def test_asset_by_sensor_id(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.get(f"{BASE}/asset-by-sensor-id/b-s1", headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "key": "m-bea-0", "asset_type": "meter", "member_key": "bea", "community_key": "b",
        "name": "Meter 0 of bea", "sensor_id": "b-s1",
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
    assert api.client.get(f"{BASE}/asset-by-sensor-id/{'s' * 257}",
                          headers=api.admin()).status_code == 400


# lookup_assets_by_sensor_ids

def test_assets_by_sensor_ids(api_with_data: Api) -> None:
    api = api_with_data
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(),
                               json=["b-s1", "unknown", "a-s1", "b-s1", "shared-s"])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(item["community_key"], item["key"]) for item in items] == [
        ("b", "m-bea-0"), ("a", "m-alice-0"), ("a", "m-alice-1")]


def test_assets_by_sensor_ids_empty_and_unknown(api_with_data: Api) -> None:
    api = api_with_data
    for body in ([], ["nothing", "at-all"]):
        response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(),
                                   json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": []}


def test_assets_by_sensor_ids_scoped_for_operators(api_with_data: Api) -> None:
    api = api_with_data
    activate(api, "bruno")  # even with shared-s held twice, a's operator sees only a's asset
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.login("op@a.test"),
                               json=["b-s1", "a-s1", "shared-s"])
    assert response.status_code == 200, response.text
    assert [item["key"] for item in response.json()["items"]] == ["m-alice-0", "m-alice-1"]


def test_assets_by_sensor_ids_at_the_limit(api_with_data: Api) -> None:
    api = api_with_data
    many = [f"x-{index}" for index in range(499)] + ["a-s1"]
    response = api.client.post(f"{BASE}/assets-by-sensor-ids", headers=api.admin(), json=many)
    assert response.status_code == 200, response.text
    assert [item["key"] for item in response.json()["items"]] == ["m-alice-0"]


def test_assets_by_sensor_ids_bad_bodies(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/assets-by-sensor-ids"
    for body in ([f"s-{index}" for index in range(501)], {"ids": ["a"]}, [""], [1, 2]):
        assert api.client.post(url, headers=api.admin(), json=body).status_code == 400


def test_assets_by_sensor_ids_media_type_and_size(api_with_data: Api) -> None:
    api = api_with_data
    url = f"{BASE}/assets-by-sensor-ids"
    wrong_type = api.client.post(url, content=b"a-s1",
                                 headers={**api.admin(), "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_large = api.client.post(url, headers=api.admin(), json=["x" * (3 * 1024 * 1024)])
    assert too_large.status_code == 413


def test_assets_by_sensor_ids_refusals(api_with_data: Api) -> None:
    refusals(api_with_data, "POST", f"{BASE}/assets-by-sensor-ids", json=["a-s1"])
