"""The `commonwatt` command: import, export, users create, db upgrade, serve --demo."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from handlers.cli import main
from storage.migrate import head_revision
from tests.conftest import REFERENCE_BUNDLES_DIR
from tests.factories import community_doc, member_doc, to_yaml


@pytest.fixture
def environment(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    values = {"COMMONWATT_DATA_DIR": str(tmp_path / "var"),
              "COMMONWATT_DATABASE_URL": database_url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_import_then_export_round_trips(environment: dict, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(path) for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))]
    assert main(["import", *files]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(item["community_key"] for item in report["communities"]) == [
        "borgo-sole", "isola-vento", "valle-verde"]
    output = tmp_path / "export.yaml"
    assert main(["export", "--community", "valle-verde", "-o", str(output)]) == 0
    assert "incentive_eur_per_mwh: 110" in output.read_text()
    assert main(["export", "--community", "valle-verde"]) == 0
    assert capsys.readouterr().out == output.read_text()


def test_refused_import_exits_1_with_every_refusal(environment: dict, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = community_doc("a", members={"x": member_doc("x", area="nowhere")})
    path = tmp_path / "bad.yaml"
    path.write_bytes(to_yaml(bad))
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown_area" in err and "/members/x/area" in err
    assert "Traceback" not in err


def test_import_of_an_existing_community_needs_force(environment: dict, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(to_yaml(community_doc("a")))
    assert main(["import", str(path)]) == 0
    assert main(["import", str(path)]) == 1
    assert "force" in capsys.readouterr().err
    assert main(["import", "--force", str(path)]) == 0


def test_cli_errors_are_messages_not_tracebacks(environment: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(tmp_path / "missing.yaml")]) == 2
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\xff\xfe not utf-8")
    assert main(["import", str(garbage)]) == 1
    assert main(["export", "--community", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and "invalid_encoding" in err and "nope" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["import"])
    assert exit_info.value.code == 2


def run_cli(args: list[str], environment: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handlers.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environment}, check=False)


def test_users_create_reads_the_password_from_stdin(environment: dict) -> None:
    created = run_cli(["users", "create", "Admin@Example.org", "--role", "admin"], environment,
                      stdin="a long enough password\n")
    assert created.returncode == 0, created.stderr
    assert "created admin admin@example.org" in created.stdout
    again = run_cli(["users", "create", "admin@example.org"], environment,
                    stdin="a long enough password\n")
    assert again.returncode == 1
    assert "user_exists" in again.stderr
    weak = run_cli(["users", "create", "b@example.org"], environment, stdin="short\n")
    assert weak.returncode == 1 and "weak_password" in weak.stderr


def test_db_upgrade_reports_the_revision(environment: dict) -> None:
    result = run_cli(["db", "upgrade"], environment)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COMMONWATT_DATA_DIR": str(tmp_path / "var")})
    try:
        yield f"http://127.0.0.1:{port}/api", process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_demo_prints_working_credentials_and_serves_the_samples(
    demo_server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = demo_server
    assert process.stdout is not None
    credentials = None
    deadline = time.monotonic() + 60
    while credentials is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line or process.poll() is None, "the server exited"
        credentials = re.search(r"Demo admin: (\S+)\s+password: (\S+)", line)
    assert credentials is not None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    login = httpx.post(f"{base}/auth/login", json={"email": credentials[1],
                                                   "password": credentials[2]})
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    keys = [item["key"] for item in
            httpx.get(f"{base}/admin/communities", headers=headers).json()["items"]]
    assert sorted(keys) == ["borgo-sole", "isola-vento", "valle-verde"]
