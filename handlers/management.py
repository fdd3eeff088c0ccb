"""Bundle import (JSON and multi-document YAML, one transaction) and deterministic YAML export."""

from __future__ import annotations

from typing import Any

from bundles.exporter import export_communities
from bundles.importer import import_bundles
from bundles.parse import parse_json_bundle, parse_yaml_documents
from handlers.access import admin_scope, caller_of
from handlers.job_submit import submit_import
from handlers.runtime import Runtime, current_runtime, in_thread
from handlers.security import Caller
from storage.access import community_keys_by_ids, require_visible_keys

YAML_MEDIA_TYPE = "application/yaml"


def _writable_keys(runtime: Runtime, caller: Caller) -> set[str] | None:
    """Communities the caller may import (None: any, new ones included); 403 for none."""
    with runtime.session() as session:
        visible = admin_scope(session, caller, write=True)
        return None if visible is None else community_keys_by_ids(session, ids=visible)


def _import(runtime: Runtime, documents: list[dict[str, Any]], allowed: set[str] | None, *,
            dry_run: bool, force: bool) -> dict[str, Any]:
    with runtime.session() as session:
        report: dict[str, Any] = dict(import_bundles(
            session, documents, dry_run=dry_run, force=force, allowed_community_keys=allowed))
    if runtime.jobs is not None and not dry_run:
        runtime.jobs.wake_webhooks()  # the import's events are in the outbox now
    return report


async def import_bundle(body: dict[str, Any], token_info: dict[str, Any],
                        **options: Any) -> Any:
    runtime = current_runtime()
    allowed = await in_thread(_writable_keys, runtime, caller_of(token_info))
    document = parse_json_bundle(body["bundle"])
    if options.get("async"):  # `async` is a keyword: Connexion passes it by name
        return await in_thread(submit_import, runtime, caller_of(token_info), [document],
                               allowed, dry_run=body.get("dry_run", False),
                               force=body.get("force", False), single=True)
    report = await in_thread(_import, runtime, [document], allowed,
                             dry_run=body.get("dry_run", False), force=body.get("force", False))
    single: dict[str, Any] = report["reports"][0]
    return single


async def import_yaml_bundles(body: bytes | None, token_info: dict[str, Any],
                              dry_run: bool = False, force: bool = False,
                              **options: Any) -> Any:
    runtime = current_runtime()
    settings = runtime.settings
    allowed = await in_thread(_writable_keys, runtime, caller_of(token_info))
    documents = await in_thread(parse_yaml_documents, body or b"",
                                max_nodes=settings.yaml_max_nodes,
                                max_depth=settings.yaml_max_depth)
    if options.get("async"):
        return await in_thread(submit_import, runtime, caller_of(token_info), documents,
                               allowed, dry_run=dry_run, force=force, single=False)
    return await in_thread(_import, runtime, documents, allowed, dry_run=dry_run, force=force)


def _export(runtime: Runtime, caller: Caller, keys: list[str] | None) -> str:
    with runtime.session() as session:
        visible = admin_scope(session, caller)
        if visible is not None:
            administered = community_keys_by_ids(session, ids=visible)
            if keys:
                require_visible_keys(keys, visible_keys=administered)
            else:
                keys = sorted(administered)
        return export_communities(session, community_keys=keys)


async def export_bundles(token_info: dict[str, Any],
                         community: list[str] | None = None) -> tuple[str, int, dict[str, str]]:
    runtime = current_runtime()
    keys = list(dict.fromkeys(community)) if community else None
    text = await in_thread(_export, runtime, caller_of(token_info), keys)
    return text, 200, {"Content-Type": YAML_MEDIA_TYPE}
