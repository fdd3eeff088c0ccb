"""ASGI middleware: request ids, the body size cap (413) and NUL refusal, as problems."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from handlers.problems import PROBLEM_JSON, Problem, problem_body

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (a safe incoming X-Request-ID, or a new one) and echoes it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER, b"")
        request_id = (incoming if _SAFE_REQUEST_ID.match(incoming) else
                      uuid.uuid4().hex.encode())
        scope["commonwatt.request_id"] = request_id.decode()
        # Connexion's routing records the operation in scope["extensions"]; made here, that
        # dict is shared with the copies of the scope it passes on, so the error handlers
        # (which see this scope) know the operation too, whatever the server.
        scope.setdefault("extensions", {})

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(Exception):
    """The body grew past the cap while it was read."""


WEBHOOK_PATH = re.compile(r"^/api/webhook/sensors/[^/]+$")
WEBHOOK_MAX_BYTES = 64 * 1024
UPLOAD_PATH = "/api/telemetry/readings"
UPLOAD_MEDIA_TYPES = (b"text/csv", b"application/x-ndjson", b"application/vnd.apache.parquet")


class NulRefusalMiddleware:
    """Refuses NUL characters in the path or query (400 `invalid_value`, or the
    rec-registry's 422 on its operations) once the request is routed, before validation."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
                "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")):
            raise Problem(400, "invalid_value", "the path or query contains a NUL character")
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses bodies over their cap with 413 (by Content-Length or while streaming), before
    any handler runs.

    The cap is `max_bytes`, but 64 KB for device pushes and `upload_max_bytes` for readings
    uploads (CSV, NDJSON, Parquet), which stream through unbuffered.
    """

    def __init__(self, app: Any, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes

    def _cap(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> tuple[int, bool]:
        """The byte cap of this request, and whether its body is a streamed upload."""
        path = scope.get("path", "")
        if WEBHOOK_PATH.match(path):
            return WEBHOOK_MAX_BYTES, False
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if path == UPLOAD_PATH and media_type in UPLOAD_MEDIA_TYPES:
            return self.upload_max_bytes, True
        return self.max_bytes, False

    async def _send_413(self, send: Any, cap: int) -> None:
        await self._send_problem(send, 413, "body_too_large",
                                 f"the request body is larger than {cap} bytes")

    @staticmethod
    async def _send_problem(send: Any, status: int, code: str, detail: str) -> None:
        body = json.dumps(problem_body(status, code, detail)).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cap, streamed = self._cap(scope, headers)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await self._send_413(send, cap)
            return
        if (declared is None and not streamed
                and b"chunked" in headers.get(b"transfer-encoding", b"").lower()):
            # Connexion reads a body without Content-Length as absent: buffer it (within the
            # cap) and say how long it is.
            chunks: list[bytes] = []
            size, more_body = 0, True
            while more_body:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > cap:
                    await self._send_413(send, cap)
                    return
                more_body = message.get("more_body", False)
            scope = {**scope, "headers": [
                *[(name, value) for name, value in scope["headers"]
                  if name not in (b"transfer-encoding", b"content-length")],
                (b"content-length", str(size).encode())]}
            buffered = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

            async def replay() -> dict[str, Any]:
                return buffered.pop() if buffered else await receive()

            await self.app(scope, replay, send)
            return
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._send_413(send, cap)
