"""Why bundle documents are refused: the JSON Schema, the registry invariants, what is stored.

Each check returns Refusals naming the document (its index in the request) and an RFC 6901
pointer into it; at most MAX_REFUSALS are reported, then one `too_many_errors`.

The schema is checked by jsonschema-rs (Draft 7), the one validator of the bundle format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from sqlmodel import Session

from bundles.errors import Refusal
from storage import claims
from storage import graph as graph_store
from storage.exportable import KEY_PATTERN, RESERVED_KEYS, SENSOR_ID_PATTERN
from storage.graph import BUNDLE_SHAPE_KEY

SCHEMA_PATH = Path(__file__).resolve().parent / "community.schema.json"
MAX_REFUSALS = 100
MAX_MESSAGE = 300
KNOWN_ASSET_TYPES = ("pv", "storage", "meter", "ev_charger", "heat_pump", "load")


class Refusals:
    """Refusals collected up to MAX_REFUSALS, then a final `too_many_errors`."""

    def __init__(self, limit: int = MAX_REFUSALS) -> None:
        self.items: list[Refusal] = []
        self.limit = limit
        self.full = False
        self.seen: set[tuple[int, str, str]] = set()

    def add(self, document: int, pointer: str, code: str, message: str) -> bool:
        """Record one refusal (once per document, pointer and code); False once the limit is
        reached (stop looking)."""
        if self.full:
            return False
        if (document, pointer, code) in self.seen:
            return True
        self.seen.add((document, pointer, code))
        if len(self.items) >= self.limit:
            self.full = True
            self.items.append(Refusal(document, "", "too_many_errors",
                                      f"more than {self.limit} problems; fix these first"))
            return False
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 3] + "..."
        self.items.append(Refusal(document, pointer, code, message))
        return True


def escape(token: object) -> str:
    """One RFC 6901 reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: object) -> str:
    """The RFC 6901 JSON pointer of a path."""
    return "".join("/" + escape(token) for token in tokens)


# --------------------------------------------------------------------------- schema


@cache
def bundle_schema() -> dict[str, Any]:
    """The bundle format's JSON Schema (our tightened copy of rec-registry v0.7)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def schema_validator() -> jsonschema_rs.Draft7Validator:
    """The bundle schema's validator, built once (formats are annotations, not checked).

    jsonschema-rs checks a 10,000-member bundle in milliseconds where the pure-Python
    jsonschema takes seconds, and it says why a document is refused in the same pass.
    """
    return jsonschema_rs.Draft7Validator(bundle_schema(), validate_formats=False)


def _schema_refusal(index: int, error: jsonschema_rs.ValidationError) -> Refusal:
    path: list[Any] = list(error.instance_path)
    keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
    details = error.kind.as_dict()
    code = f"schema_{keyword}"
    message = error.message
    if "propertyNames" in error.schema_path:
        # The key itself is wrong: point at the value it names.
        key = details["error"].instance
        path.append(key)
        code = "invalid_key"
        message = f"the key {key!r} is not allowed: {details['error'].message}"
    elif keyword == "required":
        path.append(details["property"])
    if len(path) == 3 and path[0] == "members" and path[2] in ("role", "status"):
        code = f"invalid_{path[2]}"
    return Refusal(index, pointer(*path), code, message)


def validate_documents(documents: list[dict[str, Any]]) -> list[Refusal]:
    """Every way the documents break the bundle schema (at most MAX_REFUSALS, then one more)."""
    refusals = Refusals()
    schema_refusals(documents, refusals)
    return refusals.items


def schema_refusals(documents: list[dict[str, Any]], refusals: Refusals) -> set[int]:
    """Add the schema refusals of the documents; the indexes of the documents refused."""
    validator = schema_validator()
    refused: set[int] = set()
    for index, document in enumerate(documents):
        if validator.is_valid(document):
            continue
        refused.add(index)
        for error in validator.iter_errors(document):
            refusal = _schema_refusal(index, error)
            if not refusals.add(refusal.document, refusal.pointer, refusal.code,
                                refusal.message):
                return refused
    return refused


# ------------------------------------------------------------------ invariants


def assets_of(member: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(asset type, asset key, properties) of every asset the member's bundle entry stores
    as an asset row: known types, and unknown types whose value is a map of mappings."""
    for asset_type, assets in (member.get("assets") or {}).items():
        if stores_as_assets(asset_type, assets):
            for key, properties in assets.items():
                yield asset_type, key, properties


