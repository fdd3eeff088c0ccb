"""Dramatiq for background jobs: a broker chosen by URL, actors taking job ids (and one
sending webhook deliveries), a worker, and the server's one scheduler (compaction, expired
result files, messages lost on the way, pending deliveries)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Retries

from handlers.job_work import GROUP_KINDS, KIND_GROUP, run_job
from handlers.rule_firing import check_silence
from handlers.settings import Settings
from handlers.webhook_delivery import deliver_pending
from storage import jobs as job_store
from storage import webhooks as webhook_store
from storage.models import utc_now
from storage.telemetry.compaction import days_to_compact, unsorted_blocks

if TYPE_CHECKING:
    from handlers.runtime import Runtime

LOG = logging.getLogger("commonwatt.jobs")
COMPACTION = "telemetry_compaction"
# Work that runs in one transaction: interrupted, it was rolled back, so it ends failed.
FAILS_WHEN_INTERRUPTED = ("bundle_import",)


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The broker the URL names; an in-process one (Dramatiq's StubBroker) when it is empty."""
    middleware = [AgeLimit(), Retries(max_retries=0)]  # the job row decides about retrying
    url = settings.broker_url
    if not url:
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=settings.broker_namespace, middleware=middleware)
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=middleware)


def worker_name() -> str:
    """This process, as a job row's `claimed_by` names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_gone(claimed_by: str) -> bool:
    """Whether the process that claimed a job has stopped (only known on this host)."""
    host, _, pid = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class JobQueue:
    """The broker, one actor per group of job kinds, and (once started) a worker running the
    given groups; in the server also the scheduler. One per runtime."""

    def __init__(self, runtime: Runtime, *, groups: frozenset[str]) -> None:
        self.runtime = runtime
        self.groups = groups
        settings = runtime.settings
        self.broker = make_broker(settings)
        self.worker_id = worker_name()
        self._stopping = threading.Event()
        self.queue_names = {group: f"{settings.broker_namespace}-{group}"
                            for group in GROUP_KINDS}
        self.actors: dict[str, dramatiq.Actor[[int], None]] = {group: dramatiq.Actor(
            self._performer(group), broker=self.broker, actor_name=f"commonwatt_{group}_job",
            queue_name=self.queue_names[group], priority=0,
            options={"max_retries": 0}) for group in GROUP_KINDS}
        # Webhook deliveries: registry work (any worker); the outbox rows are the truth.
        self.webhook_actor: dramatiq.Actor[[], None] = dramatiq.Actor(
            self._deliver_webhooks, broker=self.broker, actor_name="commonwatt_deliver_webhooks",
            queue_name=self.queue_names["registry"], priority=0, options={"max_retries": 0})
        self._worker: dramatiq.Worker | None = None
        self._scheduler: threading.Thread | None = None

    def _performer(self, group: str) -> Callable[[int], None]:
        def perform(job_id: int) -> None:
            run_job(self.runtime, job_id, kinds=GROUP_KINDS[group], worker=self.worker_id,
                    stopping=self._stopping.is_set)

        perform.__name__ = f"run_{group}_job"
        return perform

    def _deliver_webhooks(self) -> None:
        try:
            deliver_pending(self.runtime, worker=self.worker_id)
        except Exception:
            LOG.exception("webhook deliveries")

    def wake_webhooks(self) -> None:
        """Have a worker send the outbox's pending deliveries."""
        try:
            self.webhook_actor.send()
        except Exception as error:  # the outbox is the truth: the sweep wakes them again
            LOG.warning("webhook deliveries not woken: %s", error)

    def send(self, job_id: int, kind: str) -> None:
        """Wake a worker up for the job; a broker that can't be reached is logged (the job
        stays queued and its message is sent again later)."""
        try:
            self.actors[KIND_GROUP[kind]].send(job_id)
        except Exception as error:  # the row is the truth: the sweep sends it again
            LOG.warning("job %s queued, its message not sent: %s", job_id, error)

    def start(self, *, scheduler: bool) -> None:
        """Recover what a stopped process left, send every queued job again, start the
        worker (and, in the server, the scheduler)."""
        self.recover()
        queues = {self.queue_names[group] for group in self.groups}
        self._worker = dramatiq.Worker(self.broker, queues=queues,
                                       worker_threads=self.runtime.settings.worker_threads,
                                       worker_timeout=250)
        self._worker.start()
        if scheduler:
            self._scheduler = threading.Thread(target=self._schedule, name="job-scheduler",
                                               daemon=True)
            self._scheduler.start()

    def recover(self) -> None:
        """Interrupted jobs of stopped processes ended or queued again; queued jobs sent."""
        with self.runtime.session() as session:
            job_store.recover_interrupted(session, is_gone=process_gone,
                                          fails_when_interrupted=FAILS_WHEN_INTERRUPTED)
            queued = [(job.id, job.kind) for job in job_store.queued_jobs(session)]
            released = webhook_store.release_leases(session, is_gone=process_gone)
        for job_id, kind in queued:
            assert job_id is not None
            self.send(job_id, kind)
        if released:
            self.wake_webhooks()

    def join(self, timeout_s: float = 30) -> None:
        """Wait until every sent message was processed (the embedded broker; for tests)."""
        deadline = time.monotonic() + timeout_s
        if isinstance(self.broker, StubBroker):
            for name in self.queue_names.values():
                self.broker.join(name, timeout=int(timeout_s * 1000))
        if self._worker is not None:
            self._worker.join()
        if time.monotonic() > deadline:
            raise TimeoutError("jobs still running")

    def stop(self) -> None:
        """Stop the scheduler and the worker (work in progress stops at its next step and
        is queued again), then the broker's connections."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=30)
        if self._worker is not None:
            self._worker.stop()
        self.broker.close()

    def _schedule(self) -> None:
        settings = self.runtime.settings
        compact_every = settings.telemetry_compact_interval_seconds
        sweep_every = settings.job_sweep_interval_seconds
        poll_every = settings.webhook_poll_interval_seconds
        tick = min(sweep_every, compact_every) if compact_every > 0 else sweep_every
        tick = min(tick, poll_every)
        next_compaction = time.monotonic() + compact_every
        next_sweep = time.monotonic()
        next_poll = time.monotonic()
        while not self._stopping.wait(tick):
            now = time.monotonic()
            try:
                if now >= next_poll:
                    next_poll = now + poll_every
                    self.poll_webhooks()
                if compact_every > 0 and now >= next_compaction:
                    next_compaction = now + compact_every
                    self.schedule_compaction()
                if now >= next_sweep:
                    next_sweep = now + sweep_every
                    self.sweep()
            except Exception:
                LOG.exception("job scheduler")

    def poll_webhooks(self) -> bool:
        """Wake the deliveries up when events wait to be fanned out or a delivery's (retry)
        time has come; whether it did."""
        with self.runtime.session(read_only=True) as session:
            due_at = webhook_store.next_due_at(session)
            waiting = webhook_store.has_undispatched_events(session)
        if waiting or (due_at is not None and due_at <= utc_now()):
            self.wake_webhooks()
            return True
        return False

    def schedule_compaction(self) -> int | None:
        """Queue a compaction job when the telemetry store has quiet days or unsorted rollup
        blocks and none is queued or running; its id, or None."""
        store = self.runtime.open_telemetry_store()
        if store is None:
            return None
        quiet_ms = int(self.runtime.settings.telemetry_compact_quiet_seconds * 1000)
        if not days_to_compact(store, quiet_ms=quiet_ms) and not unsorted_blocks(store):
            return None
        with self.runtime.session() as session:
            if job_store.has_open_job(session, kind=COMPACTION):
                return None
            job = job_store.create_job(session, kind=COMPACTION,
                                       message="queued by the scheduler")
            job_id = job.id
        assert job_id is not None
        self.send(job_id, COMPACTION)
        return job_id

    def sweep(self) -> None:
        """End or requeue the jobs of stopped processes, delete expired result files, forget
        old ended jobs, send again the messages of jobs queued too long."""
        settings = self.runtime.settings
        results = settings.job_results_dir()
        with self.runtime.session() as session:
            # A worker process of this host that died mid-job: its imports end failed.
            job_store.recover_interrupted(session, is_gone=process_gone,
                                          fails_when_interrupted=FAILS_WHEN_INTERRUPTED)
            webhook_store.release_leases(session, is_gone=process_gone)
            for job in job_store.expired_result_files(session):
                (results / str(job.result_file)).unlink(missing_ok=True)
                job_store.forget_result_file(session, job=job)
            job_store.prune_finished(session,
                                     older_than=timedelta(days=settings.job_retention_days))
            cutoff = utc_now() - timedelta(seconds=settings.job_resend_after_seconds)
            stale = [(job.id, job.kind) for job in job_store.queued_jobs(session,
                                                                          sent_before=cutoff)]
            job_store.mark_sent(session, job_ids=[job_id for job_id, _ in stale if job_id])
        for job_id, kind in stale:
            assert job_id is not None
            self.send(job_id, kind)
        check_silence(self.runtime)
        self.wake_webhooks()
