"""The HTTP client of webhook deliveries: POST to the checked address (never a name resolved
again), the URL's host in `Host` and as the TLS server name, connections kept per thread,
redirects never followed, only the first bytes of an answer kept."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from handlers.webhook_targets import Target

# Answers this small are read whole so that the connection can be used again.
REUSABLE_ANSWER_BYTES = 64 * 1024
_TLS = ssl.create_default_context()
_local = threading.local()


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, checking the certificate against the URL's host name."""

    def __init__(self, address: str, port: int, *, server_hostname: str,
                 timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=_TLS)
        self.server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = _TLS.wrap_socket(sock, server_hostname=self.server_hostname)


@dataclass(frozen=True)
class Answer:
    """An endpoint's answer: its status and the first bytes of its body."""

    status: int
    body: bytes


def _connections() -> dict[tuple[str, str, int, str], http.client.HTTPConnection]:
    if not hasattr(_local, "connections"):
        _local.connections = {}
    connections: dict[tuple[str, str, int, str], http.client.HTTPConnection] = (
        _local.connections)
    return connections


def _open(target: Target, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPS(target.address, target.port, server_hostname=target.host,
                            timeout=timeout)
    return http.client.HTTPConnection(target.address, target.port, timeout=timeout)


def post(target: Target, url: str, *, body: bytes, headers: dict[str, str],
         timeout: float, keep: int) -> Answer:
    """POST `body` to the checked address of `url`; the answer with at most `keep` bytes of
    its body. Errors are the socket's or http.client's (TimeoutError for no answer)."""
    key = (target.scheme, target.address, target.port, target.host)
    pool = _connections()
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**headers, "Host": target.host_header(), "Content-Length": str(len(body))}
    reused = key in pool
    connection = pool.pop(key, None) or _open(target, timeout)
    connection.timeout = timeout
    if connection.sock is not None:
        connection.sock.settimeout(timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        connection.close()
        if not reused:
            raise
        # A kept connection the endpoint had closed meanwhile: once more on a new one.
        return post(target, url, body=body, headers=headers, timeout=timeout, keep=keep)
    except BaseException:
        connection.close()
        raise
    length = response.length
    if length is not None and length <= REUSABLE_ANSWER_BYTES:
        data = response.read()
        if not response.will_close:
            pool[key] = connection
        else:
            connection.close()
    else:
        data = response.read(keep)
        connection.close()
    return Answer(status=response.status, body=data[:keep])
