"""What each kind of job does, and how a job id becomes a claimed, run and ended job."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bundles.importer import import_bundles
from handlers.problems import as_problem, problem_body
from storage import jobs as job_store
from storage.models import utc_now
from storage.telemetry.compaction import compact_day, days_to_compact, sort_rollup, unsorted_blocks
from storage.telemetry.export import export_file

if TYPE_CHECKING:
    from handlers.runtime import Runtime

LOG = logging.getLogger("commonwatt.jobs")
# Registry work may run in any worker process; telemetry work only in the server (DuckDB).
GROUP_KINDS = {"registry": ("bundle_import",),
               "telemetry": ("telemetry_export", "telemetry_compaction")}
KIND_GROUP = {kind: group for group, kinds in GROUP_KINDS.items() for kind in kinds}
EXPORT_MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


class JobCancelled(Exception):
    """Someone asked the job to stop: it ends cancelled, its transaction rolled back."""


class JobPaused(Exception):
    """The process is stopping: the job goes back to the queue and runs again later."""


@dataclass
class JobContext:
    """What a job's work gets: the runtime, its id and arguments, and how to report."""

    runtime: Runtime
    job_id: int
    arguments: dict[str, Any]
    stopping: Callable[[], bool]

    def progress(self, percent: int, message: str) -> None:
        """Record progress; JobCancelled when a cancellation was asked for."""
        with self.runtime.session() as session:
            go_on = job_store.report_progress(session, job_id=self.job_id, percent=percent,
                                              message=message)
        if not go_on:
            raise JobCancelled

    def check_cancelled(self) -> None:
        """JobCancelled when a cancellation was asked for."""
        with self.runtime.session(read_only=True) as session:
            if job_store.cancel_requested(session, job_id=self.job_id):
                raise JobCancelled


def bundle_import(context: JobContext) -> None:
    """Import bundles in one transaction, which also records the report as the result."""
    arguments = context.arguments
    documents = arguments["documents"]
    allowed = arguments.get("allowed")
    context.progress(10, f"importing {len(documents)} community document(s)")
    with context.runtime.session() as session:
        report: dict[str, Any] = dict(import_bundles(
            session, documents, dry_run=arguments.get("dry_run", False),
            force=arguments.get("force", False),
            allowed_community_keys=None if allowed is None else set(allowed)))
        context.check_cancelled()  # a cancelled import rolls back
        result = report["reports"][0] if arguments.get("single") else report
        job_store.succeed_job(session, job_id=context.job_id, result=dict(result),
                              message="dry run done" if arguments.get("dry_run")
                              else "imported")
    if context.runtime.jobs is not None and not arguments.get("dry_run"):
        context.runtime.jobs.wake_webhooks()


def telemetry_export(context: JobContext) -> None:
    """Write an export to a result file served until it expires."""
    arguments = context.arguments
    settings = context.runtime.settings
    file_format = arguments["format"]
    context.progress(5, f"writing {arguments['rows']} readings as {file_format}")
    path = export_file(context.runtime.telemetry, sensors=arguments["sensors"],
                       channel=arguments.get("channel"), low=arguments["low"],
                       high=arguments["high"], file_format=file_format)
    try:
        context.check_cancelled()
        results = settings.job_results_dir()
        results.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = results / f"job-{context.job_id}.{file_format}"
        shutil.move(path, target)
    finally:
        path.unlink(missing_ok=True)
    os.chmod(target, 0o600)
    expires_at = utc_now() + timedelta(seconds=settings.job_result_ttl_seconds)
    with context.runtime.session() as session:
        job_store.succeed_job(
            session, job_id=context.job_id, result_file=target.name, expires_at=expires_at,
            message="export written",
            result={"format": file_format, "media_type": EXPORT_MEDIA_TYPES[file_format],
                    "filename": arguments["filename"], "rows": arguments["rows"],
                    "bytes": target.stat().st_size, "expires_at": expires_at.isoformat(),
                    "url": f"/api/jobs/{context.job_id}/result"})


def telemetry_compaction(context: JobContext) -> None:
    """Compact the quiet days one by one, then sort the rollup blocks waiting for it."""
    store = context.runtime.telemetry
    quiet_ms = int(context.runtime.settings.telemetry_compact_quiet_seconds * 1000)
    days = days_to_compact(store, quiet_ms=quiet_ms)
    compacted = 0
    for index, day in enumerate(days):
        if context.stopping():
            raise JobPaused
        context.progress(90 * index // len(days), f"compacting day {index + 1} of {len(days)}")
        compacted += compact_day(store, day) is not None
    blocks = unsorted_blocks(store)
    context.progress(90, f"sorting {len(blocks)} rollup block(s)")
    sort_rollup(store, blocks)
    with context.runtime.session() as session:
        job_store.succeed_job(session, job_id=context.job_id, message="compacted",
                              result={"days_compacted": compacted,
                                      "rollup_blocks_sorted": len(blocks)})


WORK: dict[str, Callable[[JobContext], None]] = {
    "bundle_import": bundle_import,
    "telemetry_export": telemetry_export,
    "telemetry_compaction": telemetry_compaction,
}


def problem_of(error: Exception) -> dict[str, Any]:
    """The problem a failed job shows: the API's problem for a domain error, else a generic
    internal error (the details go to the log)."""
    try:
        problem = as_problem(error)
    except TypeError:
        return problem_body(500, "internal_error", "the job failed; the server log says why")
    return problem_body(problem.status, problem.code, problem.detail, **problem.extra)


def run_job(runtime: Runtime, job_id: int, *, kinds: tuple[str, ...], worker: str,
            stopping: Callable[[], bool]) -> None:
    """The actors' body: claim the job (a job not queued is left alone: repeated messages do
    nothing), run its work, end it succeeded, failed or cancelled."""
    with runtime.session() as session:
        job = job_store.claim_job(session, job_id=job_id, worker=worker, kinds=kinds)
        if job is None:
            return
        kind, arguments = job.kind, dict(job.arguments or {})
    context = JobContext(runtime=runtime, job_id=job_id, arguments=arguments,
                         stopping=stopping)
    try:
        WORK[kind](context)
    except JobCancelled:
        with runtime.session() as session:
            job_store.end_job(session, job_id=job_id, status=job_store.CANCELLED, problem=None,
                              message="cancelled")
    except JobPaused:
        with runtime.session() as session:
            job_store.requeue_job(session, job_id=job_id, message="paused: the server stops")
    except Exception as error:
        problem = problem_of(error)
        if problem["status"] >= 500:
            LOG.exception("job %s (%s) failed", job_id, kind)
        with runtime.session() as session:
            job_store.end_job(session, job_id=job_id, status=job_store.FAILED, problem=problem,
                              message=f"failed: {problem['code']}")
