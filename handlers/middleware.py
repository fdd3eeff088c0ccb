"""ASGI middleware: request ids, the body size cap (413) and NUL refusal, as problems."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from handlers.problems import PROBLEM_JSON, problem_body

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

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(Exception):
    """The body grew past the cap while it was read."""


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413 (by Content-Length or while streaming), and
    NUL characters in the path or query with 400, before any handler runs."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _send_413(self, send: Any) -> None:
        await self._send_problem(send, 413, "body_too_large",
                                 f"the request body is larger than {self.max_bytes} bytes")

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
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await self._send_problem(send, 400, "invalid_value",
                                     "the path or query contains a NUL character")
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._send_413(send)
            return
        if declared is None and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
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
                if size > self.max_bytes:
                    await self._send_413(send)
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
                if received > self.max_bytes:
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
                await self._send_413(send)
