"""API tokens: shown once, stored hashed, listed, expired and deleted."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from storage.models import ApiToken, utc_now
from storage.tokens import hash_token
from tests.factories import Api, bearer


def test_created_token_is_shown_once_and_stored_hashed(api: Api) -> None:
    headers = api.login("ada@example.org")
    response = api.client.post("/api/tokens", headers=headers,
                               json={"name": "meter gateway", "expires_in_days": 30})
    assert response.status_code == 201
    created = response.json()
    assert created["token"].startswith("cw_")
    assert created["prefix"] == created["token"][:10]
    assert created["expires_at"] is not None
    with Session(api.engine) as session:
        stored = session.exec(select(ApiToken)).one()
    assert stored.token_hash == hash_token(created["token"])
    assert created["token"] not in stored.token_hash
    listed = api.client.get("/api/tokens", headers=headers).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "token" not in listed[0]


def test_token_authenticates_and_records_last_use(api: Api) -> None:
    headers = api.login("ada@example.org")
    token = api.client.post("/api/tokens", headers=headers, json={"name": "t"}).json()["token"]
    me = api.client.get("/api/auth/me", headers=bearer(token)).json()
    assert me["email"] == "ada@example.org"
    assert me["auth"] == "api_token"
    listed = api.client.get("/api/tokens", headers=headers).json()["items"]
    assert listed[0]["last_used_at"] is not None


def test_expired_token_is_refused(api: Api) -> None:
    headers = api.login("ada@example.org")
    created = api.client.post("/api/tokens", headers=headers,
                              json={"name": "t", "expires_in_days": 1}).json()
    with Session(api.engine) as session:
        stored = session.get(ApiToken, created["id"])
        assert stored is not None
        stored.expires_at = utc_now() - timedelta(seconds=1)
        session.add(stored)
        session.commit()
    assert api.client.get("/api/auth/me", headers=bearer(created["token"])).status_code == 401


def test_delete_token_stops_it_and_others_tokens_are_404(api: Api) -> None:
    ada = api.login("ada@example.org")
    bob = api.login("bob@example.org")
    created = api.client.post("/api/tokens", headers=ada, json={"name": "t"}).json()
    response = api.client.delete(f"/api/tokens/{created['id']}", headers=bob)
    assert response.status_code == 404
    assert response.json()["code"] == "token_not_found"
    assert api.client.delete(f"/api/tokens/{created['id']}", headers=ada).status_code == 204
    assert api.client.get("/api/auth/me", headers=bearer(created["token"])).status_code == 401
    assert api.client.delete(f"/api/tokens/{created['id']}", headers=ada).status_code == 404


def test_listing_every_token_is_for_admins(api: Api) -> None:
    ada = api.login("ada@example.org")
    api.client.post("/api/tokens", headers=ada, json={"name": "ada's"})
    response = api.client.get("/api/tokens", params={"all": "true"}, headers=ada)
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_administrator"
    admin = api.admin()
    api.client.post("/api/tokens", headers=admin, json={"name": "admin's"})
    items = api.client.get("/api/tokens", params={"all": "true"}, headers=admin).json()["items"]
    assert {item["user_email"] for item in items} == {"ada@example.org", "root@commonwatt.test"}


def test_token_pages_and_bad_requests(api: Api) -> None:
    headers = api.login("ada@example.org")
    for index in range(3):
        api.client.post("/api/tokens", headers=headers, json={"name": f"t{index}"})
    first = api.client.get("/api/tokens", params={"limit": 2}, headers=headers).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = api.client.get("/api/tokens", params={"limit": 2, "cursor": first["next_cursor"]},
                            headers=headers).json()
    assert [item["name"] for item in second["items"]] == ["t2"]
    assert second["next_cursor"] is None
    bad = api.client.get("/api/tokens", params={"cursor": "non-sense"}, headers=headers)
    assert bad.status_code == 400 and "'cursor'" in bad.json()["detail"]
    beyond = api.client.get("/api/tokens", params={"cursor": "zzzzzzzzzzzz"}, headers=headers)
    assert beyond.status_code == 200 and beyond.json() == {"items": [], "next_cursor": None}
    for body in ({}, {"name": ""}, {"name": "x", "expires_in_days": 0}, {"name": "x", "y": 1}):
        assert api.client.post("/api/tokens", headers=headers, json=body).status_code == 400
    assert api.client.post("/api/tokens", json={"name": "x"}).status_code == 401
    assert api.client.delete("/api/tokens/abc", headers=headers).status_code == 404
    assert api.client.get("/api/tokens").status_code == 401
    assert api.client.delete("/api/tokens/1").status_code == 401


def test_an_api_token_cannot_mint_tokens(api: Api) -> None:
    session_headers = api.login("ada@example.org")
    parent = api.client.post("/api/tokens", headers=session_headers,
                             json={"name": "expiring", "expires_in_days": 1}).json()
    for body in ({"name": "forever"}, {"name": "shorter", "expires_in_days": 1}):
        response = api.client.post("/api/tokens", headers=bearer(parent["token"]), json=body)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "session_required"
    listed = api.client.get("/api/tokens", headers=session_headers).json()["items"]
    assert [item["name"] for item in listed] == ["expiring"]


def test_a_login_session_still_mints_tokens_with_and_without_expiry(api: Api) -> None:
    headers = api.login("ada@example.org")
    forever = api.client.post("/api/tokens", headers=headers, json={"name": "forever"})
    assert forever.status_code == 201 and forever.json()["expires_at"] is None
    month = api.client.post("/api/tokens", headers=headers,
                            json={"name": "month", "expires_in_days": 30})
    assert month.status_code == 201 and month.json()["expires_at"] is not None
