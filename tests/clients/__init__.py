"""Generated clients and the spec linter: their files, Node tools, and a demo server to ask."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.handlers.test_cli import read_demo_credentials, start_server, stop, wait_healthy

CLIENTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = CLIENTS_DIR.parent.parent
PYTHON_DIR = CLIENTS_DIR / "python"
TYPESCRIPT_DIR = CLIENTS_DIR / "typescript"
NODE_BIN = TYPESCRIPT_DIR / "node_modules" / ".bin"
SAMPLE_BUNDLE = REPO_ROOT / "bundles" / "examples" / "valle-verde.yaml"


def in_ci() -> bool:
    """Whether CI is set to anything truthy (CI=true, CI=1, ...)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def node_tool(name: str) -> Path:
    """A tool of tests/clients/typescript's node_modules; skipped without Node on a developer
    machine, a failure in CI (where .ci/run installs them)."""
    tool = NODE_BIN / name
    if shutil.which("node") is None or not tool.exists():
        message = f"{name} needs Node and `npm ci --prefix tests/clients/typescript`"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return tool


@dataclass(frozen=True)
class DemoServer:
    """A running `commonwatt serve --demo`, its demo admin, and the document it serves."""

    base_url: str
    email: str
    password: str
    document: dict[str, Any]


def _drain(process: subprocess.Popen[str]) -> None:
    """Read the server's log away in the background, so that a full pipe never blocks it."""
    assert process.stdout is not None
    stream = process.stdout

    def read_all() -> None:
        try:
            for _ in stream:
                pass
        except (ValueError, OSError):  # closed by stop() once the server is gone
            pass

    threading.Thread(target=read_all, daemon=True).start()


@contextmanager
def demo_server(data_dir: Path) -> Iterator[DemoServer]:
    """`commonwatt serve --demo` on a free port, stopped on leaving."""
    base_url, process = start_server(data_dir, "--demo")
    try:
        deadline = time.monotonic() + 90
        email, password = read_demo_credentials(process, deadline)
        _drain(process)
        wait_healthy(base_url, process, deadline)
        document = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
        yield DemoServer(base_url, email, password, document)
    finally:
        stop(process)
