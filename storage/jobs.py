"""Background jobs as rows: created queued, claimed once, progress and log, ended once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from storage.errors import Conflict, NotFound
from storage.models import Job, utc_now
from storage.pagination import Page, paginate
from storage.webhooks import community_id_of, record_event

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "cancelled")
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
LOG_ENTRIES = 50


@dataclass(frozen=True)
class JobScope:
    """What jobs a caller sees: all (admins), else its own and its communities' jobs."""

    everything: bool = False
    user_id: int | None = None
    community_keys: frozenset[str] = frozenset()

    def allows(self, job: Job) -> bool:
        return (self.everything or (self.user_id is not None
                                    and job.requested_by_id == self.user_id)
                or job.community_key in self.community_keys)


def create_job(session: Session, *, kind: str, arguments: dict[str, Any] | None = None,
               community_key: str | None = None, requested_by_id: int | None = None,
               requested_by: str | None = None, message: str = "queued") -> Job:
    """A new queued job (committed with the session's transaction)."""
    job = Job(kind=kind, arguments=arguments, community_key=community_key,
              requested_by_id=requested_by_id, requested_by=requested_by,
              progress_message=message, log=[_entry(message)], sent_at=utc_now())
    session.add(job)
    session.flush()
    return job


def _entry(message: str) -> dict[str, Any]:
    return {"at": utc_now().isoformat(), "message": message[:500]}


def _visible(statement: Any, scope: JobScope) -> Any:
    if scope.everything:
        return statement
    conditions: list[Any] = [col(Job.community_key).in_(sorted(scope.community_keys))]
    if scope.user_id is not None:
        conditions.append(col(Job.requested_by_id) == scope.user_id)
    return statement.where(or_(*conditions))


def get_job(session: Session, *, job_id: int, scope: JobScope) -> Job:
    """The job, if the scope sees it; NotFound (job_not_found) otherwise."""
    job = session.get(Job, job_id)
    if job is None or not scope.allows(job):
        raise NotFound(f"no job {job_id}", code="job_not_found")
    return job


def list_jobs(session: Session, *, scope: JobScope, status: str | None = None,
              kind: str | None = None, community_key: str | None = None,
              limit: int | None = None, cursor: str | None = None) -> Page[Job]:
    """The jobs the scope sees, oldest first, filtered."""
    statement = _visible(select(Job), scope)
    if status is not None:
        statement = statement.where(Job.status == status)
    if kind is not None:
        statement = statement.where(Job.kind == kind)
    if community_key is not None:
        statement = statement.where(Job.community_key == community_key)
    return paginate(session, statement, col(Job.id), limit=limit, cursor=cursor,
                    key_of=lambda job: job.id)


def request_cancel(session: Session, *, job_id: int, scope: JobScope) -> Job:
    """Cancel a queued job at once, ask a running one to stop; Conflict (job_finished) for a
    job that has ended."""
    job = get_job(session, job_id=job_id, scope=scope)
    if job.status in FINISHED:
        raise Conflict(f"job {job_id} has already ended ({job.status})", code="job_finished")
    if job.status == QUEUED:
        _finish(job, CANCELLED, "cancelled before it started")
    else:
        job.cancel_requested = True
        job.log = [*job.log, _entry("cancellation requested")][-LOG_ENTRIES:]
    session.add(job)
    session.flush()
    return job


def claim_job(session: Session, *, job_id: int, worker: str,
              kinds: Sequence[str]) -> Job | None:
    """Mark a queued job of one of these kinds running for this worker; None when it is not
    queued (already taken, ended or cancelled): a repeated message does nothing."""
    claimed = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.status) == QUEUED,
                          col(Job.kind).in_(kinds))
        .values(status=RUNNING, claimed_by=worker, started_at=utc_now(),
                attempts=col(Job.attempts) + 1))
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    job = session.get(Job, job_id)
    if job is not None:
        session.refresh(job)
        job.log = [*job.log, _entry(f"started by {worker}")][-LOG_ENTRIES:]
        session.add(job)
    return job


def report_progress(session: Session, *, job_id: int, percent: int, message: str) -> bool:
    """Record a running job's progress; whether it should go on (False: cancel requested)."""
    job = session.get(Job, job_id)
    if job is None or job.status != RUNNING:
        return False
    job.progress = max(0, min(100, percent))
    job.progress_message = message[:500]
    job.log = [*job.log, _entry(message)][-LOG_ENTRIES:]
    session.add(job)
    return not job.cancel_requested


def cancel_requested(session: Session, *, job_id: int) -> bool:
    """Whether someone asked this job to stop."""
    job = session.get(Job, job_id)
    return job is None or job.cancel_requested


def _finish(job: Job, status: str, message: str, session: Session | None = None) -> None:
    job.status = status
    job.finished_at = utc_now()
    job.arguments = None
    job.progress_message = message[:500]
    job.log = [*job.log, _entry(message)][-LOG_ENTRIES:]
    if session is not None and status in (SUCCEEDED, FAILED):
        _announce(session, job)


