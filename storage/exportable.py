"""What API writes must keep so that the export imports again: bundle keys, storable JSON."""

from __future__ import annotations

import math
import re
from typing import Any

from storage.errors import Invalid

# The bundle format's keys (members, areas, assets, operators). Match with fullmatch: the
# schema's `^...$` lets Python's re accept a final newline.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# Literal path segments beside `{key}` in the registry routes: a member, asset, area or
# delivery point under one of these names could not be addressed, so none may take one.
RESERVED_KEYS = frozenset({"by-user-id", "by-id", "by-sensor-id", "duplicates"})
# A sensor id as written (API asset writes, bundle import): key-like, so that it can't start
# a spreadsheet formula (= + - @) in an export. Reads still accept any stored id.
SENSOR_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
# How deep a bundle document may nest (YAML and JSON alike).
DEFAULT_MAX_DEPTH = 64
# What no database column can hold: NUL characters, lone surrogates.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# How deep in a bundle document each free-form value sits (the document is depth 1): its
# containers may nest DEFAULT_MAX_DEPTH levels in all, as bundle import allows.
MEMBER_EXTRA_DEPTH = 4  # document > members > member (extra merges into the member)
AREA_EXTRA_DEPTH = 4  # document > community > areas > area
DELIVERY_POINT_EXTRA_DEPTH = 5  # document > members > member > delivery_points > point
ASSET_PROPERTIES_DEPTH = 6  # document > members > member > assets > type > asset


def require_key(key: str, *, what: str) -> None:
    """Invalid (invalid_key) unless `key` is a bundle key; reserved_key for a path segment."""
    if not KEY_PATTERN.fullmatch(key):
        raise Invalid(f"the {what} key {key!r} does not match {KEY_PATTERN.pattern}",
                      code="invalid_key")
    require_unreserved(key, what=what)


def require_unreserved(key: str, *, what: str) -> None:
    """Invalid (reserved_key) when `key` is a literal segment of the registry's paths."""
    if key in RESERVED_KEYS:
        raise Invalid(f"the {what} key {key!r} is a word of the API's paths",
                      code="reserved_key")


def require_sensor_id(sensor_id: str) -> None:
    """Invalid (invalid_sensor_id) unless `sensor_id` is key-like."""
    if not SENSOR_ID_PATTERN.fullmatch(sensor_id):
        raise Invalid(f"the sensor id {sensor_id[:40]!r} does not match "
                      f"{SENSOR_ID_PATTERN.pattern}", code="invalid_sensor_id")


def require_storable(value: Any, *, what: str, depth: int) -> None:
    """Invalid (invalid_value) when `value`, sitting at `depth` in a bundle document, holds
    what bundle import refuses: NUL characters, lone surrogates, NaN, too deep nesting."""
    problem = check_json_value(value, max_depth=DEFAULT_MAX_DEPTH - depth + 1)
    if problem is not None:
        raise Invalid(f"{what}: {problem}", code="invalid_value")


def _unstorable_message(value: str) -> str:
    return (f"the string {value[:40]!r} holds a NUL character or a lone surrogate, which the "
            "registry can't store")


def kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def check_json_value(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> str | None:
    """Why a decoded JSON value can't be stored and exported as part of a bundle, or None.

    The value is refused as parse_json_bundle refuses a body: NUL characters and lone
    surrogates, NaN and infinity, non-string keys, containers nested deeper than `max_depth`
    (the value itself is depth 1), anything that is no JSON value.
    """
    problem = json_value_problem(value, max_depth)
    return None if problem is None else problem[1]


def json_value_problem(value: Any, max_depth: int) -> tuple[str, str] | None:
    """(code, message) of the first thing in `value` the registry can't store, or None.

    Only containers count towards the depth, as in YAML documents.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth > max_depth:
            return "yaml_too_deep", f"the value nests deeper than {max_depth} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return "invalid_key", f"the key {key!r} is not a string"
                if UNSTORABLE.search(key):
                    return "invalid_value", _unstorable_message(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if UNSTORABLE.search(item):
                return "invalid_value", _unstorable_message(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "invalid_value", "infinity and NaN can't be stored"
        elif item is not None and not isinstance(item, bool | int | float):
            return "invalid_value", f"{kind_of(item)} is not a JSON value"
    return None
