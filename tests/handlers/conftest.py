"""The in-process API: an app on a fresh database of each backend, with response validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url,
                    jwt_secret=SecretStr("test-secret-" + "x" * 40), validate_responses=True,
                    max_body_bytes=2 * 1024 * 1024, telemetry_compact_interval_seconds=0,
                    telemetry_memory_limit_mb=256)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    with app.test_client() as client:
        yield Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                  runtime=app.runtime)  # type: ignore[attr-defined]
    app.runtime.close()  # type: ignore[attr-defined]
