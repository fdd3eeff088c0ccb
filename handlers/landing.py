"""The site root: `/` redirects to the API index at `/api/`."""

from __future__ import annotations

from typing import Any

INDEX_PATH = "/api/"


class RootRedirectMiddleware:
    """Answers `GET /` (and HEAD) with a redirect to the API index."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in ("", "/", "/api"):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 308, "headers": [
            (b"location", INDEX_PATH.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
