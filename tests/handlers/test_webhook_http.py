"""The delivery client over TLS: it connects to the checked address and verifies the
certificate against the URL's host name (the TLS server name), never against the address."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from handlers import webhook_http, webhook_targets
from handlers.webhook_delivery import sign_and_send
from storage.webhooks import DueDelivery, new_secret
from tests.webhook_receiver import Receiver

HOST = "hooks.example"


@pytest.fixture
def tls_receiver(tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server on loopback with a certificate for hooks.example (trusted here only);
    hooks.example resolves to 127.0.0.1. Its port and the Host headers it got."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host in (HOST, "other.example") else host, *args, **kwargs)

    monkeypatch.setattr(webhook_targets.socket, "getaddrinfo", resolve)
    monkeypatch.setattr(webhook_http, "_TLS", ssl.create_default_context(cafile=str(cert)))
    monkeypatch.setattr(webhook_http, "_local", threading.local())
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()


def _due(url: str) -> DueDelivery:
    secret = new_secret()
    return DueDelivery(delivery_id=1, endpoint_id=1, message_id="msg_1", event_type="ping",
                       payload={"community": "alpha", "endpoint_id": 1},
                       created_at=datetime.now(UTC), url=url, secrets=(secret,))


def test_https_goes_to_the_checked_address_with_the_urls_name(
        tls_receiver: tuple[int, list[str]]) -> None:
    port, hosts = tls_receiver
    outcome = sign_and_send(_due(f"https://{HOST}:{port}/hook"), allow_private=True,
                            timeout_s=5)
    assert outcome.delivered and outcome.response_status == 204, outcome
    assert hosts == [f"{HOST}:{port}"]
    # The certificate names hooks.example, not other.example: the name is checked too.
    refused = sign_and_send(_due(f"https://other.example:{port}/hook"), allow_private=True,
                            timeout_s=5)
    assert not refused.delivered and refused.error is not None
    assert "SSLCertVerificationError" in refused.error
    assert hosts == [f"{HOST}:{port}"]  # nothing was sent over the refused connection


def test_a_kept_connection_closed_by_the_endpoint_is_opened_again() -> None:
    receiver = Receiver()
    try:
        due = _due(receiver.url)
        receiver.secrets.append(due.secrets[0])
        assert sign_and_send(due, allow_private=True, timeout_s=5).delivered
        receiver.down()
        receiver.up()  # same port: the kept connection is dead
        assert sign_and_send(due, allow_private=True, timeout_s=5).delivered
        assert [item.event is not None for item in receiver.received] == [True, True]
    finally:
        receiver.down()