def stores_as_assets(asset_type: str, assets: Any) -> bool:
    """Whether an `assets` entry becomes asset rows (else it is kept raw in the member)."""
    if not isinstance(assets, dict) or not assets:
        return False
    if asset_type in KNOWN_ASSET_TYPES:
        return True
    return all(isinstance(properties, dict) for properties in assets.values())


class _Invariants:
    """The in-request rules, over all documents of one request."""

    def __init__(self, refusals: Refusals) -> None:
        self.refusals = refusals
        self.communities: dict[str, int] = {}
        # value -> (document index, path) of its first occurrence in the request
        self.sensors: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self.dids: dict[str, tuple[int, tuple[Any, ...]]] = {}
        self.delivery_points: dict[str, tuple[int, tuple[Any, ...]]] = {}

    def add(self, index: int, where: str, code: str, message: str) -> None:
        self.refusals.add(index, where, code, message)

    def document(self, index: int, document: dict[str, Any]) -> None:
        community = document["community"]
        key = community["id"]
        if key in self.communities:
            self.add(index, "/community/id", "duplicate_key",
                     f"community {key!r} is already in document {self.communities[key]} "
                     "of this request")
        else:
            self.communities[key] = index
        if BUNDLE_SHAPE_KEY in community:
            self.add(index, pointer("community", BUNDLE_SHAPE_KEY), "invalid_key",
                     f"{BUNDLE_SHAPE_KEY!r} is reserved for the registry")
        node_types = self.topology(index, community)
        areas = self.areas(index, community, node_types)
        self.members(index, document.get("members") or {}, areas)

    def topology(self, index: int, community: dict[str, Any]) -> dict[str, str]:
        nodes = community.get("topology") or []
        node_types: dict[str, str] = {}
        for position, node in enumerate(nodes):
            if node["id"] in node_types:
                self.add(index, pointer("community", "topology", position, "id"),
                         "duplicate_key", f"topology node {node['id']!r} appears twice")
            else:
                node_types[node["id"]] = node["type"]
        operators = community.get("operators") or {}
        for position, node in enumerate(nodes):
            parent = node.get("parent")
            if parent is not None and parent not in node_types:
                self.add(index, pointer("community", "topology", position, "parent"),
                         "unknown_parent", f"the parent {parent!r} is no node of the topology")
            operator = node.get("operator_id")
            if operator is not None and operator not in operators:
                self.add(index, pointer("community", "topology", position, "operator_id"),
                         "unknown_operator",
                         f"the operator {operator!r} is not a key of community.operators")
        return node_types

    def areas(self, index: int, community: dict[str, Any],
              node_types: dict[str, str]) -> set[str]:
        boundaries: dict[str, str] = {}
        for key, area in community["areas"].items():
            self.reserved(index, ("community", "areas", key), key, "area")
            boundary = area["boundary"]["id"]
            if area["topology"] != [boundary]:
                self.add(index, pointer("community", "areas", key, "topology"), "area_topology",
                         f"the topology of an area must be exactly [boundary.id]: "
                         f"[{boundary!r}]")
            elif node_types.get(boundary) != "primary_substation":
                self.add(index, pointer("community", "areas", key, "boundary", "id"),
                         "area_topology",
                         f"{boundary!r} is not a primary_substation node of community.topology")
            if boundary in boundaries:
                self.add(index, pointer("community", "areas", key, "boundary", "id"),
                         "duplicate_boundary",
                         f"area {boundaries[boundary]!r} has the same boundary {boundary!r}")
            else:
                boundaries[boundary] = key
        return set(community["areas"])

    def members(self, index: int, members: dict[str, Any], areas: set[str]) -> None:
        user_ids: dict[str, str] = {}
        asset_keys: dict[str, str] = {}
        points: dict[str, str] = {}
        for key, member in members.items():
            here = ("members", key)
            self.reserved(index, here, key, "member")
            if BUNDLE_SHAPE_KEY in member:
                self.add(index, pointer(*here, BUNDLE_SHAPE_KEY), "invalid_key",
                         f"{BUNDLE_SHAPE_KEY!r} is reserved for the registry")
            if member["area"] not in areas:
                self.add(index, pointer(*here, "area"), "unknown_area",
                         f"the area {member['area']!r} is not a key of community.areas")
            user_id = member["user_id"]
            if user_id in user_ids:
                self.add(index, pointer(*here, "user_id"), "duplicate_key",
                         f"member {user_ids[user_id]!r} has the same user_id {user_id!r}")
            else:
                user_ids[user_id] = key
            did = member.get("did")
            if did is not None:
                self.unique(self.dids, did, index, (*here, "did"), "DID")
            own_points = self.points(index, key, member, points)
            self.assets(index, key, member, asset_keys, own_points)

    def reserved(self, index: int, path: tuple[Any, ...], key: str, what: str) -> None:
        if key in RESERVED_KEYS:
            self.add(index, pointer(*path), "reserved_key",
                     f"the {what} key {key!r} is a word of the API's paths")

    def unique(self, seen: dict[str, tuple[int, tuple[Any, ...]]], value: str, index: int,
               path: tuple[Any, ...], what: str) -> None:
        if value in seen:
            document, first = seen[value]
            self.add(index, pointer(*path), "duplicate_key",
                     f"the {what} {value!r} is already at {pointer(*first)} in document "
                     f"{document}")
        else:
            seen[value] = (index, path)

    def points(self, index: int, member_key: str, member: dict[str, Any],
               points: dict[str, str]) -> set[str]:
        own: set[str] = set()
        for position, point in enumerate(member.get("delivery_points") or []):
            point_id = point["id"]
            path = ("members", member_key, "delivery_points", position, "id")
            self.reserved(index, path, point_id, "delivery point")
            if point_id in points:
                self.add(index, pointer(*path), "duplicate_key",
                         f"delivery point {point_id!r} is already held by member "
                         f"{points[point_id]!r}")
                continue
            points[point_id] = member_key
            self.unique(self.delivery_points, point_id, index, path, "delivery point")
            own.add(point_id)
        return own

    def assets(self, index: int, member_key: str, member: dict[str, Any],
               asset_keys: dict[str, str], own_points: set[str]) -> None:
        for asset_type, key, properties in assets_of(member):
            here = ("members", member_key, "assets", asset_type, key)
            self.reserved(index, here, key, "asset")
            if asset_type not in KNOWN_ASSET_TYPES and not KEY_PATTERN.fullmatch(key):
                self.add(index, pointer(*here), "invalid_key",
                         f"the asset key {key!r} does not match {KEY_PATTERN.pattern}")
            if key in asset_keys:
                self.add(index, pointer(*here), "duplicate_key",
                         f"the asset key {key!r} is already used by member {asset_keys[key]!r}")
            else:
                asset_keys[key] = member_key
            sensor = properties.get("sensor_id")
            if isinstance(sensor, str):
                if not SENSOR_ID_PATTERN.fullmatch(sensor):
                    self.add(index, pointer(*here, "sensor_id"), "invalid_sensor_id",
                             f"the sensor id {sensor[:40]!r} does not match "
                             f"{SENSOR_ID_PATTERN.pattern}")
                self.unique(self.sensors, sensor, index, (*here, "sensor_id"), "sensor")
            pod = properties.get("pod")
            if asset_type == "meter" and isinstance(pod, str) and pod not in own_points:
                self.add(index, pointer(*here, "pod"), "unknown_pod",
                         f"the pod {pod!r} is no delivery point of member {member_key!r}")


