"""schemathesis hooks for our non-JSON bodies, loaded by schemathesis.toml (suite and CLI)."""

from __future__ import annotations

import os
import zoneinfo
from typing import Any

import schemathesis
import yaml
from schemathesis.core.media_types import YAML_MEDIA_TYPES

NO_SUCH_TOKEN_ID = 2_147_483_647  # the largest id the path takes; tokens are numbered from 1
# Spans with readings in the suite's run (tests/fuzz_world.py); any span is valid for a run by
# hand, where they find no readings and answer empty.
SPANS = (("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"),
         ("2026-03-02T06:00:00Z", "2026-03-02T18:00:00Z"),
         ("2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z"))
DATE_SPANS = (("2026-03-02", "2026-03-04"), ("2026-03-02", "2026-03-03"),
              ("2026-03-01", "2026-03-31"))
# Telemetry operations taking a span of instants, and those among them whose span is of dates.
SPANNED = frozenset(("list_readings", "get_series", "get_aggregates", "get_daily_summaries",
                     "export_readings", "get_energy_balance", "delete_readings"))
DATE_SPANNED = frozenset(("get_daily_summaries", "get_energy_balance"))
ZONES = zoneinfo.available_timezones()


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


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A run keeps the API token it authenticates with. A command-line run names that token's
    id in COMMONWATT_FUZZ_TOKEN_ID (README, "Fuzzing a running server"); a case deleting it
    (the coverage phase tries id 1, often the run's own) deletes an id no token has instead,
    which would otherwise turn every later call into a 401. The suite's run signs each case
    with a fresh login token and sets no such id. A valid telemetry read is made valid across
    its fields first (make_read_valid)."""
    make_read_valid(case)
    own = os.environ.get("COMMONWATT_FUZZ_TOKEN_ID", "").strip()
    if (own and operation_id_of(case) == "delete_token"
            and str((case.path_parameters or {}).get("token_id")) == own):
        case.path_parameters["token_id"] = NO_SUCH_TOKEN_ID


def operation_id_of(case: Any) -> str | None:
    """The case's operationId; None for a GraphQL field (the GraphQL fuzz's run)."""
    raw = case.operation.definition.raw
    return raw.get("operationId") if isinstance(raw, dict) else None


def is_positive(case: Any) -> bool:
    """Whether every part of the case was generated valid."""
    return case._meta is None or not case._meta.generation.mode.is_negative


def make_read_valid(case: Any) -> None:
    """A positive case of a telemetry span gets what a client's valid request has across its
    fields, which no JSON Schema expresses: `to` after `from` over a span the server answers
    (SPANS), a zone that exists, and, for aggregates, sensors or a community but not both.
    Every schema-valid read then answers a success (or 404 for sensors the caller cannot
    see): schemathesis.toml accepts no 400 or 422 from them."""
    operation_id = operation_id_of(case)
    if operation_id not in SPANNED or not is_positive(case) or not case.query:
        return
    query = dict(case.query)
    spans = DATE_SPANS if operation_id in DATE_SPANNED else SPANS
    if (query.get("from"), query.get("to")) not in spans:
        query["from"], query["to"] = spans[0]
    if "sensor_id" in query and "community" in query:
        del query["community"]
    if operation_id == "get_aggregates" and not {"sensor_id", "community"} & query.keys():
        query["community"] = "valle-verde"  # the demo's and the suite's community
    if "timezone" in query and query["timezone"] not in ZONES:
        query["timezone"] = "Europe/Rome"
    case.query = query
