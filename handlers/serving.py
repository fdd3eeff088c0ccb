"""`commonwatt serve`: claim the data directory, bind the port, then write and serve."""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from handlers.datadir import ServerLock, make_private
from handlers.settings import Settings


class StartRefused(Exception):
    """The server cannot start (port taken, data directory held); nothing was written."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or StartRefused saying why not."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise StartRefused(f"cannot listen on {host!r}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise StartRefused(
                f"port {port} on {host} is already in use by another program; "
                "stop it or choose another port with --port") from None
        raise StartRefused(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """The http:// address a socket listens on."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, saying "Serving on ..." once it listens and the app has started."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self.announce()


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """How uvicorn runs the app: no Server banner, proxies trusted only when configured,
    bounded headers and idle connections."""
    from handlers.slow_clients import header_timeout_protocol

    trusted = settings.trusted_proxy_list()
    return uvicorn.Config(
        app, log_level=settings.log_level.lower(), server_header=False,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or [],
        http=header_timeout_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        lifespan="on")


def serve(settings: Settings, *, host: str, port: int,
          prepare: Callable[[Settings], None] | None = None) -> int:
    """Run the server until stopped: lock the data directory, bind the port, `prepare`
    (the demo data), build the app, announce, serve. Raises StartRefused before writing."""
    from handlers.app import create_app

    os.umask(0o077)
    data_dir = settings.data_dir.resolve()
    make_private(data_dir, create=True)
    print(f"Data directory: {data_dir}", flush=True)
    lock = ServerLock(data_dir)
    lock.acquire()
    try:
        sock = bind(host, port)
        address = base_url(sock)
        lock.describe(address=address)
        try:
            if prepare is not None:
                prepare(settings)
            app = create_app(settings)

            def announce() -> None:
                print(f"Serving on {address}/api  (Swagger UI: {address}/api/ui/)", flush=True)

            AnnouncingServer(uvicorn_config(app, settings), announce).run(sockets=[sock])
        finally:
            sock.close()
    finally:
        lock.release()
    sys.stdout.flush()
    return 0
