"""The bundle format's JSON Schema (bundles/community.schema.json) as OpenAPI 3.0 components.

The JSON import documents its `bundle` with the very schema the import enforces: each of the
format's definitions becomes a `Bundle<Name>` component, the root becomes `CommunityBundle`,
and what OpenAPI 3.0 cannot say is rewritten (`type: [X, "null"]` as `nullable`, `const` as a
one-value enum) or, for `propertyNames`, moved into the description: the import still checks
map keys against the pattern. Inline objects, maps and enums get names of their own, so generated
clients have one type for each.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

FORMAT_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "bundles" / "community.schema.json"
ROOT_NAME = "CommunityBundle"
PREFIX = "Bundle"
# Keywords of JSON Schema draft 7 that an OpenAPI 3.0 schema object does not have, and `title`
# (generators would name models after it instead of after the component).
DROPPED = {"$schema", "$id", "$comment", "version", "definitions", "propertyNames", "const",
           "title"}


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def _acronyms_as_words(name: str) -> str:
    """`EVChargerAsset` as `EvChargerAsset`: generators split names at each capital."""
    return re.sub(r"([A-Z])([A-Z]+)(?=[A-Z][a-z]|$)",
                  lambda match: match[1] + match[2].lower(), name)


class _Converter:
    """Turns draft-7 schemas into OpenAPI 3.0 ones, collecting the named components."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self.components: dict[str, dict[str, Any]] = {}

    def definition(self, name: str) -> dict[str, Any]:
        """A reference to a definition, converted the first time it is used (unused ones are
        left out: linters refuse unused components)."""
        component = PREFIX + _acronyms_as_words(name)
        if component not in self.components:
            return self.name(component, self.definitions[name])
        return {"$ref": f"#/components/schemas/{component}"}

    def name(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        if name in self.components:
            raise ValueError(f"two bundle-format schemas would be named {name}")
        self.components[name] = {}
        self.components[name] = self.schema(schema, name)
        return {"$ref": f"#/components/schemas/{name}"}

    def schema(self, schema: dict[str, Any], owner: str) -> dict[str, Any]:
        converted: dict[str, Any] = {}
        for key, value in schema.items():
            if key in DROPPED:
                continue
            if key == "$ref":
                return self.definition(value.rsplit("/", 1)[-1])
            if key == "type" and isinstance(value, list):
                kinds = [kind for kind in value if kind != "null"]
                converted["type"] = kinds[0]
                if len(kinds) < len(value):
                    converted["nullable"] = True
            elif key == "properties":
                converted[key] = {prop: self.child(sub, owner + _pascal(prop))
                                  for prop, sub in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                suffix = "Item" if key == "items" else "Entry"
                converted[key] = self.child(value, owner + suffix)
            else:
                converted[key] = value
        if "const" in schema:
            converted["enum"] = [schema["const"]]
        names = schema.get("propertyNames")
        if isinstance(names, dict) and "pattern" in names:
            rule = f"Keys match `{names['pattern']}`."
            converted["description"] = (f"{converted['description']} {rule}"
                                        if converted.get("description") else rule)
        return converted

    def child(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        """A property's or item's schema: a reference stays one, an inline object or enum gets a
        component of its own, anything else stays inline."""
        if "$ref" in schema:
            return self.schema(schema, name)
        if schema.get("type") == "object" or "enum" in schema or "const" in schema:
            return self.name(PREFIX + name.removeprefix(PREFIX), schema)
        return self.schema(schema, name)


@cache
def _converted() -> str:
    format_schema = json.loads(FORMAT_SCHEMA_PATH.read_text(encoding="utf-8"))
    converter = _Converter(format_schema.get("definitions", {}))
    root = converter.schema(format_schema, PREFIX)
    root["description"] = (
        f"One community bundle, format v{format_schema.get('version', '0.7')}: the bundle "
        "format's JSON Schema, which the import enforces (keys of the maps match their "
        "pattern; the registry's rules beyond the schema are refused with 422).")
    root["x-commonwatt-bundle-format"] = True
    converter.components[ROOT_NAME] = root
    return json.dumps(converter.components)


def bundle_format_components() -> dict[str, dict[str, Any]]:
    """The bundle format as components: `CommunityBundle` and one `Bundle<Name>` per part."""
    components: dict[str, dict[str, Any]] = json.loads(_converted())
    return components
