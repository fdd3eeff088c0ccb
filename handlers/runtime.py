"""What a running app shares with its handlers: settings, the database engine, signing keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from connexion.context import scope as request_scope
from sqlalchemy.engine import Engine
from sqlmodel import Session

from handlers.settings import Settings
from storage.db import session_scope

SCOPE_KEY = "commonwatt.runtime"
T = TypeVar("T")


@dataclass
class Runtime:
    """The per-app state handlers need; one per app, never a module global."""

    settings: Settings
    engine: Engine
    jwt_secret: str

    @contextmanager
    def session(self, *, read_only: bool | None = None) -> Iterator[Session]:
        """A database session whose transaction commits when the block succeeds.

        Requests with a safe method (GET, HEAD) only read: their sessions are read-only
        unless `read_only` says otherwise.
        """
        if read_only is None:
            read_only = _current_method() in SAFE_METHODS
        with session_scope(self.engine, read_only=read_only) as session:
            yield session


SAFE_METHODS = frozenset({"GET", "HEAD"})


def _current_method() -> str | None:
    try:
        method: str = request_scope["method"]
    except (LookupError, RuntimeError, KeyError):
        return None  # outside a request (CLI, tests, security checks): a write session
    return method


def current_runtime() -> Runtime:
    """The runtime of the app serving the current request."""
    runtime: Runtime = request_scope[SCOPE_KEY]
    return runtime


async def in_thread(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking work (a bundle import, an export) off the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


class RuntimeMiddleware:
    """ASGI middleware that puts the app's runtime into every request scope."""

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[SCOPE_KEY] = self.runtime
        await self.app(scope, receive, send)
