"""Turning a request into a job: the row first, then the broker's wake-up message."""

from __future__ import annotations

from typing import Any

from bundles.errors import BundleRefused
from bundles.validate import validate_documents
from handlers.jobs import job_location, present_job
from handlers.runtime import Runtime
from handlers.security import Caller
from storage import jobs as job_store
from storage.access import community_keys_by_ids


def submit(runtime: Runtime, caller: Caller, *, kind: str, arguments: dict[str, Any],
           community_key: str | None, message: str) -> tuple[dict[str, Any], int,
                                                              dict[str, str]]:
    """A queued job for the caller (committed before its message is sent, so a worker
    always finds it), answered 202 with its Location."""
    with runtime.session(read_only=False) as session:
        job = job_store.create_job(session, kind=kind, arguments=arguments,
                                   community_key=community_key, requested_by_id=caller.user_id,
                                   requested_by=caller.email, message=message)
        shown = present_job(job)
    if runtime.jobs is not None:
        runtime.jobs.send(int(shown["id"]), kind)
    return shown, 202, {**job_location(shown["id"]), "Content-Type": "application/json"}


def submit_import(runtime: Runtime, caller: Caller, documents: list[dict[str, Any]],
                  allowed: set[str] | None, *, dry_run: bool, force: bool,
                  single: bool) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A bundle import job; its result is the import report. Documents that break the bundle
    format's schema are refused at once (422), as the request's own validation would."""
    refusals = validate_documents(documents)
    if refusals:
        raise BundleRefused(refusals)
    keys = {_community_key(document) for document in documents}
    key = keys.pop() if len(keys) == 1 else None
    if allowed is not None and key not in allowed:
        key = None  # a community the caller may not write: its operators never see the job
    return submit(runtime, caller, kind="bundle_import", community_key=key,
                  arguments={"documents": documents, "dry_run": dry_run, "force": force,
                             "single": single,
                             "allowed": None if allowed is None else sorted(allowed)},
                  message=f"queued: import of {len(documents)} community document(s)")


def _community_key(document: dict[str, Any]) -> str | None:
    community = document.get("community")
    key = community.get("id") if isinstance(community, dict) else None
    return key if isinstance(key, str) else None


def submit_export(runtime: Runtime, caller: Caller, sensors: dict[str, int], *,
                  channel: str | None, low: int, high: int, file_format: str, rows: int,
                  filename: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A telemetry export job; its result is a file served until it expires."""
    communities = set(sensors.values())
    key = None
    if len(communities) == 1:
        with runtime.session(read_only=True) as session:
            key = next(iter(community_keys_by_ids(session, ids=communities)), None)
    return submit(runtime, caller, kind="telemetry_export", community_key=key,
                  arguments={"sensors": sensors, "channel": channel, "low": low, "high": high,
                             "format": file_format, "rows": rows, "filename": filename},
                  message=f"queued: export of {rows} readings as {file_format}")
