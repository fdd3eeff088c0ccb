"""The `commonwatt` command: import, export, users create, db upgrade, serve (and its crash)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest

from handlers.cli import main
from storage.migrate import head_revision
from tests.conftest import REFERENCE_BUNDLES_DIR
from tests.factories import community_doc, member_doc, to_yaml


def test_import_then_export_round_trips(environment: dict, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(path) for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))]
    assert main(["import", *files]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(item["community_key"] for item in report["reports"]) == [
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
    err = capsys.readouterr().err
    assert "already registered: a" in err and "--force" in err and "with force" not in err
    assert main(["import", "--force", str(path)]) == 0


def test_cli_errors_are_messages_not_tracebacks(environment: dict, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(tmp_path / "missing.yaml")]) == 2
    assert main(["import", str(tmp_path)]) == 2
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\xff\xfe not utf-8")
    assert main(["import", str(garbage)]) == 1
    path = tmp_path / "a.yaml"
    path.write_bytes(to_yaml(community_doc("a")))
    assert main(["import", str(path)]) == 0
    assert main(["export", "--community", "nope"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing.yaml'}: no such file" in err
    assert f"{tmp_path} is a directory" in err
    assert f"{garbage}: [invalid_encoding] the file is not UTF-8" in err
    assert "the body" not in err and "nope" in err
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
    none = run_cli(["users", "create", "b@example.org"], environment)
    assert none.returncode == 2 and "no password given" in none.stderr
    listed = run_cli(["users", "list"], environment)
    assert listed.returncode == 0 and listed.stdout == "admin@example.org\tadmin\n"


def test_refusals_name_the_file_and_the_document_within_it(
        environment: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_bytes(to_yaml(community_doc("a")) + b"---\n" + to_yaml(community_doc("b")))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([community_doc("c"), community_doc(
        "d", members={"x": member_doc("x", area="nowhere")})]))
    assert main(["import", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}, document 2, /members/x/area: [unknown_area]" in err
    assert "nothing was written" in err


def test_json_bundle_files_import(environment: dict, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(community_doc("a")))
    assert main(["import", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["reports"][0]["action"] == "created"
    assert main(["import", "--dry-run", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["reports"][0]["action"] == "unchanged"


def test_reading_commands_never_create_a_registry(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("COMMONWATT_")}
    for command in (["export"], ["users", "list"]):
        result = subprocess.run([sys.executable, "-m", "handlers.cli", *command],
                                cwd=elsewhere, env=environment, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 1
        assert f"there is no registry in the data directory {elsewhere / 'var'}" in result.stderr
        assert "COMMONWATT_DATA_DIR" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_writing_commands_say_which_data_directory_is_new(tmp_path: Path) -> None:
    environment = {**{key: value for key, value in os.environ.items()
                      if not key.startswith("COMMONWATT_")},
                   "COMMONWATT_DATA_DIR": str(tmp_path / "data")}
    result = run_cli(["db", "upgrade"], environment)
    assert result.returncode == 0
    assert f"Using a new registry in the data directory {tmp_path / 'data'}" in result.stderr


def test_help_shows_defaults_files_the_data_directory_and_the_environment() -> None:
    def help_of(*command: str) -> str:
        return subprocess.run([sys.executable, "-m", "handlers.cli", *command, "--help"],
                              capture_output=True, text=True, check=True, timeout=60).stdout

    serve = help_of("serve")
    assert "default: 127.0.0.1" in serve and "default: 8000" in serve and "--reset" in serve
    assert "COMMONWATT_DATA_DIR" in serve and "COMMONWATT_" in help_of()
    importer = help_of("import")
    assert "YAML or JSON" in importer and "FILE  " in importer and "a bundle file" in importer
    unknown = subprocess.run([sys.executable, "-m", "handlers.cli", "export", "--bogus"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("usage: commonwatt export")
    assert "unrecognized arguments: --bogus" in unknown.stderr


def test_db_upgrade_reports_the_revision(environment: dict) -> None:
    result = run_cli(["db", "upgrade"], environment)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(data_dir: Path, *options: str) -> tuple[str, subprocess.Popen[str]]:
    """`commonwatt serve` as a real process on a free port, its output on a pipe."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", *options, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COMMONWATT_DATA_DIR": str(data_dir)})
    return f"http://127.0.0.1:{port}/api", process


