"""Fixtures shared by the whole suite: databases on every backend, sessions, paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.db import create_registry_engine
from storage.migrate import upgrade
from tests.databases import fresh_database_url

REPO_ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the repository; COMMONWATT_SHARED_DIR names it for a run from a copy of
# the tree elsewhere (the mutation run tests a copy under mutants/).
SHARED_DIR = Path(os.environ.get("COMMONWATT_SHARED_DIR") or REPO_ROOT.parent / "shared")
REFERENCE_BUNDLES_DIR = SHARED_DIR / "reference" / "bundles"
REFERENCE_SCHEMA_PATH = (
    SHARED_DIR / "reference" / "rec-registry" / "schemas" / "community" / "v0.7"
    / "community.schema.json"
)


REFERENCE_OPENAPI_PATH = SHARED_DIR / "reference" / "rec-registry" / "openapi-v1.7.0.json"


def missing_reference_files() -> list[str]:
    """What of ../shared/reference the suite needs and does not find."""
    missing = [str(path) for path in (REFERENCE_SCHEMA_PATH, REFERENCE_OPENAPI_PATH)
               if not path.is_file()]
    if not sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml")):
        missing.append(f"{REFERENCE_BUNDLES_DIR}/*.yaml")
    return missing


def pytest_sessionstart(session: pytest.Session) -> None:
    """Reference files missing stop the run: tests over an empty glob would pass on nothing."""
    missing = missing_reference_files()
    if missing:
        raise pytest.UsageError(
            "the reference files of ../shared are missing (clone the repository with shared/ "
            "beside it): " + ", ".join(missing))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend in turn (PostgreSQL is skipped when unreachable)."""
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty registry database."""
    registry_engine = create_registry_engine(database_url)
    upgrade(registry_engine)
    yield registry_engine
    registry_engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated database; tests commit explicitly when they need to."""
    with Session(engine, expire_on_commit=False) as db_session:
        yield db_session
