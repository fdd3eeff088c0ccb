"""Where the suite runs: under CI a missing service or tool fails the run instead of skipping."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether CI is set to anything truthy (CI=true, CI=1, CI=yes, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail under CI, where everything the suite needs is there."""
    if in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)
