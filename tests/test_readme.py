"""README.md as a user reads it: its `sh` examples run as written, its error table is whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import openapi
from handlers.problems import DEFAULT_CODES
from tests.conftest import REPO_ROOT
from tests.handlers.test_serve import read_until, serve

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
DEMO_PORT = "8000"
PASSWORD_PLACEHOLDER = "PRINTED-PASSWORD"


def sh_blocks() -> list[str]:
    """Every ```sh block of the README, in order (```shell blocks are setup: install, serve)."""
    return re.findall(r"^```sh\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


# Every curl of the examples also reports its status on stderr, where the test reads it.
CURL_STATUS = """curl() { command curl --write-out '%{stderr}HTTP-STATUS %{http_code}\\n' "$@"; }
"""


def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    blocks = sh_blocks()
    assert len(blocks) >= 3 and any(PASSWORD_PLACEHOLDER in block for block in blocks)
    data_dir = tmp_path / "var"
    environment = {"COMMONWATT_DATA_DIR": str(data_dir)}
    base, process = serve(data_dir, "--demo", env=environment)
    try:
        lines = read_until(process, "Serving on", time.monotonic() + 90)
        password = next(line for line in lines if "Demo admin:" in line).split()[-1]
        port = base.split(":")[2].split("/")[0]
        script = "\n".join(blocks).replace(PASSWORD_PLACEHOLDER, password)
        script = script.replace(f"127.0.0.1:{DEMO_PORT}", f"127.0.0.1:{port}")
        before = set(os.listdir(REPO_ROOT))
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", CURL_STATUS + script + '\necho "SCRATCH=$SCRATCH"'],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False,
            env={**os.environ, **environment,
                 "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        assert set(os.listdir(REPO_ROOT)) == before, "the tour left files in the repository"
    finally:
        tail = ""
        if process.poll() is None:
            process.terminate()
            tail = process.communicate(timeout=30)[0]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{tail}"
    statuses = re.findall(r"HTTP-STATUS (\d+)", run.stderr)
    assert len(statuses) == sum(block.count("curl ") for block in blocks)
    assert all(status.startswith("2") for status in statuses), run.stderr
    out = run.stdout
    assert '"action":"unchanged"' in out  # the dry run right after --demo
    assert '"accepted":8' in out  # bundles/examples/readings.csv
    assert "created overseer ops@example.org" in out and "ops@example.org\toverseer" in out
    scratch = Path(re.findall(r"^SCRATCH=(.*)$", out, flags=re.MULTILINE)[-1])
    assert (scratch / "valle-verde.export.yaml").read_text().startswith("version:")
    assert (scratch / "readings.xlsx").read_bytes()[:2] == b"PK"


def spec_codes() -> set[str]:
    """Codes the API document names: `code` properties' enums and examples."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            code = node.get("code")
            if isinstance(code, dict):
                found.update(value for value in code.get("enum", []) if isinstance(value, str))
                if isinstance(code.get("example"), str):
                    found.add(code["example"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(openapi.bundled_spec())
    return found


RAISED = [
    re.compile(r'\bcode\s*=\s*"([a-z0-9_]+)"(?:\s+if\b.*?\belse\s+"([a-z0-9_]+)")?'),
    re.compile(r'(?:Problem|problem_response|_send_problem)\((?:\s*send,)?\s*\d{3},\s*"([a-z0-9_]+)"'),
    re.compile(r'problem_body\(\s*\d{3},\s*"([a-z0-9_]+)"'),
]


def raised_codes() -> set[str]:
    """Codes the source raises or answers with, in handlers/, bundles/ and storage/."""
    found = set(DEFAULT_CODES.values())
    for folder in ("handlers", "bundles", "storage"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in RAISED:
                for match in pattern.finditer(text):
                    found.update(group for group in match.groups() if group)
    return found


def test_the_error_table_lists_every_code() -> None:
    table = README[README.index("## Errors"):README.index("## Command line")]
    listed = set(re.findall(r"`([a-z0-9_]+)`", table))
    codes = spec_codes() | raised_codes()
    assert {"malformed_upload", "telemetry_unavailable", "body_timeout"} <= codes
    missing = sorted(codes - listed)
    assert not missing, f"README's error table lacks {missing}"


@pytest.mark.parametrize("word", ["valle-verde.export.yaml", "readings.xlsx"])
def test_the_tour_writes_under_a_scratch_directory(word: str) -> None:
    for block in sh_blocks():
        for line in block.splitlines():
            if word in line:
                assert f'"$SCRATCH/{word}"' in line
