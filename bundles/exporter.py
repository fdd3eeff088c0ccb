"""Exporting communities as bundle documents: deterministic multi-document YAML.

The same registry always gives the same bytes: rows come in bundle order (position, then key),
known properties in schema order, unknown ones in the order they were imported.

The YAML text is written here rather than by `yaml.dump_all`: PyYAML's representer takes
about 2.5 s for a 10,000-member community, this writer a fraction of that. It writes block
style only; a string is plain only when it is unambiguous (PyYAML's resolver reads it back as
that string) and is double-quoted (JSON escapes, which YAML shares) otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlmodel import Session
from yaml.resolver import Resolver

from bundles.parse import gc_paused
from storage import graph as graph_store
from storage.errors import NotFound
from storage.graph import BUNDLE_SHAPE_KEY, CommunityGraph

_ENVELOPE_FIRST = ("version", "schema_version", "metadata")
_ENVELOPE_DEFAULTS = {"version": "1.0", "schema_version": "0.7"}


def _put(target: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        target[name] = value


def _merge_extra(target: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    for name, value in (extra or {}).items():
        if name != BUNDLE_SHAPE_KEY and name not in target:
            target[name] = value
    return target


def graph_to_document(graph: CommunityGraph) -> dict[str, Any]:
    """The bundle document of a community graph."""
    row = graph.community
    # A community written by the API rather than imported has no envelope: give it the
    # required properties, so that the export imports again.
    envelope = {**_ENVELOPE_DEFAULTS, **(row.get("envelope") or {})}
    document: dict[str, Any] = {name: envelope[name] for name in _ENVELOPE_FIRST
                                if name in envelope}
    for name, value in envelope.items():
        if name not in ("community", "members"):
            document.setdefault(name, value)
    community: dict[str, Any] = {"id": row["key"], "name": row["name"]}
    for name in ("description", "legal", "links", "contact", "settings", "operators"):
        _put(community, name, row.get(name))
    community["areas"] = {area["key"]: _area(area) for area in graph.areas}
    shape = (row.get("extra") or {}).get(BUNDLE_SHAPE_KEY) or {}
    if graph.topology_nodes or shape.get("empty_topology"):
        community["topology"] = [_node(node) for node in graph.topology_nodes]
    document["community"] = _merge_extra(community, row.get("extra"))
    points: dict[str, list[dict[str, Any]]] = {}
    for point in graph.delivery_points:
        points.setdefault(point["member_key"], []).append(_point(point))
    assets: dict[str, list[dict[str, Any]]] = {}
    for asset in graph.assets:
        assets.setdefault(asset["member_key"], []).append(asset)
    document["members"] = {
        member["key"]: _member(member, points.get(member["key"]), assets.get(member["key"]))
        for member in graph.members}
    return document


def _area(row: dict[str, Any]) -> dict[str, Any]:
    area = {"name": row["name"],
            "boundary": {"source": row["boundary_source"], "id": row["boundary_id"]},
            "topology": list(row["topology"])}
    return _merge_extra(area, row["extra"])


def _node(row: dict[str, Any]) -> dict[str, Any]:
    node = {"id": row["node_id"], "type": row["type"]}
    for name in ("name", "operator_id", "parent"):
        _put(node, name, row[name])
    return _merge_extra(node, row["extra"])


def _point(row: dict[str, Any]) -> dict[str, Any]:
    point = {"id": row["dp_id"], "type": row["type"]}
    for name in ("description", "address", "tariff"):
        _put(point, name, row[name])
    point["active"] = bool(row["active"])
    return _merge_extra(point, row["extra"])


def _asset(row: dict[str, Any]) -> dict[str, Any]:
    # The properties as imported; the columns win where a later write changed them.
    properties = dict(row["properties"])
    if row["name"] or "name" in properties:
        properties["name"] = row["name"]
    for name in ("sensor_id", "meter_type", "pod"):
        if row[name] is not None:
            properties[name] = row[name]
    return properties


def _member(row: dict[str, Any], points: list[dict[str, Any]] | None,
            assets: list[dict[str, Any]] | None) -> dict[str, Any]:
    member: dict[str, Any] = {"user_id": row["user_id"]}
    _put(member, "did", row["did"])
    member["name"] = row["name"]
    _put(member, "type", row["type"])
    member["role"] = row["role"]
    member["area"] = row["area"]
    member["status"] = row["status"]
    extra = row["extra"] or {}
    shape = extra.get(BUNDLE_SHAPE_KEY) or {}
    if points or shape.get("empty_delivery_points"):
        member["delivery_points"] = points or []
    grouped: dict[str, dict[str, Any]] = {}
    for asset in assets or ():
        grouped.setdefault(asset["asset_type"], {})[asset["key"]] = _asset(asset)
    if "assets_order" in shape:
        raw = shape.get("assets_raw") or {}
        collection: dict[str, Any] = {}
        for asset_type in shape["assets_order"]:
            if asset_type in raw:
                collection[asset_type] = raw[asset_type]
            elif asset_type in grouped:
                collection[asset_type] = grouped[asset_type]
        for asset_type, value in grouped.items():
            collection.setdefault(asset_type, value)
        member["assets"] = collection
    elif grouped:
        member["assets"] = grouped
    return _merge_extra(member, extra)


def export_community_document(session: Session, *, community_id: int) -> dict[str, Any]:
    """The bundle document of one registered community."""
    return graph_to_document(graph_store.read_community_graph(session, community_id=community_id))


def export_communities(session: Session, *, community_keys: list[str] | None) -> str:
    """The YAML bundle of the communities (None: all, by key), one document each, in order.

    Raises storage.errors.NotFound (code community_not_found) naming unknown keys.
    """
    if community_keys is None:
        keys = graph_store.all_community_keys(session)
    else:
        keys = list(dict.fromkeys(community_keys))
    ids = graph_store.community_ids_by_key(session, keys=keys)
    missing = [key for key in keys if key not in ids]
    if missing:
        raise NotFound("no community " + ", ".join(repr(key) for key in missing),
                       code="community_not_found")
    with gc_paused():
        return dump_documents([export_community_document(session, community_id=ids[key])
                               for key in keys])


# ------------------------------------------------------------------------ YAML text

_IMPLICIT = Resolver.yaml_implicit_resolvers
_PLAIN = re.compile(r"[A-Za-z0-9_/](?:[\w./@+(),'-]|:(?=[^ ])| (?=[^ ]))*")
# What YAML 1.2 loaders read as numbers though YAML 1.1 (PyYAML) reads a string: quote it too.
_NUMBER_LIKE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                          r"|0o[0-7]+|0x[0-9a-fA-F]+")
_UNSAFE_IN_QUOTES = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_MAX_IMPLICIT_KEY = 1000


def _quoted(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    # YAML reads these as line breaks or refuses them raw; escape them.
    return _UNSAFE_IN_QUOTES.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text) and not _NUMBER_LIKE.fullmatch(text):
        for _tag, pattern in _IMPLICIT.get(text[0], ()):
            if pattern.match(text):
                return _quoted(text)
        return text
    return _quoted(text)


class _Writer:
    """Block-style YAML of JSON-like data, appended to a list of lines."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.strings: dict[str, str] = {}

    def scalar(self, value: Any) -> str:
        if isinstance(value, str):
            text = self.strings.get(value)
            if text is None:
                text = self.strings[value] = _string(value)
            return text
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            text = repr(value)
            if "." not in text and "e" in text:
                text = text.replace("e", ".0e", 1)  # 1e+20 is a string to YAML 1.1
            return text
        if isinstance(value, dict):
            return "{}"
        if isinstance(value, list):
            return "[]"
        raise TypeError(f"can't write {type(value).__name__} as YAML")

    def mapping(self, value: dict[str, Any], indent: str, lead: str) -> None:
        out = self.out
        strings = self.strings
        deeper = indent + "  "
        for key, item in value.items():
            name = strings.get(key) or self.scalar(key)
            if len(name) > _MAX_IMPLICIT_KEY:  # an implicit key may not be longer than 1024
                out.append(f"{lead}? {name}\n")
                head = f"{indent}:"
            else:
                head = f"{lead}{name}:"
            kind = item.__class__
            if kind is str:  # the common case, inlined
                text = strings.get(item)
                if text is None:
                    text = strings[item] = _string(item)
                out.append(f"{head} {text}\n")
            elif kind is dict and item:
                out.append(head + "\n")
                self.mapping(item, deeper, deeper)
            elif kind is list and item:
                out.append(head + "\n")
                self.sequence(item, deeper)
            else:
                out.append(f"{head} {self.scalar(item)}\n")
            lead = indent

    def sequence(self, value: list[Any], indent: str) -> None:
        out = self.out
        deeper = indent + "  "
        for item in value:
            if isinstance(item, dict) and item:
                self.mapping(item, deeper, indent + "- ")
            elif isinstance(item, list) and item:
                out.append(f"{indent}-\n")
                self.sequence(item, deeper)
            else:
                out.append(f"{indent}- {self.scalar(item)}\n")


def dump_documents(documents: list[dict[str, Any]]) -> str:
    """Multi-document YAML of the documents (`---` between them), read back by any YAML 1.1
    loader (PyYAML's SafeLoader) as the same data."""
    writer = _Writer()
    for index, document in enumerate(documents):
        if index:
            writer.out.append("---\n")
        if document:
            writer.mapping(document, "", "")
        else:
            writer.out.append("{}\n")
    return "".join(writer.out)

