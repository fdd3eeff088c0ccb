"""schemathesis over every operation of the spec, authenticated, with all default checks."""

from __future__ import annotations

import os
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
from tests.conftest import REFERENCE_BUNDLES_DIR

MAX_EXAMPLES = int(os.environ.get("COMMONWATT_FUZZ_EXAMPLES", "60"))
ADMIN_EMAIL = "fuzz-admin@commonwatt.test"


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An app on a fresh SQLite registry holding the reference bundles and an admin."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=data_dir, jwt_secret=SecretStr("fuzz-" + "k" * 40),
                              validate_responses=False, max_body_bytes=1024 * 1024))
    runtime = app.runtime  # type: ignore[attr-defined]
    with Session(runtime.engine) as session:
        create_user(session, email=ADMIN_EMAIL, password="fuzzing password", role="admin")
        documents = [document for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))
                     for document in parse_yaml_documents(path.read_bytes())]
        import_bundles(session, documents, dry_run=False, force=False)
        session.commit()
    yield app
    runtime.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/api/openapi.json", fuzzed_app)


def admin_headers(app: Any) -> dict[str, str]:
    """A fresh access token for every case, so a fuzzed logout cannot lock the run out."""
    runtime = app.runtime
    with Session(runtime.engine) as session:
        admin = session.exec(select(User).where(User.email == ADMIN_EMAIL)).one()
    assert admin.id is not None
    token = issue_access_token(secret=runtime.jwt_secret, user_id=admin.id, email=admin.email,
                               ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_operation_conforms_to_the_contract(case: Any, fuzzed_app: Any) -> None:
    case.call_and_validate(headers=admin_headers(fuzzed_app))
