"""Bulk community graphs in storage: write, read back in order, delete, cross-community lookups."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from storage import graph
from storage.errors import Conflict
from storage.graph import CommunityGraph
from storage.models import Community


def small_graph(key: str, *, sensors: tuple[str, ...] = ("s-1",), status: str = "active",
                did: str | None = None, point: str = "P-1") -> CommunityGraph:
    community = {"key": key, "name": f"Community {key}", "description": None, "legal": None,
                 "links": None, "contact": None, "settings": {"currency": "EUR"},
                 "operators": None, "extra": {"x": 1}, "envelope": {"version": "1.0"}}
    members = [
        {"key": "zed", "user_id": f"zed@{key}", "name": "Zed", "type": None, "role": "consumer",
         "area": "north", "status": status, "did": did, "extra": {}, "position": 0},
        {"key": "amy", "user_id": f"amy@{key}", "name": "Amy", "type": "schema:Person",
         "role": "prosumer", "area": "north", "status": "active", "did": None,
         "extra": {"x_note": "kept"}, "position": 1},
    ]
    assets = [{"member_key": "zed", "key": f"m-{index}", "asset_type": "meter",
               "name": f"Meter {index}", "sensor_id": sensor, "meter_type": "production",
               "pod": point, "properties": {"name": f"Meter {index}", "sensor_id": sensor},
               "position": index} for index, sensor in enumerate(sensors)]
    return CommunityGraph(
        community=community,
        topology_nodes=[{"node_id": "AC-1", "type": "primary_substation", "name": None,
                         "parent": None, "operator_id": None, "extra": {}, "position": 0}],
        areas=[{"key": "north", "name": "North", "boundary_source": "gse_cabine_primarie",
                "boundary_id": "AC-1", "topology": ["AC-1"], "extra": {}, "position": 0}],
        members=members,
        delivery_points=[{"member_key": "zed", "dp_id": point, "type": "pod",
                          "description": None, "address": None, "tariff": None, "active": True,
                          "extra": {}, "position": 0}],
        assets=assets,
    )


def write(session: Session, community: CommunityGraph, community_id: int | None = None) -> int:
    written = graph.write_community_graph(session, graph=community, community_id=community_id)
    session.commit()
    return written


def test_a_written_graph_reads_back_in_bundle_order(session):
    community_id = write(session, small_graph("one", sensors=("s-1", "s-2")))

    stored = graph.read_community_graph(session, community_id=community_id)

    assert stored.community == small_graph("one").community
    assert [member["key"] for member in stored.members] == ["zed", "amy"]
    assert stored.members[1]["extra"] == {"x_note": "kept"}
    assert [asset["key"] for asset in stored.assets] == ["m-0", "m-1"]
    assert stored.assets[0]["member_key"] == "zed"
    assert stored.delivery_points[0]["member_key"] == "zed"
    assert stored.counts() == {"areas": 1, "topology_nodes": 1, "members": 2,
                               "delivery_points": 1, "assets": 2}
    assert graph.count_community_graph(session, community_id=community_id) == stored.counts()


def test_deleting_a_graph_keeps_the_community_row_and_says_what_went(session):
    community_id = write(session, small_graph("one", sensors=("s-1", "s-2")))

    deleted = graph.delete_community_graph(session, community_id=community_id)
    session.commit()

    assert deleted == {"areas": 1, "topology_nodes": 1, "members": 2, "delivery_points": 1,
                       "assets": 2}
    assert graph.count_community_graph(session, community_id=community_id) == {
        "areas": 0, "topology_nodes": 0, "members": 0, "delivery_points": 0, "assets": 0}
    assert graph.community_ids_by_key(session, keys=["one"]) == {"one": community_id}


def test_rewriting_a_community_updates_its_row_in_place(session):
    community_id = write(session, small_graph("one"))
    graph.delete_community_graph(session, community_id=community_id)
    changed = small_graph("one")
    changed.community["name"] = "Renamed"

    assert write(session, changed, community_id) == community_id
    assert session.execute(select(Community.name)).scalar_one() == "Renamed"


def test_a_key_taken_meanwhile_is_a_conflict(session):
    write(session, small_graph("one"))

    with pytest.raises(Conflict) as caught:
        graph.write_community_graph(session, graph=small_graph("one"), community_id=None)

    assert caught.value.code == "import_conflict"
    session.rollback()


def test_communities_are_listed_by_key(session):
    for key in ("gamma", "alpha", "beta"):
        write(session, small_graph(key, sensors=(f"s-{key}",), point=f"P-{key}"))

    assert graph.all_community_keys(session) == ["alpha", "beta", "gamma"]
    assert set(graph.community_ids_by_key(session, keys=["beta", "nope"])) == {"beta"}


def test_a_did_is_taken_whatever_its_member_status(session):
    write(session, small_graph("one", status="inactive", did="did:web:x"))

    assert graph.find_taken_dids(session, dids=["did:web:x", "did:web:y"],
                                 exclude_community_keys=[]) == {"did:web:x"}
    assert graph.find_taken_dids(session, dids=["did:web:x"],
                                 exclude_community_keys=["one"]) == set()