def wait_healthy(base: str, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


def read_demo_credentials(process: subprocess.Popen[str], deadline: float) -> tuple[str, str]:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line or process.poll() is None, "the server exited"
        credentials = re.search(r"Demo admin: (\S+)\s+password: (\S+)", line)
        if credentials:
            return credentials[1], credentials[2]
    raise AssertionError("no demo credentials printed")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    base, process = start_server(tmp_path / "var", "--demo")
    try:
        yield base, process
    finally:
        stop(process)


def log_in(base: str, email: str, password: str) -> dict[str, str]:
    login = httpx.post(f"{base}/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_serve_demo_prints_working_credentials_and_serves_the_samples(
    demo_server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = demo_server
    deadline = time.monotonic() + 60
    email, password = read_demo_credentials(process, deadline)
    wait_healthy(base, process, deadline)
    headers = log_in(base, email, password)
    keys = [item["key"] for item in
            httpx.get(f"{base}/admin/communities", headers=headers).json()["items"]]
    assert sorted(keys) == ["borgo-sole", "isola-vento", "valle-verde"]


CRASH_SENSOR = "sens-0010"
CRASH_BATCH = 500
CRASH_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def crash_batch(number: int) -> dict:
    """Batch `number`: CRASH_BATCH power readings one second apart, valued by their index."""
    first = number * CRASH_BATCH
    stamps = [datetime.fromtimestamp((CRASH_START_MS + 1_000 * index) / 1000, UTC)
              .isoformat().replace("+00:00", "Z") for index in range(first, first + CRASH_BATCH)]
    return {"sensor_id": CRASH_SENSOR, "channel": "power", "ts": stamps,
            "value": [float(index) for index in range(first, first + CRASH_BATCH)]}


def stored_values(base: str, headers: dict[str, str], number: int) -> list[float]:
    first = crash_batch(number)["ts"]
    answer = httpx.get(f"{base}/telemetry/readings", headers=headers, params={
        "sensor_id": CRASH_SENSOR, "channel": "power", "from": first[0],
        "to": datetime.fromtimestamp(
            (CRASH_START_MS + 1_000 * (number + 1) * CRASH_BATCH) / 1000, UTC).isoformat(),
        "limit": 1000})
    assert answer.status_code == 200, answer.text
    return [item["value"] for item in answer.json()["items"]]


def test_kill_9_of_the_server_during_ingest_loses_no_acknowledged_reading(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    base, process = start_server(data_dir, "--demo")
    acknowledged: list[int] = []
    try:
        deadline = time.monotonic() + 120
        email, password = read_demo_credentials(process, deadline)
        wait_healthy(base, process, deadline)
        headers = log_in(base, email, password)

        def send_until_killed() -> None:
            with httpx.Client(headers=headers, timeout=30) as client:
                number = 0
                while True:
                    try:
                        answer = client.post(f"{base}/telemetry/readings",
                                             json=crash_batch(number))
                    except httpx.TransportError:
                        return
                    assert answer.status_code == 200, answer.text
                    acknowledged.append(number)
                    number += 1

        sender = threading.Thread(target=send_until_killed, daemon=True)
        sender.start()
        while len(acknowledged) < 30 and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # while the sender's next batch is in flight
        process.wait(timeout=30)
        sender.join(timeout=30)
        assert len(acknowledged) >= 30, "the sender stopped early"
    finally:
        stop(process)

    base, process = start_server(data_dir)
    try:
        wait_healthy(base, process, time.monotonic() + 120)
        headers = log_in(base, email, password)
        for number in acknowledged:
            expected = crash_batch(number)["value"]
            assert stored_values(base, headers, number) == expected, f"batch {number} lost"
    finally:
        stop(process)


def test_sigterm_stops_the_server_with_the_telemetry_store_closed(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    base, process = start_server(data_dir, "--demo")
    try:
        deadline = time.monotonic() + 120
        email, password = read_demo_credentials(process, deadline)
        wait_healthy(base, process, deadline)
        answer = httpx.post(f"{base}/telemetry/readings", json=crash_batch(0),
                            headers=log_in(base, email, password))
        assert answer.status_code == 200, answer.text
        assert (data_dir / "telemetry.duckdb.wal").exists()
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then dies of the signal it caught.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        stop(process)
    # Closed cleanly: checkpointed, no write-ahead log left to replay on the next start.
    assert not (data_dir / "telemetry.duckdb.wal").exists()
    with duckdb.connect(str(data_dir / "telemetry.duckdb"), read_only=True) as database:
        assert database.execute("SELECT count(*) FROM readings").fetchone() == (CRASH_BATCH,)
