"""Security headers: nosniff and no referrer everywhere, no-store on credentials, and a
Content-Security-Policy that still lets Swagger UI run."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urljoin

from tests.factories import Api


def assert_hardened(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" in headers


def test_every_answer_is_nosniff_without_referrer(api: Api) -> None:
    assert_hardened(api.client.get("/api/version"))
    assert_hardened(api.client.get("/api/openapi.json"))
    assert_hardened(api.client.get("/api/admin/communities"))  # 401 problem
    assert_hardened(api.client.get("/api/no/such/path"))  # 404 problem
    assert_hardened(api.client.post("/api/auth/login", content=b"{" + b" " * (3 << 20) + b"}",
                                    headers={"Content-Type": "application/json"}))  # 413
    answer = api.client.get("/api/version")
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_login_and_token_answers_are_not_stored(api: Api) -> None:
    headers = api.login("ada@example.org")
    login = api.client.post("/api/auth/login",
                            json={"email": "ada@example.org", "password": "wrong password"})
    created = api.client.post("/api/tokens", headers=headers, json={"name": "t"})
    listed = api.client.get("/api/tokens", headers=headers)
    for response in (login, created, listed):
        assert response.headers["cache-control"] == "no-store"
    ok = api.client.post("/api/auth/login", json={"email": "ada@example.org",
                                                  "password": "correct horse battery staple"})
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
    assert "cache-control" not in api.client.get("/api/version").headers


def test_swagger_ui_policy_allows_its_own_assets_and_inline_script_only(api: Api) -> None:
    page = api.client.get("/api/ui/")
    assert page.status_code == 200
    assert_hardened(page)
    policy = dict(part.strip().split(" ", 1)
                  for part in page.headers["content-security-policy"].split(";"))
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:  # all from our own origin ('self'), all served
        url = urljoin("http://testserver/api/ui/", asset)
        assert url.startswith("http://testserver/api/ui/")
        assert api.client.get(url).status_code == 200
