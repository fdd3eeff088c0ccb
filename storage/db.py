"""Engines and sessions: SQLite (WAL, foreign keys, busy timeout) by default, PostgreSQL by URL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import Session, create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b",
                             re.IGNORECASE)
# Job rows (progress, log) are no registry facts: writing them leaves the caches valid.
JOB_STATEMENT = re.compile(r'\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?job"?[\s(]',
                           re.IGNORECASE)
WROTE_KEY = "commonwatt.wrote"


class _CommittedWrites:
    """How many registry transactions that changed something have committed in this process."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()


_committed_writes = _CommittedWrites()


def registry_version() -> int:
    """A number that changes whenever a registry transaction of this process that wrote
    anything commits: what caches of registry facts compare to know they are still true."""
    return _committed_writes.count


def _note_write(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if WRITE_STATEMENT.match(statement) and not JOB_STATEMENT.match(statement):
        connection.info[WROTE_KEY] = True


def _count_commit(connection: Any) -> None:
    if connection.info.pop(WROTE_KEY, False):
        with _committed_writes.lock:
            _committed_writes.count += 1


def _forget_write(connection: Any) -> None:
    connection.info.pop(WROTE_KEY, None)


def _watch_writes(engine: Engine) -> Engine:
    event.listen(engine, "before_cursor_execute", _note_write)
    event.listen(engine, "commit", _count_commit)
    event.listen(engine, "rollback", _forget_write)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level, so SQLAlchemy's BEGIN below is the only transaction start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY_OPTION = "commonwatt_read_only"


def _sqlite_on_begin(connection: Any) -> None:
    # A write transaction takes the write lock up front (BEGIN IMMEDIATE), so concurrent
    # writers queue on the busy timeout instead of failing when they upgrade a read lock.
    # A read-only one (BEGIN) reads its WAL snapshot beside them.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_registry_engine(database_url: str) -> Engine:
    """An engine for the registry database at `database_url` (sqlite:/// or postgresql://)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return _watch_writes(engine)
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return _watch_writes(create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20))


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any exception.

    A read-only session must not write: on SQLite it does not take the write lock, so reads
    run side by side with each other and with one writer.
    """
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def database_status(engine: Engine) -> dict[str, Any]:
    """Whether the database answers, its backend, and the applied migration revision."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return {"status": "ok", "backend": engine.dialect.name, "revision": revision}
    except Exception as error:  # any driver error means "down"; the detail stays in the log
        return {"status": "error", "backend": engine.dialect.name, "error": type(error).__name__}
