"""What API writes must keep so the export imports again."""

from __future__ import annotations

from storage.exportable import check_json_value


def test_check_json_value_says_what_the_registry_cannot_store():
    assert check_json_value({"a": [1, "x", None, True, 1.5, {"b": []}]}) is None
    assert "NUL" in (check_json_value({"a": ["nul\x00"]}) or "")
    assert check_json_value({"a\x00": 1}) is not None
    assert check_json_value([float("nan")]) is not None
    assert check_json_value({"a": {1: "x"}}) is not None
    # Containers count towards the depth, as in YAML; the value itself is level 1.
    assert check_json_value({"a": {"b": "leaf"}}, max_depth=2) is None
    assert check_json_value({"a": {"b": {}}}, max_depth=2) is not None
