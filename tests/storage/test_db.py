"""Sessions: SQLite pragmas, read-only sessions beside a writer, all-or-nothing commits."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select

from storage.db import session_scope
from storage.models import User


def test_sqlite_runs_in_wal_with_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10_000


def test_read_only_session_reads_while_a_writer_holds_the_lock(engine: Engine) -> None:
    with session_scope(engine) as writer:
        writer.add(User(email="w@example.org", password_hash="x"))
        writer.flush()  # the writer holds the write lock until the block ends
        started = time.monotonic()
        with session_scope(engine, read_only=True) as reader:
            assert reader.exec(select(User)).all() == []  # the committed snapshot
        assert time.monotonic() - started < 2
    with session_scope(engine, read_only=True) as reader:
        assert [user.email for user in reader.exec(select(User))] == ["w@example.org"]


def test_a_failing_block_writes_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(User(email="lost@example.org", password_hash="x"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine, read_only=True) as session:
        assert session.exec(select(User)).all() == []
