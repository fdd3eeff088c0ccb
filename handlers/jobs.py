"""Background jobs: list, show, cancel, and a finished job's result."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.responses import FileResponse

from handlers.access import caller_of
from handlers.job_work import EXPORT_MEDIA_TYPES
from handlers.present import timestamp
from handlers.problems import Problem
from handlers.runtime import Runtime, current_runtime, in_thread
from handlers.security import Caller
from storage import access
from storage import jobs as job_store
from storage.models import Job, utc_now


def job_scope(session: Session, caller: Caller) -> job_store.JobScope:
    """Admins see every job; others their own and those of the communities they operate."""
    if caller.is_platform_admin:
        return job_store.JobScope(everything=True)
    administered = access.administered_community_ids(session, user_id=caller.email)
    keys = access.community_keys_by_ids(session, ids=administered)
    return job_store.JobScope(user_id=caller.user_id, community_keys=frozenset(keys))


def present_job(job: Job) -> dict[str, Any]:
    """A job as the API shows it (never its arguments)."""
    return {"id": job.id, "kind": job.kind, "status": job.status,
            "community": job.community_key, "requested_by": job.requested_by,
            "progress": {"percent": job.progress, "message": job.progress_message},
            "cancel_requested": job.cancel_requested,
            "created_at": timestamp(job.created_at), "started_at": timestamp(job.started_at),
            "finished_at": timestamp(job.finished_at), "result": job.result,
            "problem": job.problem, "log": list(job.log)}


def job_location(job_id: int | None) -> dict[str, str]:
    """The Location header of a job's answer."""
    return {"Location": f"/api/jobs/{job_id}"}


def _scoped(runtime: Runtime, token_info: dict[str, Any],
            read: Any, *, read_only: bool = True) -> Any:
    with runtime.session(read_only=read_only) as session:
        return read(session, job_scope(session, caller_of(token_info)))


async def list_jobs(token_info: dict[str, Any], status: str | None = None,
                    kind: str | None = None, community: str | None = None,
                    limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    def read(session: Session, scope: job_store.JobScope) -> dict[str, Any]:
        page = job_store.list_jobs(session, scope=scope, status=status, kind=kind,
                                   community_key=community, limit=limit, cursor=cursor)
        return {"items": [present_job(job) for job in page.items],
                "next_cursor": page.next_cursor}

    return await in_thread(_scoped, current_runtime(), token_info, read)


async def get_job(job_id: int, token_info: dict[str, Any]) -> dict[str, Any]:
    def read(session: Session, scope: job_store.JobScope) -> dict[str, Any]:
        return present_job(job_store.get_job(session, job_id=job_id, scope=scope))

    return await in_thread(_scoped, current_runtime(), token_info, read)


async def cancel_job(job_id: int, token_info: dict[str, Any]) -> dict[str, Any]:
    def cancel(session: Session, scope: job_store.JobScope) -> dict[str, Any]:
        return present_job(job_store.request_cancel(session, job_id=job_id, scope=scope))

    return await in_thread(_scoped, current_runtime(), token_info, cancel, read_only=False)


async def get_job_result(job_id: int, token_info: dict[str, Any]) -> Any:
    runtime = current_runtime()
    job = await in_thread(_scoped, runtime, token_info,
                          lambda session, scope: job_store.get_job(session, job_id=job_id,
                                                                   scope=scope))
    if job.status != job_store.SUCCEEDED:
        raise Problem(409, "job_not_finished",
                      f"job {job_id} has no result: it is {job.status}")
    if job.result_expires_at is None:
        return job.result, 200, {"Content-Type": "application/json"}
    path = runtime.settings.job_results_dir() / str(job.result_file)
    if job.result_file is None or job.result_expires_at <= utc_now() or not path.is_file():
        raise Problem(410, "result_expired", f"the result of job {job_id} has expired and "
                      "was deleted; run the export again")
    file_format = path.suffix.lstrip(".")
    return FileResponse(path, media_type=EXPORT_MEDIA_TYPES[file_format],
                        filename=str((job.result or {}).get("filename", path.name)))
