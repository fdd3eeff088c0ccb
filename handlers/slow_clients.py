"""Time limits for slow clients: request headers (the HTTP protocol) and bodies (ASGI), 408;
and a problem, not plain text, for a request the protocol cannot read."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from handlers.problems import PROBLEM_JSON, Problem, problem_body

BODY_TIMEOUT_DETAIL = "the request body arrived too slowly; send it again"


class BodyTimeout(Problem):
    """The request body stopped arriving, or arrives too slowly (a problem wherever caught)."""

    def __init__(self) -> None:
        super().__init__(408, "body_timeout", BODY_TIMEOUT_DETAIL,
                         headers={"Connection": "close"})


class BodyTimeoutMiddleware:
    """Answers 408 `body_timeout` when a request body stalls or trickles.

    The next piece of a body must come within `timeout_s`; after that grace period the body
    must also have averaged `min_bytes_per_second`, so a large upload on a good line is never
    cut while one byte every few seconds is.
    """

    def __init__(self, app: Any, timeout_s: float, min_bytes_per_second: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.min_bytes_per_second = min_bytes_per_second

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.monotonic()
        received = 0
        body_done = False
        response_started = False

        async def timed_receive() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # later calls wait for a disconnect, for as long as it takes
                message: dict[str, Any] = await receive()
                return message
            allowed = started_at + self.timeout_s + received / self.min_bytes_per_second
            wait = min(self.timeout_s, allowed - time.monotonic())
            if wait <= 0:
                raise BodyTimeout
            try:
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimeout:
            if not response_started:
                await _send_408(send)


async def _send_408(send: Any) -> None:
    body = json.dumps(problem_body(408, "body_timeout", BODY_TIMEOUT_DETAIL)).encode()
    await send({"type": "http.response.start", "status": 408, "headers": [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers take too long, and
    answering a request it cannot read with a problem (uvicorn's own answer is plain text).

    The time is set by `header_timeout_s` on the class (a subclass made per server).
    """

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # a request has begun (or may begin) and is not in yet
        else:
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                      self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def send_400_response(self, msg: str) -> None:
        """400 `request_too_large` when the request line and headers outgrow the limit
        (COMMONWATT_MAX_HEADER_BYTES), else 400 `malformed_request`; the connection closes."""
        limit = self.config.h11_max_incomplete_event_size or 16_384  # None: h11's default
        if len(self.conn.trailing_data[0]) > limit:
            body = problem_body(400, "request_too_large", (
                f"the request line and headers exceed {limit:,} bytes; send long values in "
                "a request body"))
        else:
            body = problem_body(400, "malformed_request", "the request is not valid HTTP/1.1")
        content = json.dumps(body).encode()
        headers = [(b"content-type", PROBLEM_JSON.encode()),
                   (b"content-length", str(len(content)).encode()), (b"connection", b"close")]
        for event in (h11.Response(status_code=400, reason=b"Bad Request", headers=headers),
                      h11.Data(data=content), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """A HeaderTimeoutProtocol class whose headers must arrive within `timeout_s`."""
    return type("BoundHeaderTimeoutProtocol", (HeaderTimeoutProtocol,),
                {"header_timeout_s": timeout_s})
