"""Real brokers: a job enqueued by the app through Redis or RabbitMQ is run by a separate
`commonwatt worker` process (skipped when the broker is unreachable, failed under CI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session

from handlers.app import create_app
from handlers.settings import Settings
from storage.models import Job
from tests.factories import Api, community_doc, to_yaml

REDIS_URL = os.environ.get("COMMONWATT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("COMMONWATT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _require(url: str) -> None:
    """Skip when the broker does not answer, but fail under CI, where it must be there."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the broker at {parts.hostname}:{parts.port} is required under CI")
        pytest.skip(f"no broker at {parts.hostname}:{parts.port}")


def _forget_queues(url: str, namespace: str) -> None:
    """Remove what the test left in the broker."""
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{namespace}*"):
            client.delete(key)
        client.close()
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for group in ("registry", "telemetry"):
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(f"{namespace}-{group}{suffix}")
    connection.close()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    url = REDIS_URL if request.param == "redis" else AMQP_URL
    _require(url)
    return url


@pytest.fixture
def worker(broker_url: str, settings: Settings) -> Iterator[tuple[Settings, int]]:
    """Settings for an app whose own worker leaves imports alone, and a `commonwatt worker`
    process (its pid) on the same registry and broker."""
    namespace = f"cwtest-{uuid.uuid4().hex[:10]}"
    settings = settings.model_copy(update={"broker_url": broker_url,
                                           "broker_namespace": namespace,
                                           "server_runs_imports": False})
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "COMMONWATT_DATA_DIR": str(settings.data_dir),
                   "COMMONWATT_DATABASE_URL": str(settings.database_url),
                   "COMMONWATT_BROKER_URL": broker_url, "COMMONWATT_BROKER_NAMESPACE": namespace,
                   "COMMONWATT_JWT_SECRET": "w" * 40, "COMMONWATT_WORKER_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "handlers.cli", "worker"],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Worker running"), (line, process.stderr.read())
        assert "guest:guest" not in line  # the password is hidden
        yield settings, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            _forget_queues(broker_url, namespace)


def test_a_worker_process_runs_the_import_the_app_enqueued(
        worker: tuple[Settings, int]) -> None:
    settings, worker_pid = worker
    app = create_app(settings)
    with app.test_client() as client:
        api = Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                  runtime=app.runtime)  # type: ignore[attr-defined]
        response = api.client.post(
            "/api/admin/import/yaml", params={"async": "true"},
            content=to_yaml(community_doc("alpha")),
            headers={**api.admin(), "Content-Type": "application/yaml"})
        assert response.status_code == 202, response.text
        location = response.headers["Location"]
        deadline = time.monotonic() + 60
        job = response.json()
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = api.client.get(location, headers=api.admin()).json()
        assert job["status"] == "succeeded", job
        assert job["result"]["reports"][0]["action"] == "created"
        with Session(api.engine) as session:
            stored = session.get(Job, job["id"])
            assert stored is not None and stored.claimed_by is not None
            assert stored.claimed_by.endswith(f":{worker_pid}")  # not this process
        assert api.client.get("/api/admin/communities/alpha",
                              headers=api.admin()).status_code == 200
