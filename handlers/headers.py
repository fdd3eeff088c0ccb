"""Security headers on every answer: nosniff, no referrer, a Content-Security-Policy, and
no-store where credentials are answered."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

UI_PATH = "/api/ui"
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI loads its bundle, styles and images from /api/ui/, the document and try-it-out
# answers from /api; its page has one inline script (allowed by its hash, computed from the
# page served) and one inline style block; the UI sets styles at run time, hence
# 'unsafe-inline' for styles only.
UI_POLICY = ("default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
NO_STORE_PATHS = re.compile(
    r"^/api/(auth/.*|tokens(/.*)?|admin/communities/[^/]+/sensors/[^/]+/ingest-key)$")


def ui_policy(page: bytes) -> bytes:
    """The Content-Security-Policy of a Swagger UI page: its inline scripts by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page))
    return UI_POLICY.format(hashes=hashes).encode()


class SecurityHeadersMiddleware:
    """Adds to every answer `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`
    and a Content-Security-Policy (a strict one for the API, Swagger UI's for /api/ui/), and
    `Cache-Control: no-store` to answers that may carry credentials (login, tokens, ingest
    keys)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = bool(NO_STORE_PATHS.match(path))
        is_ui = path == UI_PATH or path.startswith(UI_PATH + "/")
        held: dict[str, Any] | None = None
        page: list[bytes] = []

        def with_headers(message: dict[str, Any], policy: bytes) -> dict[str, Any]:
            headers = [(name, value) for name, value in message.get("headers", [])
                       if not (no_store and name.lower() == b"cache-control")]
            present = {name.lower() for name, _ in headers}
            for name, value in ((b"x-content-type-options", b"nosniff"),
                                (b"referrer-policy", b"no-referrer"),
                                (b"content-security-policy", policy)):
                if name not in present:
                    headers.append((name, value))
            if no_store:
                headers.append((b"cache-control", b"no-store"))
            return {**message, "headers": headers}

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if is_ui and content_type.startswith(b"text/html"):
                    held = message  # the policy names the page's inline scripts: wait for it
                    return
                await send(with_headers(message, API_POLICY if not is_ui else
                                        UI_POLICY.format(hashes="").encode()))
                return
            if held is not None and message["type"] == "http.response.body":
                page.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await send(with_headers(held, ui_policy(b"".join(page))))
                held = None
                await send({**message, "body": b"".join(page)})
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)
