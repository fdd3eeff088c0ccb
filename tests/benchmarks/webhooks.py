"""Webhook deliveries: deliveries per second to a local receiver, and event-to-delivery
latency p50 / p99, with the embedded worker and (when it answers) with Redis.

    python -m tests.benchmarks.webhooks [--deliveries 2000] [--events 300] [--broker both]

The receiver is tests/webhook_receiver.py (a threaded HTTP server on loopback verifying
every signature with the standardwebhooks library), run in a process of its own as a real
receiver would be, reporting each arrival back over a queue. Throughput: `--deliveries` events
written in one transaction, then timed until the receiver has them all. Latency: `--events`
events each committed in its own transaction (as a member update is), one after the other;
from the commit to the receiver's arrival. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import queue
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from handlers.app import create_runtime
from handlers.runtime import Runtime
from handlers.settings import Settings
from storage import webhooks as webhook_store
from storage.models import Community
from tests.webhook_receiver import Receiver

REDIS_URL = "redis://127.0.0.1:6379/0"


def serve_receiver(secrets: Any, ports: Any, arrivals: Any) -> None:
    """The receiver's process: report the port, then every arrival (id, time, verified)."""
    receiver = Receiver(secrets=[secrets.get()])
    ports.put(receiver.port)
    seen = 0
    while True:
        received = receiver.wait_for(seen + 1, timeout_s=3600)
        for item in received[seen:]:
            arrivals.put((item.headers.get("webhook-id"), item.at, item.event is not None))
        seen = len(received)


@dataclass
class RemoteReceiver:
    """A Receiver in another process, as seen from here: its URL and what arrived."""

    secrets: Any
    arrivals: Any
    process: Any
    ports: Any = None
    url: str = ""
    received: list[tuple[str, float, bool]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def start(cls) -> RemoteReceiver:
        context = multiprocessing.get_context("spawn")
        secrets, ports, arrivals = context.Queue(), context.Queue(), context.Queue()
        process = context.Process(target=serve_receiver, args=(secrets, ports, arrivals),
                                  daemon=True)
        process.start()
        remote = cls(secrets=secrets, arrivals=arrivals, process=process, ports=ports)
        threading.Thread(target=remote._collect, daemon=True).start()
        return remote

    def set_secret(self, secret: str) -> None:
        self.secrets.put(secret)
        self.url = f"http://127.0.0.1:{self.ports.get(timeout=60)}/hook"

    def _collect(self) -> None:
        while True:
            try:
                item = self.arrivals.get(timeout=1)
            except queue.Empty:
                continue
            with self.changed:
                self.received.append(item)
                self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> list[tuple[str, float, bool]]:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.received)} of {count} arrived")
                self.changed.wait(left)
            return list(self.received)

    def stop(self) -> None:
        self.process.terminate()


def redis_answers() -> bool:
    """Whether the machine's Redis accepts a connection."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def start(data_dir: Path, broker_url: str) -> Runtime:
    settings = Settings(data_dir=data_dir, jwt_secret=SecretStr("b" * 40),
                        webhook_allow_private_targets=True, broker_url=broker_url,
                        broker_namespace=f"cw-bench-{int(time.time())}",
                        telemetry_compact_interval_seconds=0)
    runtime = create_runtime(settings)
    runtime.start_jobs(server=True)
    return runtime


def setup(runtime: Runtime, receiver: RemoteReceiver) -> int:
    """A community with one endpoint pointing at the receiver; the community's id."""
    with runtime.session() as session:
        community = Community(key="bench-hooks", name="Bench hooks")
        session.add(community)
        session.flush()
        assert community.id is not None
        secret = webhook_store.new_secret()
        receiver.set_secret(secret)
        endpoint = webhook_store.create_endpoint(
            session, community_id=community.id, url=receiver.url, description="bench",
            event_types=["member.updated"])
        endpoint.secret = secret
        session.add(endpoint)
        return community.id


def throughput(runtime: Runtime, receiver: RemoteReceiver, community_id: int, count: int) -> float:
    """Deliveries per second of `count` events written at once."""
    before = len(receiver.received)
    started = time.perf_counter()
    with runtime.session() as session:
        for number in range(count):
            webhook_store.record_event(session, community_id=community_id,
                                       event_type="member.updated",
                                       payload={"member": f"m{number}", "changed": ["name"]})
    receiver.wait_for(before + count, timeout_s=600)
    return count / (time.perf_counter() - started)


def latency(runtime: Runtime, receiver: RemoteReceiver, community_id: int,
            count: int) -> list[float]:
    """Milliseconds from each event's commit to its arrival, one event at a time."""
    figures = []
    for number in range(count):
        before = len(receiver.received)
        with runtime.session() as session:
            webhook_store.record_event(session, community_id=community_id,
                                       event_type="member.updated",
                                       payload={"member": f"l{number}", "changed": ["name"]})
        committed = time.time()
        got = receiver.wait_for(before + 1, timeout_s=60)
        figures.append((got[-1][1] - committed) * 1000)
    return figures


def run(broker: str, deliveries: int, events: int) -> None:
    receiver = RemoteReceiver.start()
    with tempfile.TemporaryDirectory(prefix="cw-bench-hooks-") as tmp:
        runtime = start(Path(tmp) / "var", REDIS_URL if broker == "redis" else "")
        try:
            community_id = setup(runtime, receiver)
            throughput(runtime, receiver, community_id, 50)  # warm-up
            rate = throughput(runtime, receiver, community_id, deliveries)
            figures = sorted(latency(runtime, receiver, community_id, events))
            unverified = sum(1 for item in receiver.received if not item[2])
        finally:
            runtime.close()
            receiver.stop()
    p50 = statistics.median(figures)
    p99 = figures[min(len(figures) - 1, int(len(figures) * 0.99))]
    print(f"{broker:9} deliveries/s {rate:8.0f}   latency p50 {p50:6.1f} ms   "
          f"p99 {p99:6.1f} ms   ({deliveries} deliveries, {events} events, "
          f"{unverified} unverified signatures)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--broker", choices=("embedded", "redis", "both"), default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for broker in ("embedded", "redis"):
        if args.broker not in (broker, "both"):
            continue
        if broker == "redis" and not redis_answers():
            print(f"redis     skipped: nothing answers at {REDIS_URL}")
            continue
        run(broker, args.deliveries, args.events)


if __name__ == "__main__":
    main()
