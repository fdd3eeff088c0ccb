"""Job rows: claimed once, progress and cancellation, recovery, visibility, clean-up."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from storage import jobs as job_store
from storage.models import Job, utc_now

IMPORTS = ("bundle_import",)


def _job(session: Session, **values: object) -> int:
    job = job_store.create_job(session, kind=str(values.pop("kind", "bundle_import")),
                               arguments={"documents": []}, **values)  # type: ignore[arg-type]
    session.commit()
    assert job.id is not None
    return job.id


def test_a_job_is_claimed_once_and_only_by_its_kind(session: Session) -> None:
    job_id = _job(session)
    assert job_store.claim_job(session, job_id=job_id, worker="h:1",
                               kinds=("telemetry_export",)) is None
    claimed = job_store.claim_job(session, job_id=job_id, worker="h:1", kinds=IMPORTS)
    session.commit()
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert job_store.claim_job(session, job_id=job_id, worker="h:2", kinds=IMPORTS) is None


def test_cancel_queued_at_once_running_by_request(session: Session) -> None:
    queued, running = _job(session), _job(session)
    everything = job_store.JobScope(everything=True)
    assert job_store.request_cancel(session, job_id=queued, scope=everything).status == \
        "cancelled"
    job_store.claim_job(session, job_id=running, worker="h:1", kinds=IMPORTS)
    assert job_store.report_progress(session, job_id=running, percent=10, message="going")
    job = job_store.request_cancel(session, job_id=running, scope=everything)
    assert job.status == "running" and job.cancel_requested
    assert not job_store.report_progress(session, job_id=running, percent=20, message="more")


def test_scope_sees_own_and_community_jobs(session: Session) -> None:
    mine = _job(session, requested_by_id=7)
    ours = _job(session, community_key="alpha")
    _job(session, community_key="beta")
    scope = job_store.JobScope(user_id=7, community_keys=frozenset({"alpha"}))
    page = job_store.list_jobs(session, scope=scope)
    assert [job.id for job in page.items] == [mine, ours]


def test_recovery_fails_interrupted_imports_and_requeues_the_rest(session: Session) -> None:
    imported = _job(session)
    exported = _job(session, kind="telemetry_export")
    alive = _job(session)
    for job_id, worker in ((imported, "h:1"), (exported, "h:1"), (alive, "h:2")):
        job_store.claim_job(session, job_id=job_id, worker=worker,
                            kinds=(*IMPORTS, "telemetry_export"))
    requeued = job_store.recover_interrupted(session, is_gone=lambda worker: worker == "h:1",
                                             fails_when_interrupted=IMPORTS)
    session.commit()
    assert [job.id for job in requeued] == [exported]
    failed = session.get(Job, imported)
    assert failed is not None and failed.status == "failed"
    assert failed.problem is not None and failed.problem["code"] == "interrupted"
    assert failed.arguments is None
    still = session.get(Job, alive)
    assert still is not None and still.status == "running"
    assert [job.id for job in job_store.queued_jobs(session)] == [exported]


def test_expired_results_and_old_jobs_are_cleaned(session: Session) -> None:
    job_id = _job(session, kind="telemetry_export")
    job_store.claim_job(session, job_id=job_id, worker="h:1", kinds=("telemetry_export",))
    job_store.succeed_job(session, job_id=job_id, result={}, message="done",
                          result_file="job-1.csv", expires_at=utc_now() + timedelta(hours=1))
    session.commit()
    assert job_store.expired_result_files(session) == []
    later = utc_now() + timedelta(hours=2)
    expired = job_store.expired_result_files(session, now=later)
    assert [job.id for job in expired] == [job_id]
    job_store.forget_result_file(session, job=expired[0])
    assert job_store.prune_finished(session, older_than=timedelta(days=1)) == 0
    assert job_store.prune_finished(session, older_than=timedelta(seconds=-1)) == 1


def test_job_writes_leave_the_registry_caches_valid(session: Session) -> None:
    from storage.db import registry_version

    before = registry_version()
    job_id = _job(session)
    job_store.claim_job(session, job_id=job_id, worker="h:1", kinds=IMPORTS)
    job_store.report_progress(session, job_id=job_id, percent=50, message="half")
    session.commit()
    assert registry_version() == before
