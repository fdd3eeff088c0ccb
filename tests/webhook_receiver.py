"""A real webhook receiver for tests and benchmarks: an HTTP server on loopback (a thread)
that verifies every delivery's signature with the standardwebhooks library."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    """One request as it arrived: headers (lower-case), body, verified event (None: the
    signature did not verify), when."""

    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None
    at: float


@dataclass
class Receiver:
    """Answers `status` (after `delay_s`, with `answer` as body); `secrets` are the ones a
    signature may verify with; `down()` and `up()` stop and restart it on the same port."""

    status: int = 204
    delay_s: float = 0.0
    answer: bytes = b""
    headers_out: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    started: int = 0
    port: int = 0
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        """The event, if one of the known secrets verifies its signature."""
        for secret in self.secrets:
            try:
                event: dict[str, Any] = Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            return event
        return None

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver.arrived:
                    receiver.started += 1
                    receiver.arrived.notify_all()
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.arrived:
                    receiver.received.append(Received(headers, body,
                                                      receiver.verify(body, headers),
                                                      time.time()))
                    receiver.arrived.notify_all()
                self.send_response(receiver.status)
                for name, value in receiver.headers_out.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, *_args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_started(self, count: int, timeout_s: float = 20) -> None:
        """Wait until `count` requests began to arrive (before their delay)."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while self.started < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.started} of {count} requests began")
                self.arrived.wait(left)

    def wait_for(self, count: int, timeout_s: float = 20) -> list[Received]:
        """Wait until `count` requests arrived; all of them."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.received)} of {count} deliveries arrived")
                self.arrived.wait(left)
            return list(self.received)
