"""Fixtures of the telemetry store's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.telemetry.store import TelemetryStore


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TelemetryStore]:
    """One small store for all the examples of a module's property tests (each example
    writes sensors of its own)."""
    opened = TelemetryStore(tmp_path_factory.mktemp("store") / "telemetry.duckdb",
                            memory_limit_mb=128, threads=1)
    yield opened
    opened.close()
