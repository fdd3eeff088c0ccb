"""The data directory: private permissions, the server lock, whether a registry is there."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from handlers.settings import Settings
from storage.db import create_registry_engine
from storage.models import Community, User

LOCK_FILE = "server.lock"


def make_private(data_dir: Path, *, create: bool) -> None:
    """The data directory 0700 and every file in it 0600 (created first when `create`)."""
    if create:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not data_dir.is_dir():
        return
    data_dir.chmod(0o700)
    for path in data_dir.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


class DataDirectoryHeld(Exception):
    """Another CommonWatt server runs on this data directory."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.holder = holder
        where = holder.get("address") or "address not yet known"
        pid = holder.get("pid")
        super().__init__(
            f"another CommonWatt server holds the data directory {data_dir} "
            f"({where}{f', process {pid}' if pid else ''}); stop it, or give this one another "
            "directory with COMMONWATT_DATA_DIR")


class ServerLock:
    """An exclusive fcntl lock on `<data dir>/server.lock`, held while a server runs.

    The file says which process holds it and where it listens, for the message a second
    server prints; the kernel drops the lock when the process ends, however it ends.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise DataDirectoryHeld naming the holder."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise DataDirectoryHeld(self.path.parent.resolve(), holder) from None
        self._descriptor = descriptor
        self.describe(address=None)

    def describe(self, *, address: str | None) -> None:
        """Write who holds the lock (this process) and where it serves."""
        assert self._descriptor is not None
        text = json.dumps({"pid": os.getpid(), "address": address,
                           "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, text.encode(), 0)

    def release(self) -> None:
        """Drop the lock; idempotent."""
        if self._descriptor is not None:
            os.ftruncate(self._descriptor, 0)
            os.close(self._descriptor)
            self._descriptor = None


def _read_holder(descriptor: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def registry_state(settings: Settings) -> str:
    """`missing` (no database or no schema yet), `empty` (no account, no community) or `ready`.

    Never creates anything: an SQLite file that is not there is not opened.
    """
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not Path(url.database).is_file():
        return "missing"
    engine = create_registry_engine(settings.resolved_database_url())
    try:
        if not inspect(engine).has_table("alembic_version"):
            return "missing"
        with Session(engine) as session:
            accounts = session.exec(select(func.count()).select_from(User)).one()
            communities = session.exec(select(func.count()).select_from(Community)).one()
        return "ready" if accounts or communities else "empty"
    finally:
        engine.dispose()
