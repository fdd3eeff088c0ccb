"""A community's whole graph in bulk: read, delete and insert it, and cross-community lookups.

Bundle import replaces a community wholesale and export reads it whole, so these functions work
on plain column dicts with SQLAlchemy Core (one executemany per table, one select per table)
rather than on ORM objects, which would cost tens of seconds for 10,000 members.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.errors import Conflict
from storage.models import Area, Asset, Community, DeliveryPoint, Member, TopologyNode, utc_now

# Member and community `extra` key the bundle layer keeps the shape of a bundle under when its
# rows can't say it (an unknown asset type that is not a map of assets, an empty list).
BUNDLE_SHAPE_KEY = "__bundle__"

# Enough below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
CHUNK = 500

_COMMUNITY: Table = Community.__table__  # type: ignore[attr-defined]
_NODE: Table = TopologyNode.__table__  # type: ignore[attr-defined]
_AREA: Table = Area.__table__  # type: ignore[attr-defined]
_MEMBER: Table = Member.__table__  # type: ignore[attr-defined]
_DP: Table = DeliveryPoint.__table__  # type: ignore[attr-defined]
_ASSET: Table = Asset.__table__  # type: ignore[attr-defined]

COMMUNITY_COLUMNS = ("key", "name", "description", "legal", "links", "contact", "settings",
                     "operators", "extra", "envelope")
NODE_COLUMNS = ("node_id", "type", "name", "parent", "operator_id", "extra", "position")
AREA_COLUMNS = ("key", "name", "boundary_source", "boundary_id", "topology", "extra", "position")
MEMBER_COLUMNS = ("key", "user_id", "name", "type", "role", "area", "status", "did", "extra",
                  "position")
DP_COLUMNS = ("dp_id", "type", "description", "address", "tariff", "active", "extra", "position")
ASSET_COLUMNS = ("key", "asset_type", "name", "sensor_id", "meter_type", "pod", "properties",
                 "position")


@dataclass
class CommunityGraph:
    """A community and everything it holds, as column dicts in bundle order.

    `community` has COMMUNITY_COLUMNS; each list holds dicts with that table's *_COLUMNS, and
    delivery points and assets also `member_key` (the key of the member holding them).
    """

    community: dict[str, Any]
    topology_nodes: list[dict[str, Any]] = field(default_factory=list)
    areas: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    delivery_points: list[dict[str, Any]] = field(default_factory=list)
    assets: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many rows of each kind the graph has."""
        return {"areas": len(self.areas), "topology_nodes": len(self.topology_nodes),
                "members": len(self.members), "delivery_points": len(self.delivery_points),
                "assets": len(self.assets)}


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


def _connection(session: Session) -> Connection:
    return session.connection()


def community_ids_by_key(session: Session, *, keys: Collection[str]) -> dict[str, int]:
    """The ids of the registered communities among `keys`, by key."""
    found: dict[str, int] = {}
    connection = _connection(session)
    for chunk in _chunks(keys):
        rows = connection.execute(
            select(_COMMUNITY.c.key, _COMMUNITY.c.id).where(_COMMUNITY.c.key.in_(chunk)))
        found.update({key: community_id for key, community_id in rows})
    return found


def all_community_keys(session: Session) -> list[str]:
    """The key of every registered community, in key order."""
    rows = _connection(session).execute(select(_COMMUNITY.c.key).order_by(_COMMUNITY.c.key))
    return [key for (key,) in rows]


def find_taken_dids(
    session: Session, *, dids: Collection[str], exclude_community_keys: Collection[str],
) -> set[str]:
    """Those of `dids` a member (any status) of a community not excluded already carries."""
    taken: set[str] = set()
    connection = _connection(session)
    excluded = set(community_ids_by_key(session, keys=exclude_community_keys).values())
    for chunk in _chunks(dids):
        statement = select(_MEMBER.c.did, _MEMBER.c.community_id).where(_MEMBER.c.did.in_(chunk))
        taken.update(value for value, community_id in connection.execute(statement)
                     if community_id not in excluded)
    return taken


def lock_communities(session: Session, *, community_ids: Collection[int]) -> None:
    """Hold the communities' rows until the transaction ends, so that concurrent imports of
    one community replace it one after the other (PostgreSQL; SQLite serialises writers)."""
    if community_ids:
        _connection(session).execute(
            select(_COMMUNITY.c.id).where(_COMMUNITY.c.id.in_(sorted(community_ids)))
            .order_by(_COMMUNITY.c.id).with_for_update()).all()


def count_community_graph(session: Session, *, community_id: int) -> dict[str, int]:
    """How many rows of each kind the community holds."""
    connection = _connection(session)
    counts: dict[str, int] = {}
    for name, table in (("areas", _AREA), ("topology_nodes", _NODE), ("members", _MEMBER),
                        ("delivery_points", _DP), ("assets", _ASSET)):
        statement = select(func.count()).select_from(table).where(
            table.c.community_id == community_id)
        counts[name] = int(connection.execute(statement).scalar_one())
    return counts


