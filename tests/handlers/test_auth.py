"""Login, logout, /auth/me, throttling, and how bad credentials are answered."""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
import pytest
from starlette.testclient import TestClient

from storage import throttle
from storage.models import utc_now
from tests.factories import DEFAULT_PASSWORD, Api, bearer, community_doc, make_user, member_doc


def login(api: Api, email: str, password: str = DEFAULT_PASSWORD) -> object:
    return api.client.post("/api/auth/login", json={"email": email, "password": password})


def test_login_returns_a_short_lived_bearer_token(api: Api) -> None:
    make_user(api.engine, "ada@example.org")
    response = login(api, "Ada@Example.org ")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"exp", "iat", "jti", "sub"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 900


def test_wrong_password_and_unknown_account_answer_the_same_401(api: Api) -> None:
    make_user(api.engine, "ada@example.org")
    wrong = login(api, "ada@example.org", "not the password")
    unknown = login(api, "nobody@example.org", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_credentials"


class Clock:
    """A settable now for the login throttle: waiting without sleeping."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "utc_now", clock)
    return clock


def from_address(api: Api, host: str) -> TestClient:
    """A client of the same app calling from another address."""
    return TestClient(api.client.app, client=(host, 40000))


def test_an_attacker_cannot_lock_the_admin_out_and_waits_longer_and_longer(
        api: Api, clock: Clock) -> None:
    make_user(api.engine, "root@example.org", role="admin")
    attacker = from_address(api, "198.51.100.66")
    failures, waits = 0, []
    while failures < 20:
        response = attacker.post("/api/auth/login",
                                 json={"email": "root@example.org", "password": "guess"})
        if response.status_code == 429:
            assert response.json()["code"] == "too_many_attempts"
            waits.append(int(response.headers["Retry-After"]))
            clock.wait(waits[-1])
            continue
        assert response.status_code == 401
        failures += 1
        # The admin, from their own address, gets in at once, every time.
        admin = from_address(api, "203.0.113.10").post(
            "/api/auth/login", json={"email": "root@example.org", "password": DEFAULT_PASSWORD})
        assert admin.status_code == 200
    # Three free failures, then 2 s doubling with each failure up to the 900 s cap.
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512] + [900] * 7
    # Even the right password from the attacker's address waits now.
    blocked = attacker.post("/api/auth/login",
                            json={"email": "root@example.org", "password": DEFAULT_PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) == 900


def test_a_successful_login_clears_its_pairs_failures(api: Api, clock: Clock) -> None:
    make_user(api.engine, "ada@example.org")
    for _ in range(3):
        assert login(api, "ada@example.org", "guess guess").status_code == 401
    assert login(api, "ada@example.org", "guess guess").status_code == 401  # now waits
    blocked = login(api, "ada@example.org")
    assert blocked.status_code == 429
    clock.wait(int(blocked.headers["Retry-After"]))
    assert login(api, "ada@example.org").status_code == 200
    for _ in range(3):  # the count starts again: three free failures
        assert login(api, "ada@example.org", "guess guess").status_code == 401
    assert login(api, "ada@example.org").status_code == 200
    make_user(api.engine, "bob@example.org")
    assert login(api, "bob@example.org").status_code == 200


def test_failed_logins_are_throttled_per_client_address(api: Api) -> None:
    for index in range(20):
        login(api, f"user{index}@example.org", "guess guess")
    make_user(api.engine, "carol@example.org")
    response = login(api, "carol@example.org")
    assert response.status_code == 429


def test_login_body_is_validated(api: Api) -> None:
    response = api.client.post("/api/auth/login", json={"email": "a@b.c"})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    response = api.client.post("/api/auth/login", content=b"email=a",
                               headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_login_body_over_the_cap_is_413(api: Api) -> None:
    response = api.client.post("/api/auth/login", content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_me_lists_memberships(api: Api) -> None:
    api.import_yaml(community_doc("a", members={
        "ada": member_doc("ada", user_id="ada@example.org", role="operator")}))
    headers = api.login("ada@example.org")
    body = api.client.get("/api/auth/me", headers=headers).json()
    assert body["email"] == "ada@example.org"
    assert body["role"] == "user"
    assert body["auth"] == "session"
    assert body["memberships"] == [{"community_key": "a", "member_key": "ada",
                                    "role": "operator", "status": "active"}]


def test_me_without_or_with_a_bad_token_is_401(api: Api) -> None:
    missing = api.client.get("/api/auth/me")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_token"
    assert missing.headers["content-type"] == "application/problem+json"
    forged = jwt.encode({"sub": "x", "uid": 1, "exp": 4102444800, "iat": 0, "jti": "j"},
                        "another key of at least thirty-two bytes", algorithm="HS256")
    for token in (forged, "garbage", "cw_unknown"):
        response = api.client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_token"


def test_unsigned_token_is_refused(api: Api) -> None:
    token = jwt.encode({"sub": "x", "uid": 1, "exp": 4102444800, "iat": 0, "jti": "j",
                        "iss": "commonwatt"}, key=None, algorithm="none")
    assert api.client.get("/api/auth/me", headers=bearer(token)).status_code == 401


def test_logout_revokes_the_token(api: Api) -> None:
    headers = api.login("ada@example.org")
    assert api.client.post("/api/auth/logout", headers=headers).status_code == 204
    response = api.client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert api.client.post("/api/auth/logout", headers=headers).status_code == 401


def test_logout_with_an_api_token_is_400(api: Api) -> None:
    headers = api.login("ada@example.org")
    token = api.client.post("/api/tokens", headers=headers, json={"name": "ci"}).json()["token"]
    response = api.client.post("/api/auth/logout", headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_session"


def test_failures_are_counted_again_after_the_window(api: Api, clock: Clock) -> None:
    make_user(api.engine, "ada@example.org")
    for _ in range(4):
        login(api, "ada@example.org", "guess guess")
    assert login(api, "ada@example.org").status_code == 429
    clock.wait(86_400 + 1)
    for _ in range(3):  # counted from 1 again: free failures
        assert login(api, "ada@example.org", "guess guess").status_code == 401
    assert login(api, "ada@example.org").status_code == 200
