"""schemathesis hooks for our non-JSON bodies, loaded by schemathesis.toml (suite and CLI)."""

from __future__ import annotations

from typing import Any

import schemathesis
import yaml
from schemathesis.core.media_types import YAML_MEDIA_TYPES


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
