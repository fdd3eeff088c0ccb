"""What API writes must keep so that the export imports again: bundle keys, storable JSON."""

from __future__ import annotations

import re
from typing import Any

from bundles.parse import DEFAULT_MAX_DEPTH, check_json_value
from storage.errors import Invalid

# The bundle format's keys (members, areas, assets, operators). Match with fullmatch: the
# schema's `^...$` lets Python's re accept a final newline.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

# How deep in a bundle document each free-form value sits (the document is depth 1): its
# containers may nest DEFAULT_MAX_DEPTH levels in all, as bundle import allows.
MEMBER_EXTRA_DEPTH = 4  # document > members > member (extra merges into the member)
AREA_EXTRA_DEPTH = 4  # document > community > areas > area
DELIVERY_POINT_EXTRA_DEPTH = 5  # document > members > member > delivery_points > point
ASSET_PROPERTIES_DEPTH = 6  # document > members > member > assets > type > asset


def require_key(key: str, *, what: str) -> None:
    """Invalid (invalid_key) unless `key` is a bundle key."""
    if not KEY_PATTERN.fullmatch(key):
        raise Invalid(f"the {what} key {key!r} does not match {KEY_PATTERN.pattern}",
                      code="invalid_key")


def require_storable(value: Any, *, what: str, depth: int) -> None:
    """Invalid (invalid_value) when `value`, sitting at `depth` in a bundle document, holds
    what bundle import refuses: NUL characters, lone surrogates, NaN, too deep nesting."""
    problem = check_json_value(value, max_depth=DEFAULT_MAX_DEPTH - depth + 1)
    if problem is not None:
        raise Invalid(f"{what}: {problem}", code="invalid_value")