def delete_community_graph(session: Session, *, community_id: int) -> dict[str, int]:
    """Delete everything the community holds (not its own row); how many rows of each kind."""
    session.flush()
    connection = _connection(session)
    deleted: dict[str, int] = {}
    # Children first: SQLite may run without foreign keys, and this order needs no cascade.
    for name, table in (("assets", _ASSET), ("delivery_points", _DP), ("members", _MEMBER),
                        ("areas", _AREA), ("topology_nodes", _NODE)):
        result = connection.execute(delete(table).where(table.c.community_id == community_id))
        deleted[name] = int(result.rowcount)
    session.expire_all()
    return {name: deleted[name] for name in
            ("areas", "topology_nodes", "members", "delivery_points", "assets")}


def write_community_graph(
    session: Session, *, graph: CommunityGraph, community_id: int | None,
) -> int:
    """Insert the graph's rows; create the community row, or update it when `community_id`.

    The community must hold nothing else (see delete_community_graph). Raises Conflict
    (code import_conflict) when a concurrent write took a key first; the caller rolls back.
    """
    session.flush()
    connection = _connection(session)
    now = utc_now()
    values = {name: graph.community.get(name) for name in COMMUNITY_COLUMNS}
    values["extra"] = values["extra"] or {}
    values["envelope"] = values["envelope"] or {}
    try:
        if community_id is None:
            result = connection.execute(
                insert(_COMMUNITY).values(**values, created_at=now, updated_at=now))
            primary_key = result.inserted_primary_key
            assert primary_key is not None
            community_id = int(primary_key[0])
        else:
            connection.execute(update(_COMMUNITY).where(_COMMUNITY.c.id == community_id)
                               .values(**values, updated_at=now))
        _insert(connection, _NODE, [{**row, "community_id": community_id}
                                    for row in graph.topology_nodes])
        _insert(connection, _AREA, [{**row, "community_id": community_id} for row in graph.areas])
        _insert(connection, _MEMBER, [{**row, "community_id": community_id, "created_at": now,
                                       "updated_at": now} for row in graph.members])
        member_ids = _member_ids(connection, community_id)
        _insert(connection, _DP, _with_member_ids(graph.delivery_points, community_id, member_ids))
        _insert(connection, _ASSET, _with_member_ids(graph.assets, community_id, member_ids))
    except IntegrityError as error:
        raise Conflict(
            "the registry changed while the bundle was imported (a key, sensor or DID was "
            "taken meanwhile); nothing was written, retry the import",
            code="import_conflict",
        ) from error
    session.expire_all()
    return community_id


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(insert(table), rows)


def _member_ids(connection: Connection, community_id: int) -> dict[str, int]:
    rows = connection.execute(
        select(_MEMBER.c.key, _MEMBER.c.id).where(_MEMBER.c.community_id == community_id))
    return {key: member_id for key, member_id in rows}


def _with_member_ids(rows: list[dict[str, Any]], community_id: int,
                     member_ids: dict[str, int]) -> list[dict[str, Any]]:
    result = []
    for row in rows:
        values = {name: value for name, value in row.items() if name != "member_key"}
        values["community_id"] = community_id
        values["member_id"] = member_ids[row["member_key"]]
        result.append(values)
    return result


def read_community_graph(session: Session, *, community_id: int) -> CommunityGraph:
    """The community's graph, each table in one query, rows by position then key."""
    connection = _connection(session)
    row = connection.execute(
        select(*(_COMMUNITY.c[name] for name in COMMUNITY_COLUMNS))
        .where(_COMMUNITY.c.id == community_id)).one()
    graph = CommunityGraph(community=dict(row._mapping))
    graph.topology_nodes = _rows(connection, _NODE, NODE_COLUMNS, community_id, "node_id")
    graph.areas = _rows(connection, _AREA, AREA_COLUMNS, community_id, "key")
    graph.members = _rows(connection, _MEMBER, MEMBER_COLUMNS, community_id, "key")
    graph.delivery_points = _rows(connection, _DP, DP_COLUMNS, community_id, "dp_id",
                                  with_member=True)
    graph.assets = _rows(connection, _ASSET, ASSET_COLUMNS, community_id, "key",
                         with_member=True)
    return graph


def _rows(connection: Connection, table: Table, columns: tuple[str, ...], community_id: int,
          key: str, *, with_member: bool = False) -> list[dict[str, Any]]:
    selected = [table.c[name] for name in columns]
    statement = select(*selected)
    if with_member:
        statement = select(*selected, _MEMBER.c.key.label("member_key")).join(
            _MEMBER, _MEMBER.c.id == table.c.member_id)
    statement = statement.where(table.c.community_id == community_id).order_by(
        table.c.position, table.c[key], table.c.id)
    return [dict(row._mapping) for row in connection.execute(statement)]
