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
import yaml
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.core.media_types import YAML_MEDIA_TYPES
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


# Writes whose documented 422 (or, for the YAML body, 400) refuses what no JSON Schema can
# express -- an unknown area, a sensor held elsewhere, a body that is not a YAML bundle -- may
# answer so to schema-valid data; every other status is still checked as usual.
SEMANTIC_REFUSALS = """
[[operations]]
include-operation-id = ["import_bundle", "import_yaml_bundles", "create_member", "update_member",
                        "set_member_status", "put_area", "put_asset", "put_delivery_point"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409",
                                                     "422"]

# Telemetry: a schema-valid request may still name sensors the caller cannot see (404), a
# range whose `to` is not after `from` or a body that is no CSV or Parquet (400), or readings
# whose timestamps have no offset (422).
[[operations]]
include-operation-id = ["ingest_readings", "push_sensor_readings", "list_readings", "get_series",
                        "get_aggregates", "get_latest", "get_metrics", "get_daily_summaries",
                        "export_readings", "list_community_sensors", "get_energy_balance",
                        "create_ingest_key", "delete_ingest_key"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "404", "413", "422"]
# A fuzzed device push can exceed the webhook's documented 64 KB: 413 refuses it.
checks.negative_data_rejection.expected-statuses = ["400", "401", "404", "413", "415", "422"]
"""


@schemathesis.serializer("application/x-ndjson", "application/vnd.apache.parquet")
def serialize_binary_upload(ctx: Any, value: Any) -> bytes:
    """Readings uploads are binary bodies (`format: binary`): sent as generated."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


@schemathesis.deserializer(*YAML_MEDIA_TYPES)
def deserialize_yaml_stream(ctx: Any, response: Any) -> Any:
    """The export is a multi-document YAML stream: every document must parse; the text is kept."""
    text = response.content.decode("utf-8")
    list(yaml.safe_load_all(text))
    return text


APP = build_app()
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json", APP, config=schemathesis.config.SchemathesisConfig.from_str(
        SEMANTIC_REFUSALS))


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
