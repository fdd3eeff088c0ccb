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


@pytest.fixture
def environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The environment a command-line run sees: a data directory and a registry of its own."""
    values = {"COMMONWATT_DATA_DIR": str(tmp_path / "var"),
              "COMMONWATT_DATABASE_URL": database_url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
