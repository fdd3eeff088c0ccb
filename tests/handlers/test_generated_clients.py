"""Clients generated from the served document: Python (openapi-python-client) and TypeScript
(openapi-typescript with openapi-fetch) build, type-check, and drive a live server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import (
    PYTHON_DIR,
    SAMPLE_BUNDLE,
    TYPESCRIPT_DIR,
    DemoServer,
    demo_server,
    node_tool,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("server") / "var") as running:
        yield running


@pytest.fixture(scope="module")
def document_file(server: DemoServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("document") / "openapi.json"
    path.write_text(json.dumps(server.document))
    return path


def run(command: list[str], cwd: Path | None = None, **env: str) -> str:
    """Run a command; its output, or a failure showing it."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, **env}, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command[:3])} ... failed:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def python_client(document_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated package, generated with no warning and `pip install`ed into a target dir."""
    work = tmp_path_factory.mktemp("python-client")
    run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document_file),
         "--output-path", str(work / "commonwatt-client"), "--meta", "setup",
         "--config", str(PYTHON_DIR / "config.yaml"),
         "--custom-template-path", str(PYTHON_DIR / "templates"), "--fail-on-warning"])
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(work / "site"), str(work / "commonwatt-client")])
    return work / "site"


def test_the_python_client_has_a_model_per_component_and_no_anonymous_ones(
    python_client: Path, server: DemoServer,
) -> None:
    models = {path.stem for path in (python_client / "commonwatt_client" / "models").glob("*.py")}
    components = {re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
                  for name in server.document["components"]["schemas"]}
    assert {"problem", "readings_refused", "reading_refusal", "sensor_metrics",
            "export_format", "bucket_size", "balance_granularity"} <= components
    assert models - {"__init__"} - components == set()
    installed = [path.name for path in python_client.glob("commonwatt_client-*.dist-info")]
    assert installed == ["commonwatt_client-2026.11.23.dist-info"]


def test_the_python_client_and_a_program_using_it_pass_mypy_strict(
    python_client: Path, tmp_path: Path,
) -> None:
    # The program is checked as a user's lone script (in place, mypy would take it for a
    # module of this repository's `tests` package and check that package too).
    (tmp_path / "drive.py").write_bytes((PYTHON_DIR / "drive.py").read_bytes())
    output = run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                  str(python_client / "commonwatt_client"), "drive.py"],
                 cwd=tmp_path, MYPYPATH=str(python_client))
    assert "Success: no issues found" in output


def test_the_python_client_drives_the_server(python_client: Path, server: DemoServer) -> None:
    output = run([sys.executable, str(PYTHON_DIR / "drive.py"), server.base_url, server.email,
                  server.password, str(SAMPLE_BUNDLE)], PYTHONPATH=str(python_client))
    assert output.splitlines() == [
        "import: unchanged",
        "members: 8 in 4 pages",
        "asset: pv-municipio (pv)",
        "ingest: 3 accepted",
        "series: 3 points",
        "export: 3 rows",
        "refusals: 404 asset_not_found, 422 readings_refused (unknown_sensor),"
        " 422 invalid_request at path/asset_key",
        "ok",
    ]


def test_the_typescript_client_compiles_with_a_program_using_it(
    document_file: Path, tmp_path: Path,
) -> None:
    generate, tsc = node_tool("openapi-typescript"), node_tool("tsc")
    run([str(generate), str(document_file), "--output", str(tmp_path / "commonwatt.ts")])
    for name in ("drive.ts", "tsconfig.json"):
        (tmp_path / name).write_bytes((TYPESCRIPT_DIR / name).read_bytes())
    (tmp_path / "node_modules").symlink_to(TYPESCRIPT_DIR / "node_modules")
    run([str(tsc), "--project", str(tmp_path / "tsconfig.json")])
    program = (tmp_path / "drive.ts").read_text()
    (tmp_path / "drive.ts").write_text(program.replace('"power", ts', '"watts", ts'))
    refused = subprocess.run([str(tsc), "--project", str(tmp_path / "tsconfig.json")],
                             capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and '"watts"' in refused.stdout
