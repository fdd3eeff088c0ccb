"""`commonwatt serve` as a real process: start refusals, the demo's restart, what clients see."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.handlers.test_cli import (
    free_port,
    log_in,
    read_demo_credentials,
    stop,
    wait_healthy,
)


def serve(data_dir: Path, *options: str, port: int | None = None,
          env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[str]]:
    """`commonwatt serve` on a free port (or `port`), its output on a pipe."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "handlers.cli", "serve", *options, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COMMONWATT_DATA_DIR": str(data_dir), **(env or {})})
    return f"http://127.0.0.1:{port}/api", process


def read_until(process: subprocess.Popen[str], text: str, deadline: float) -> list[str]:
    """Output lines up to and with the first that contains `text`."""
    assert process.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line or process.poll() is None, f"the server exited: {''.join(lines)}"
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in {''.join(lines)}")


def refused(process: subprocess.Popen[str]) -> str:
    """The output of a server that must exit by itself, non-zero."""
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0, output
    assert "Serving on" not in output and "Traceback" not in output
    return output


SLOW = {"COMMONWATT_HEADER_TIMEOUT_SECONDS": "1", "COMMONWATT_BODY_TIMEOUT_SECONDS": "1",
        "COMMONWATT_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
        "COMMONWATT_LOGIN_MAX_FAILURES_PER_ACCOUNT": "100"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A demo server with one-second header and body timeouts and 3 failed logins an address."""
    data_dir = tmp_path_factory.mktemp("live") / "var"
    data_dir.mkdir(mode=0o755)
    (data_dir / "notes.txt").write_text("left here before the first start")
    (data_dir / "notes.txt").chmod(0o644)
    base, process = serve(data_dir, "--demo", env=SLOW)
    try:
        read_until(process, "Serving on", time.monotonic() + 90)
        yield base, data_dir, process
    finally:
        stop(process)


def test_serving_on_is_printed_once_the_port_answers(live: tuple) -> None:
    base, _, _ = live
    # Right after the line: no retry, no sleep.
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200


def test_a_second_server_on_the_data_directory_refuses_naming_the_first(live: tuple) -> None:
    base, data_dir, process = live
    _, second = serve(data_dir)
    output = refused(second)
    assert "another CommonWatt server holds the data directory" in output
    assert base.removesuffix("/api") in output and str(process.pid) in output
    assert httpx.get(f"{base}/health").status_code == 200  # the first one is unharmed


def test_a_taken_port_is_refused_before_anything_is_written(live: tuple, tmp_path: Path) -> None:
    base, _, _ = live
    port = int(base.split(":")[2].split("/")[0])
    _, clash = serve(tmp_path / "var", "--demo", port=port)
    output = refused(clash)
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert not (tmp_path / "var" / "registry.sqlite3").exists()


def test_no_server_banner(live: tuple) -> None:
    base, _, _ = live
    answer = httpx.get(f"{base}/version")
    assert answer.status_code == 200 and "server" not in answer.headers


def test_data_files_are_private(live: tuple) -> None:
    _, data_dir, _ = live
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {"registry.sqlite3", "jwt-secret", "notes.txt"} <= {path.name for path in files}
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {
        path.name: 0o600 for path in files}


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(live: tuple) -> None:
    base, _, _ = live
    answers = [httpx.post(f"{base}/auth/login",
                          json={"email": f"nobody{number}@example.org", "password": "wrong"},
                          headers={"X-Forwarded-For": f"203.0.113.{number}"}).status_code
               for number in range(5)]
    # Every attempt counted against 127.0.0.1, whatever the header said: blocked after 3.
    assert answers[:3] == [401, 401, 401] and answers[3:] == [429, 429]


def test_a_trickled_body_is_cut_with_408(live: tuple) -> None:
    base, _, _ = live
    port = int(base.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.5)
        while time.monotonic() - started < 8 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b" ")
                answer += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"body_timeout" in answer or b"content-length" in answer.lower()
    assert time.monotonic() - started < 5


def test_slow_headers_are_cut(live: tuple) -> None:
    base, _, _ = live
    port = int(base.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed by the server, no answer
    assert time.monotonic() - started < 5


def test_trusted_proxies_setting_believes_the_proxy(tmp_path: Path) -> None:
    base, process = serve(tmp_path / "var", "--demo",
                          env={**SLOW, "COMMONWATT_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        read_until(process, "Serving on", time.monotonic() + 90)
        answers = {httpx.post(f"{base}/auth/login",
                              json={"email": f"nobody{number}@example.org", "password": "x"},
                              headers={"X-Forwarded-For": f"203.0.113.{number}"}).status_code
                   for number in range(5)}
        assert answers == {401}  # five client addresses, none over its limit
    finally:
        stop(process)


MEMBER = "admin/communities/valle-verde/members/rossi"


def test_demo_restart_keeps_a_changed_sample_unless_reset(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    base, process = serve(data_dir, "--demo")
    try:
        deadline = time.monotonic() + 90
        email, password = read_demo_credentials(process, deadline)
        wait_healthy(base, process, deadline)
        headers = log_in(base, email, password)
        changed = httpx.post(f"{base}/{MEMBER}/status", json={"status": "suspended"},
                             headers=headers)
        assert changed.status_code == 200, changed.text
    finally:
        stop(process)

    base, process = serve(data_dir, "--demo")
    try:
        lines = read_until(process, "Serving on", time.monotonic() + 90)
        output = "".join(lines)
        assert "Kept your changes to valle-verde" in output and "--reset" in output
        email, password = next(line for line in lines if "Demo admin:" in line).split()[2::2]
        headers = log_in(base, email, password)
        assert httpx.get(f"{base}/{MEMBER}", headers=headers).json()["status"] == "suspended"
    finally:
        stop(process)

    base, process = serve(data_dir, "--demo", "--reset")
    try:
        lines = read_until(process, "Serving on", time.monotonic() + 90)
        assert "reset to the samples: valle-verde" in "".join(lines)
        email, password = next(line for line in lines if "Demo admin:" in line).split()[2::2]
        headers = log_in(base, email, password)
        assert httpx.get(f"{base}/{MEMBER}", headers=headers).json()["status"] == "active"
    finally:
        stop(process)


def _raw_answer(base: str, request: bytes) -> bytes:
    port = int(base.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_request_line_longer_than_the_limit_is_a_problem_not_plain_text(live: tuple) -> None:
    base, _, _ = live
    # 27 KB of a percent-encoded character and no end of line yet: past the 16 KB limit, the
    # server answers without waiting for the rest.
    query = "%E5%A3%B1" * 3_000
    answer = _raw_answer(base, f"GET /api/graphql?query={query}".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["code"] == "request_too_large" and "16,384 bytes" in problem["detail"]
    # The server goes on answering others.
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200


def test_a_request_that_is_not_http_is_a_problem(live: tuple) -> None:
    base, _, _ = live
    answer = _raw_answer(base, b"GET /api/health HTTP/1.1\r\nHost x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["code"] == "malformed_request"
