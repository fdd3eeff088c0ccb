"""schemathesis over every operation of the spec, authenticated, with all default checks.

Positive and negative data are generated for every operation; every default check runs
(server errors, status code, content type, headers and response schema conformance,
negative data rejection, ignored auth, ...). The app is built when this module is collected
because schemathesis parametrizes the test from the live document.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from sqlmodel import Session, select

from bundles.importer import import_bundles
from bundles.parse import parse_yaml_documents
from handlers.app import create_app
from handlers.security import issue_access_token
from handlers.settings import Settings
from storage.models import User
from storage.users import create_user
from tests.conftest import REFERENCE_BUNDLES_DIR, REPO_ROOT

# 30 examples an operation keep the whole suite well inside CI's time with 110 operations;
# COMMONWATT_FUZZ_EXAMPLES asks for more (the README's command-line run takes 100).
MAX_EXAMPLES = int(os.environ.get("COMMONWATT_FUZZ_EXAMPLES", "30"))
ADMIN_EMAIL = "fuzz-admin@commonwatt.test"
DATA_DIR = Path(tempfile.mkdtemp(prefix="commonwatt-fuzz-"))


def build_app() -> Any:
    """An app on a fresh SQLite registry holding the reference bundles and an admin."""
    app = create_app(Settings(data_dir=DATA_DIR, jwt_secret=SecretStr("fuzz-" + "k" * 40),
                              validate_responses=False, max_body_bytes=1024 * 1024,
                              telemetry_compact_interval_seconds=0,
                              telemetry_memory_limit_mb=256))
    with Session(app.runtime.engine) as session:
        create_user(session, email=ADMIN_EMAIL, password="fuzzing password", role="admin")
        documents = [document for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))
                     for document in parse_yaml_documents(path.read_bytes())]
        import_bundles(session, documents, dry_run=False, force=False)
        session.commit()
    return app


APP = build_app()
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json", APP,
    config=schemathesis.config.SchemathesisConfig.from_path(REPO_ROOT / "schemathesis.toml"))


@pytest.fixture(scope="module", autouse=True)
def _dispose_fuzzed_app() -> Iterator[None]:
    yield
    APP.runtime.engine.dispose()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def admin_headers() -> dict[str, str]:
    """A fresh access token for every case, so a fuzzed logout cannot lock the run out."""
    runtime = APP.runtime
    with Session(runtime.engine) as session:
        admin = session.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
    assert admin.id is not None
    token = issue_access_token(secret=runtime.jwt_secret, user_id=admin.id, email=admin.email,
                               ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation_conforms_to_the_contract(case: Any) -> None:
    case.call_and_validate(headers=admin_headers())
