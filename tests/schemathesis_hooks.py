"""schemathesis hooks for our non-JSON bodies, loaded by schemathesis.toml (suite and CLI)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
import yaml
from schemathesis.core.media_types import YAML_MEDIA_TYPES

NO_SUCH_TOKEN_ID = 2_147_483_647  # the largest id the path takes; tokens are numbered from 1


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
    with a fresh login token and sets no such id."""
    own = os.environ.get("COMMONWATT_FUZZ_TOKEN_ID", "").strip()
    if (own and case.operation.definition.raw.get("operationId") == "delete_token"
            and str((case.path_parameters or {}).get("token_id")) == own):
        case.path_parameters["token_id"] = NO_SUCH_TOKEN_ID
