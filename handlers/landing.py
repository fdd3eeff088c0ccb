"""The site root: `/` serves the dashboards page and `/static/` its files; `/api` redirects to
the API index at `/api/`."""

from __future__ import annotations

from importlib import resources
from typing import Any

INDEX_PATH = "/api/"
STATIC_PREFIX = "/static/"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
PAGE_SECURITY = (b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                 b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'")


def static_file(name: str) -> tuple[bytes, str] | None:
    """A file of the page (handlers/static) and its content type; None for any other name."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in CONTENT_TYPES:
        return None
    path = resources.files("handlers").joinpath("static", name)
    if not path.is_file():
        return None
    return path.read_bytes(), CONTENT_TYPES[suffix]


class RootRedirectMiddleware:
    """Serves the page at `GET /` and its files under `/static/`; redirects `/api` to `/api/`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else None
        if path == "/api":
            await send({"type": "http.response.start", "status": 308, "headers": [
                (b"location", INDEX_PATH.encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        found = None
        if path in ("", "/"):
            found = static_file("index.html")
        elif path is not None and path.startswith(STATIC_PREFIX):
            found = static_file(path[len(STATIC_PREFIX):])
        if found is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body, content_type = found
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", PAGE_SECURITY),
            (b"x-content-type-options", b"nosniff")]})
        await send({"type": "http.response.body",
                    "body": b"" if scope.get("method") == "HEAD" else body})
