"""Webhook deliveries survive faults: a receiver down for a while gets everything when back,
a slow one times out and is retried, and `kill -9` of the server during a delivery loses
nothing (delivered after restart, same `webhook-id`). The receiver is a real HTTP server on
loopback that verifies every signature with the standardwebhooks library."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from handlers.settings import Settings
from tests.factories import Api
from tests.handlers.test_cli import log_in, read_demo_credentials, start_server, stop, wait_healthy
from tests.handlers.test_webhooks import HOOKS, _communities, _endpoint, _messages, eventually
from tests.webhook_receiver import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "webhook_allow_private_targets": True, "webhook_timeout_seconds": 0.5,
        "webhook_retry_schedule_seconds": [0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
        "webhook_poll_interval_seconds": 0.1})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.down()


def test_a_receiver_down_for_a_while_gets_everything_when_back(api: Api,
                                                               receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    receiver.down()
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    for _ in range(3):
        api.client.post(f"{one}/test", headers=api.admin())
    api.client.patch("/api/admin/communities/alpha/members/m0", headers=api.admin(),
                     json={"name": "Renamed while the receiver was down"})
    failing = eventually(lambda: (lambda items: items if len(items) == 4 and all(
        item["attempts"] >= 2 for item in items) else None)(_messages(api, endpoint)))
    assert {item["status"] for item in failing} == {"failed"}
    assert all("ConnectionRefusedError" in item["last_error"] for item in failing)
    receiver.up()
    got = receiver.wait_for(4)
    assert all(item.event is not None for item in got)
    delivered = eventually(lambda: _messages(api, endpoint, status="delivered")
                           if len(_messages(api, endpoint, status="delivered")) == 4 else None)
    assert sorted(item.headers["webhook-id"] for item in got) == sorted(
        message["id"] for message in delivered)


def test_a_slow_receiver_times_out_and_is_retried(api: Api, receiver: Receiver) -> None:
    _communities(api)
    endpoint = _endpoint(api, receiver)
    receiver.delay_s = 1.5
    one = f"{HOOKS.format(community='alpha')}/{endpoint['id']}"
    message = api.client.post(f"{one}/test", headers=api.admin()).json()
    receiver.wait_started(1)
    eventually(lambda: _messages(api, endpoint)[0]["attempts"] >= 1)
    receiver.delay_s = 0
    done = eventually(lambda: (lambda item: item if item["status"] == "delivered" else None)(
        _messages(api, endpoint)[0]))
    assert done["id"] == message["id"]
    attempts = api.client.get(f"{one}/messages/{message['id']}/attempts",
                              headers=api.admin())
    log = attempts.json()["items"]
    assert log[0]["response_status"] is None and log[0]["error"] == "no answer within 0.5 s"
    assert log[0]["latency_ms"] >= 450
    assert log[-1]["response_status"] == 204
    assert all(item.headers["webhook-id"] == message["id"] for item in receiver.received)


def _serve(data_dir: Path) -> tuple[str, Any, dict[str, str]]:
    base, process = start_server(data_dir, "--demo")
    deadline = time.monotonic() + 90
    email, password = read_demo_credentials(process, deadline)
    from tests.clients import _drain

    _drain(process)
    wait_healthy(base, process, deadline)
    return base, process, log_in(base, email, password)


def test_kill_9_of_the_server_during_a_delivery_delivers_it_after_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv("COMMONWATT_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("COMMONWATT_WEBHOOK_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("COMMONWATT_WEBHOOK_POLL_INTERVAL_SECONDS", "0.2")
    data_dir = tmp_path / "var"
    base, process, admin = _serve(data_dir)
    try:
        community = httpx.get(f"{base}/admin/communities", headers=admin).json()["items"][0]
        hooks = f"{base}/admin/communities/{community['key']}/webhooks"
        endpoint = httpx.post(hooks, headers=admin, json={"url": receiver.url}).json()
        receiver.secrets.append(endpoint["secret"])
        receiver.delay_s = 10  # the first delivery hangs: the server dies meanwhile
        message = httpx.post(f"{hooks}/{endpoint['id']}/test", headers=admin).json()
        receiver.wait_started(1)
        receiver.delay_s = 0
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop(process)
    base, process, admin = _serve(data_dir)
    try:
        hooks = f"{base}/admin/communities/{community['key']}/webhooks"
        got = receiver.wait_for(1, timeout_s=30)
        assert got[0].headers["webhook-id"] == message["id"] and got[0].event is not None
        one = f"{hooks}/{endpoint['id']}/messages/{message['id']}"
        shown = eventually(lambda: (lambda body: body if body["status"] == "delivered"
                                    else None)(httpx.get(one, headers=admin).json()))
        assert shown["id"] == message["id"]
    finally:
        stop(process)