def _announce(session: Session, job: Job) -> None:
    """job.succeeded or job.failed in the outbox, in the transaction that ends the job (for
    a community's jobs: events go to a community's endpoints)."""
    if job.community_key is None:
        return
    community_id = community_id_of(session, job.community_key)
    if community_id is None:
        return
    record_event(session, community_id=community_id, event_type=f"job.{job.status}", payload={
        "community": job.community_key, "job_id": job.id, "kind": job.kind,
        "status": job.status, "message": job.progress_message,
        "code": (job.problem or {}).get("code")})


def succeed_job(session: Session, *, job_id: int, result: dict[str, Any], message: str,
                result_file: str | None = None, expires_at: datetime | None = None) -> None:
    """End a running job with its result."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.result = result
    job.result_file = result_file
    job.result_expires_at = expires_at
    job.progress = 100
    _finish(job, SUCCEEDED, message, session)
    session.add(job)


def end_job(session: Session, *, job_id: int, status: str, problem: dict[str, Any] | None,
            message: str) -> None:
    """End a job as failed or cancelled, with the problem that stopped it."""
    job = session.get(Job, job_id)
    if job is None or job.status in FINISHED:
        return
    job.problem = problem
    _finish(job, status, message, session)
    session.add(job)


def recover_interrupted(session: Session, *, is_gone: Callable[[str], bool],
                        fails_when_interrupted: Sequence[str]) -> list[Job]:
    """Running jobs whose worker is gone: kinds in `fails_when_interrupted` (one-transaction
    work, rolled back) end failed with `interrupted`, others are queued again. Returns the
    jobs queued again."""
    requeued = []
    for job in session.exec(select(Job).where(Job.status == RUNNING)).all():
        if job.claimed_by is None or not is_gone(job.claimed_by):
            continue
        if job.kind in fails_when_interrupted:
            job.problem = {"type": "about:blank", "title": "Interrupted", "status": 500,
                           "code": "interrupted",
                           "detail": "the process running the job stopped before it ended; "
                                     "nothing of it was written (it ran in one transaction)"}
            _finish(job, FAILED, "interrupted: its process stopped; nothing was written",
                    session)
        else:
            job.status = QUEUED
            job.claimed_by = None
            job.log = [*job.log, _entry("interrupted; queued again")][-LOG_ENTRIES:]
            requeued.append(job)
        session.add(job)
    return requeued


def queued_jobs(session: Session, *, sent_before: datetime | None = None) -> Sequence[Job]:
    """Queued jobs (whose message was sent before `sent_before`), oldest first: what to send
    again."""
    statement = select(Job).where(Job.status == QUEUED)
    if sent_before is not None:
        statement = statement.where(or_(col(Job.sent_at).is_(None),
                                        col(Job.sent_at) < sent_before))
    return session.exec(statement.order_by(col(Job.id))).all()


def mark_sent(session: Session, *, job_ids: Sequence[int]) -> None:
    """Note that these jobs' messages were sent now."""
    if job_ids:
        session.execute(update(Job).where(col(Job.id).in_(job_ids)).values(sent_at=utc_now()))


def requeue_job(session: Session, *, job_id: int, message: str) -> None:
    """Put a running job back in the queue (its process is stopping; it runs again later)."""
    job = session.get(Job, job_id)
    if job is None or job.status != RUNNING:
        return
    job.status = QUEUED
    job.claimed_by = None
    job.log = [*job.log, _entry(message)][-LOG_ENTRIES:]
    session.add(job)


def has_open_job(session: Session, *, kind: str) -> bool:
    """Whether a job of this kind is queued or running."""
    return session.exec(select(Job.id).where(
        Job.kind == kind, col(Job.status).in_((QUEUED, RUNNING)))).first() is not None


def expired_result_files(session: Session, *, now: datetime | None = None) -> list[Job]:
    """Jobs whose result file's time is up: the caller deletes the file, then the row's
    reference to it with `forget_result_file`."""
    now = now or utc_now()
    return list(session.exec(select(Job).where(
        col(Job.result_file).is_not(None), col(Job.result_expires_at) <= now)).all())


def forget_result_file(session: Session, *, job: Job) -> None:
    """The job's result file is gone: say so in its row."""
    job.result_file = None
    job.log = [*job.log, _entry("result file expired and deleted")][-LOG_ENTRIES:]
    session.add(job)


def prune_finished(session: Session, *, older_than: timedelta) -> int:
    """Delete ended jobs without a result file that finished before `older_than` ago."""
    cutoff = utc_now() - older_than
    old = session.exec(select(Job).where(col(Job.status).in_(FINISHED),
                                         col(Job.finished_at) < cutoff,
                                         col(Job.result_file).is_(None))).all()
    for job in old:
        session.delete(job)
    return len(old)
