"""What a running app shares with its handlers: settings, the database engine, signing keys."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from connexion.context import scope as request_scope
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from handlers.graphql_limits import ExpensiveQueryBudget
from handlers.settings import Settings
from storage.db import session_scope
from storage.grants import WriteGrants
from storage.holders import HolderCache
from storage.rules import RuleCache
from storage.telemetry.legacy import assign_legacy_sensors
from storage.telemetry.store import TelemetryStore
from storage.webhooks import EVENTS_WRITTEN

if TYPE_CHECKING:
    from handlers.jobqueue import JobQueue
    from handlers.mqtt import MqttLink

SCOPE_KEY = "commonwatt.runtime"
LOG = logging.getLogger("commonwatt.runtime")
T = TypeVar("T")


@dataclass
class Runtime:
    """The per-app state handlers need; one per app, never a module global."""

    settings: Settings
    engine: Engine
    jwt_secret: str
    write_grants: WriteGrants = field(default_factory=WriteGrants, repr=False)
    holders: HolderCache = field(default_factory=HolderCache, repr=False)
    rules: RuleCache = field(default_factory=RuleCache, repr=False)
    _telemetry: TelemetryStore | None = field(default=None, repr=False)
    jobs: JobQueue | None = field(default=None, repr=False)
    mqtt: MqttLink | None = field(default=None, repr=False)
    graphql_budget: ExpensiveQueryBudget = field(default_factory=ExpensiveQueryBudget,
                                                 repr=False)
    _telemetry_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def telemetry(self) -> TelemetryStore:
        """The telemetry store, opened on first use (compacted by scheduled jobs)."""
        if self._telemetry is None:
            with self._telemetry_lock:
                if self._telemetry is None:
                    settings = self.settings
                    store = TelemetryStore(settings.telemetry_path(),
                                           memory_limit_mb=settings.telemetry_memory_limit_mb,
                                           threads=settings.telemetry_threads)
                    self._assign_legacy_sensors(store)
                    self._telemetry = store
        return self._telemetry

    def open_telemetry_store(self) -> TelemetryStore | None:
        """The telemetry store if it is open (never opens it)."""
        return self._telemetry

    def start_jobs(self, *, server: bool) -> JobQueue:
        """Start the background jobs: in the server, a worker for every kind (imports too
        unless `server_runs_imports` is off while a broker URL is set) and the scheduler; in a
        `commonwatt worker` process, a worker for registry work only."""
        from handlers.jobqueue import JobQueue

        settings = self.settings
        if server:
            groups = {"telemetry"}
            if settings.server_runs_imports or not settings.broker_url:
                groups.add("registry")
        else:
            groups = {"registry"}
        self.jobs = JobQueue(self, groups=frozenset(groups))
        self.jobs.start(scheduler=server)
        return self.jobs

    def start_mqtt(self) -> None:
        """Write the broker's files from the registry (with a broker directory set) and
        subscribe to the devices' readings (with an MQTT URL set)."""
        from handlers.mqtt import MqttLink
        from handlers.mqtt_broker import sync_broker

        try:
            sync_broker(self.settings, self.engine)
        except OSError as error:
            LOG.warning("the MQTT broker's files were not written: %s", error)
        if self.settings.mqtt_url:
            self.mqtt = MqttLink(self)
            self.mqtt.start()

    def _assign_legacy_sensors(self, store: TelemetryStore) -> None:
        """Give the sensors of a file written before readings were kept per community to
        their community (see storage.telemetry.legacy); without the registry they stay
        unassigned (unread) until the next opening."""
        if not store.unassigned_sensor_ids():
            return
        try:
            with self.session(read_only=True) as session:
                assigned = assign_legacy_sensors(store, session=session)
        except SQLAlchemyError as error:
            LOG.warning("legacy telemetry sensors left unassigned: %s", error)
            return
        left = len(store.unassigned_sensor_ids())
        LOG.info("legacy telemetry sensors: %d given to their community, %d left unassigned",
                 len(assigned), left)

    def close(self) -> None:
        """Stop the MQTT link and the jobs, close the telemetry store and the engine's
        connections; idempotent."""
        if self.mqtt is not None:
            self.mqtt.stop()
            self.mqtt = None
        if self.jobs is not None:
            self.jobs.stop()
            self.jobs = None
        with self._telemetry_lock:
            if self._telemetry is not None:
                self._telemetry.close()
                self._telemetry = None
        self.engine.dispose()

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
        if session.info.get(EVENTS_WRITTEN) and self.jobs is not None:
            self.jobs.wake_webhooks()  # the committed events' deliveries are due now


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
