"""schemathesis's GraphQL mode over /api/graphql: queries generated from the introspected
schema, authenticated, against an app holding the reference bundles. No answer may be a
server error, nor carry an `internal_error` (a resolver that failed)."""

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
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import Session, select

from bundles.importer import import_bundles
from bundles.parse import parse_yaml_documents
from handlers.app import create_app
from handlers.security import issue_access_token
from handlers.settings import Settings
from storage.models import User
from storage.users import create_user
from tests.conftest import REFERENCE_BUNDLES_DIR

# 30 examples an operation keep the whole suite well inside CI's time with 110 operations;
# COMMONWATT_FUZZ_EXAMPLES asks for more (the README's command-line run takes 100).
MAX_EXAMPLES = int(os.environ.get("COMMONWATT_FUZZ_EXAMPLES", "30"))
ADMIN_EMAIL = "graphql-fuzz@commonwatt.test"
DATA_DIR = Path(tempfile.mkdtemp(prefix="commonwatt-graphql-fuzz-"))


def build_app() -> tuple[Any, dict[str, str]]:
    """An app on a fresh SQLite registry holding the reference bundles, and an admin's
    Authorization header."""
    app = create_app(Settings(data_dir=DATA_DIR, jwt_secret=SecretStr("fuzz-" + "g" * 40),
                              telemetry_compact_interval_seconds=0,
                              telemetry_memory_limit_mb=256,
                              graphql_expensive_per_minute=1_000_000))
    with Session(app.runtime.engine) as session:
        create_user(session, email=ADMIN_EMAIL, password="fuzzing password", role="admin")
        documents = [document for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))
                     for document in parse_yaml_documents(path.read_bytes())]
        import_bundles(session, documents, dry_run=False, force=False)
        session.commit()
        user = session.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
        assert user.id is not None
        token = issue_access_token(secret=app.runtime.jwt_secret, user_id=user.id,
                                   email=ADMIN_EMAIL, ttl_seconds=3600)
    return app, {"Authorization": f"Bearer {token}"}


APP, HEADERS = build_app()
schema = schemathesis.graphql.from_asgi("/api/graphql", APP, headers=HEADERS)


@pytest.fixture(scope="module", autouse=True)
def _dispose_fuzzed_app() -> Iterator[None]:
    yield
    APP.runtime.close()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_generated_queries_never_fail_the_server(case: Any) -> None:
    # Arguments the schema allows may still be refused (a community key nobody has, a cursor
    # this server never issued), as the REST contract lets positive data answer 400 or 404:
    # such a refusal must carry a REST code and BAD_USER_INPUT, never a server failure.
    response = case.call_and_validate(headers=HEADERS, excluded_checks=[positive_data_acceptance])
    body = response.json()
    for error in body.get("errors") or []:
        extensions = error.get("extensions", {})
        assert extensions.get("classification") != "INTERNAL_SERVER_ERROR", body
        assert extensions.get("code") and extensions.get("status", 500) < 500, body
