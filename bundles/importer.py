"""Importing bundle documents: every check first, then each community replaced wholesale.

One request is one transaction, given by the caller, who commits. Nothing is written until
every document passed the schema, the invariants and the registry checks; then all replaced
communities are emptied before any is filled, so a key moving between two communities of one
request does not collide with itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict

from sqlmodel import Session

from bundles.errors import BundleRefused, CommunityExists
from bundles.parse import gc_paused
from bundles.validate import KNOWN_ASSET_TYPES, collect_refusals, stores_as_assets
from storage import claims, webhooks
from storage import graph as graph_store
from storage.assets import derived_columns
from storage.graph import BUNDLE_SHAPE_KEY, CommunityGraph

COMMUNITY_PROPERTIES = ("id", "name", "description", "legal", "links", "contact", "settings",
                        "operators", "areas", "topology")
ENVELOPE_PROPERTIES = ("version", "schema_version", "metadata")
NODE_PROPERTIES = ("id", "type", "name", "operator_id", "parent")
AREA_PROPERTIES = ("name", "boundary", "topology")
MEMBER_PROPERTIES = ("user_id", "did", "name", "type", "role", "area", "status",
                     "delivery_points", "assets")
DP_PROPERTIES = ("id", "type", "description", "address", "tariff", "active")
MAX_WARNINGS = 100


class Counts(TypedDict):
    """Rows of each kind."""

    areas: int
    topology_nodes: int
    members: int
    delivery_points: int
    assets: int


class Change(TypedDict):
    """How many items, compared by key, a bundle adds, removes and changes."""

    added: int
    removed: int
    changed: int


class Changes(TypedDict):
    """What an import changes, per kind of item."""

    members: Change
    assets: Change
    delivery_points: Change
    areas: Change


class ImportReport(TypedDict):
    """What importing one community did (or, in a dry run, would do)."""

    community_key: str
    action: Literal["created", "replaced", "unchanged"]
    dry_run: bool
    deleted: Counts
    inserted: Counts
    changes: Changes
    warnings: list[str]


class MultiImportReport(TypedDict):
    """What one import request did, per community in document order."""

    dry_run: bool
    reports: list[ImportReport]


def _rest(source: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {name: value for name, value in source.items() if name not in known}


def bundle_to_graph(document: dict[str, Any]) -> CommunityGraph:
    """The rows a schema-valid bundle document becomes; unknown properties kept in `extra`."""
    community = document["community"]
    extra = _rest(community, COMMUNITY_PROPERTIES)
    if community.get("topology") == []:
        extra[BUNDLE_SHAPE_KEY] = {"empty_topology": True}
    graph = CommunityGraph(community={
        "key": community["id"], "name": community["name"],
        "description": community.get("description"), "legal": community.get("legal"),
        "links": community.get("links"), "contact": community.get("contact"),
        "settings": community.get("settings"), "operators": community.get("operators"),
        "extra": extra,
        "envelope": {name: value for name, value in document.items()
                     if name not in ("community", "members")},
    })
    for position, node in enumerate(community.get("topology") or []):
        graph.topology_nodes.append({
            "node_id": node["id"], "type": node["type"], "name": node.get("name"),
            "parent": node.get("parent"), "operator_id": node.get("operator_id"),
            "extra": _rest(node, NODE_PROPERTIES), "position": position})
    for position, (key, area) in enumerate(community["areas"].items()):
        graph.areas.append({
            "key": key, "name": area["name"], "boundary_source": area["boundary"]["source"],
            "boundary_id": area["boundary"]["id"], "topology": list(area["topology"]),
            "extra": _rest(area, AREA_PROPERTIES), "position": position})
    for position, (key, member) in enumerate((document.get("members") or {}).items()):
        _add_member(graph, position, key, member)
    return graph


def _add_member(graph: CommunityGraph, position: int, key: str, member: dict[str, Any]) -> None:
    extra = _rest(member, MEMBER_PROPERTIES)
    shape: dict[str, Any] = {}
    points = member.get("delivery_points")
    if points == []:
        shape["empty_delivery_points"] = True
    for point in points or ():
        graph.delivery_points.append({
            "member_key": key, "dp_id": point["id"], "type": point["type"],
            "description": point.get("description"), "address": point.get("address"),
            "tariff": point.get("tariff"), "active": point.get("active", True),
            "extra": _rest(point, DP_PROPERTIES), "position": len(graph.delivery_points)})
    assets = member.get("assets")
    if assets is not None:
        raw = {asset_type: value for asset_type, value in assets.items()
               if not stores_as_assets(asset_type, value)}
        if raw or not assets:
            # The rows can't say this part of the shape: keep it for the export.
            shape["assets_order"] = list(assets)
            shape["assets_raw"] = raw
        for asset_type, value in assets.items():
            if asset_type in raw:
                continue
            for asset_key, properties in value.items():
                graph.assets.append({
                    "member_key": key, "key": asset_key, "asset_type": asset_type,
                    **derived_columns(asset_type, properties), "properties": properties,
                    "position": len(graph.assets)})
    if shape:
        extra[BUNDLE_SHAPE_KEY] = shape
    graph.members.append({
        "key": key, "user_id": member["user_id"], "name": member["name"],
        "type": member.get("type"), "role": member["role"], "area": member["area"],
        "status": member["status"], "did": member.get("did"), "extra": extra,
        "position": position})


def _change(old: list[dict[str, Any]], new: list[dict[str, Any]], key: str,
            compared: Callable[[dict[str, Any]], Any]) -> Change:
    before = {row[key]: compared(row) for row in old}
    after = {row[key]: compared(row) for row in new}
    return {"added": sum(1 for name in after if name not in before),
            "removed": sum(1 for name in before if name not in after),
            "changed": sum(1 for name, value in after.items()
                           if name in before and before[name] != value)}


def _without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in names}


def _changes(old: CommunityGraph | None, new: CommunityGraph) -> Changes:
    empty = CommunityGraph(community={})
    stored = old or empty
    return {
        "members": _change(stored.members, new.members, "key",
                           lambda row: _without(row, "position")),
        "assets": _change(stored.assets, new.assets, "key",
                          lambda row: (row["member_key"], row["asset_type"], row["properties"])),
        "delivery_points": _change(stored.delivery_points, new.delivery_points, "dp_id",
                                   lambda row: _without(row, "position")),
        "areas": _change(stored.areas, new.areas, "key", lambda row: _without(row, "position")),
    }


def _same(stored: CommunityGraph, new: CommunityGraph) -> bool:
    """Whether importing `new` over `stored` would write the very same rows."""
    return stored == new


def _warnings(document: dict[str, Any]) -> list[str]:
    warnings: list[str] = []
    unreported = 0
    for member_key, member in (document.get("members") or {}).items():
        for asset_type, value in (member.get("assets") or {}).items():
            if asset_type in KNOWN_ASSET_TYPES:
                continue
            if len(warnings) == MAX_WARNINGS:
                unreported += 1
                continue
            how = ("stored as assets" if stores_as_assets(asset_type, value)
                   else "kept as given")
            warnings.append(f"member {member_key!r}: unknown asset type {asset_type!r}, {how}")
    if unreported:
        warnings.append(f"and {unreported} more unknown asset types")
    return warnings


def _counts(graph: CommunityGraph | None) -> Counts:
    if graph is None:
        return {"areas": 0, "topology_nodes": 0, "members": 0, "delivery_points": 0,
                "assets": 0}
    counts = graph.counts()
    return {"areas": counts["areas"], "topology_nodes": counts["topology_nodes"],
            "members": counts["members"], "delivery_points": counts["delivery_points"],
            "assets": counts["assets"]}


def import_bundles(
    session: Session,
    documents: list[dict[str, Any]],
    *,
    dry_run: bool,
    force: bool,
    allowed_community_keys: set[str] | None = None,
) -> MultiImportReport:
    """Check every document, then create or replace each community (unless `dry_run`).

    Raises BundleRefused (nothing written), CommunityExists when a community is registered
    and neither `force` nor `dry_run` is set, storage.errors.Conflict (code import_conflict)
    when a concurrent write got in first. `allowed_community_keys` (None: any) limits which
    communities the documents may name (refusal code forbidden_community).
    """
    with gc_paused():
        return _import(session, documents, dry_run=dry_run, force=force,
                       allowed_community_keys=allowed_community_keys)


def _import(session: Session, documents: list[dict[str, Any]], *, dry_run: bool, force: bool,
            allowed_community_keys: set[str] | None) -> MultiImportReport:
    if not dry_run:
        # Held sensors and delivery points are checked below and written at the end: no
        # other claiming write may come in between (taken before any community row lock).
        claims.lock_claims(session)
    refusals = collect_refusals(session, documents,
                                allowed_community_keys=allowed_community_keys)
    if refusals:
        raise BundleRefused(refusals)
    keys = [document["community"]["id"] for document in documents]
    existing = graph_store.community_ids_by_key(session, keys=keys)
    if existing and not force and not dry_run:
        raise CommunityExists([key for key in keys if key in existing])
    graphs = [bundle_to_graph(document) for document in documents]
    reports: list[ImportReport] = []
    unchanged: set[str] = set()
    for key, document, graph in zip(keys, documents, graphs, strict=True):
        stored = (graph_store.read_community_graph(session, community_id=existing[key])
                  if key in existing else None)
        if stored is not None and _same(stored, graph):
            unchanged.add(key)
        reports.append({
            "community_key": key,
            "action": ("unchanged" if key in unchanged else
                       "replaced" if stored is not None else "created"),
            "dry_run": dry_run,
            "deleted": _counts(None if key in unchanged else stored),
            "inserted": _counts(None if key in unchanged else graph),
            "changes": _changes(stored, graph),
            "warnings": _warnings(document),
        })
    if not dry_run:
        rewritten = {key: community_id for key, community_id in existing.items()
                     if key not in unchanged}
        graph_store.lock_communities(session, community_ids=rewritten.values())
        for community_id in rewritten.values():
            graph_store.delete_community_graph(session, community_id=community_id)
        for key, graph, report in zip(keys, graphs, reports, strict=True):
            if key not in unchanged:
                community_id = graph_store.write_community_graph(
                    session, graph=graph, community_id=existing.get(key))
                # Same transaction as the change: no event without it, none lost.
                webhooks.record_event(session, community_id=community_id,
                                      event_type="community.imported", payload={
                                          "community": key, "action": report["action"],
                                          "inserted": report["inserted"],
                                          "deleted": report["deleted"]})
    return {"dry_run": dry_run, "reports": reports}