def invariant_refusals(documents: dict[int, dict[str, Any]], refusals: Refusals) -> None:
    """Add the in-request invariant refusals of schema-valid documents, by request index."""
    invariants = _Invariants(refusals)
    for index, document in documents.items():
        invariants.document(index, document)


def check_invariants(documents: list[dict[str, Any]]) -> list[Refusal]:
    """The registry invariants the (schema-valid) documents break among themselves."""
    refusals = Refusals()
    invariant_refusals(dict(enumerate(documents)), refusals)
    return refusals.items


# --------------------------------------------------------------------- registry


def registry_refusals(session: Session, documents: dict[int, dict[str, Any]],
                      refusals: Refusals) -> None:
    """Add refusals for sensors, delivery points and DIDs that other communities hold.

    The communities of the request are replaced, so what they hold now does not count.
    """
    replaced = {document["community"]["id"] for document in documents.values()}
    # (value, document index, path): pointers are only built for the few refused.
    sensors: list[tuple[str, int, tuple[Any, ...]]] = []
    points: list[tuple[str, int, tuple[Any, ...]]] = []
    dids: list[tuple[str, int, tuple[Any, ...]]] = []
    for index, document in documents.items():
        for member_key, member in (document.get("members") or {}).items():
            if member.get("did") is not None:
                dids.append((member["did"], index, ("members", member_key, "did")))
            for position, point in enumerate(member.get("delivery_points") or []):
                points.append((point["id"], index,
                               ("members", member_key, "delivery_points", position, "id")))
            for asset_type, key, properties in assets_of(member):
                sensor = properties.get("sensor_id")
                if isinstance(sensor, str):
                    sensors.append((sensor, index,
                                    ("members", member_key, "assets", asset_type, key,
                                     "sensor_id")))
    replaced_ids = set(graph_store.community_ids_by_key(session, keys=replaced).values())
    checks: tuple[tuple[list[tuple[str, int, tuple[Any, ...]]],
                        Callable[[list[str]], set[str]], str, str], ...] = (
        (sensors, lambda values: claims.held_sensors(
            session, sensor_ids=values, excluding_community_ids=replaced_ids),
         "sensor_held", "the sensor {!r} is not available"),
        (points, lambda values: claims.held_delivery_points(
            session, dp_ids=values, excluding_community_ids=replaced_ids),
         "delivery_point_held",
         "the delivery point {!r} is not available"),
        (dids, lambda values: graph_store.find_taken_dids(
            session, dids=values, exclude_community_keys=replaced),
         "did_taken", "the DID {!r} is not available"),
    )
    for items, find, code, message in checks:
        if not items:
            continue
        held = find([value for value, _, _ in items])
        for value, index, path in items:
            if value in held and not refusals.add(index, pointer(*path), code,
                                                  message.format(value)):
                return


def collect_refusals(
    session: Session, documents: list[dict[str, Any]], *,
    allowed_community_keys: set[str] | None = None,
) -> list[Refusal]:
    """Every refusal of a request: schema, access, invariants, then what the registry holds."""
    refusals = Refusals()
    refused = schema_refusals(documents, refusals)
    valid = {index: document for index, document in enumerate(documents)
             if index not in refused}
    if allowed_community_keys is not None:
        for index, document in list(valid.items()):
            key = document["community"]["id"]
            if key not in allowed_community_keys:
                refusals.add(index, "/community/id", "forbidden_community",
                             f"you may not import community {key!r}")
                del valid[index]
    invariant_refusals(valid, refusals)
    if valid:
        registry_refusals(session, valid, refusals)
    return refusals.items
