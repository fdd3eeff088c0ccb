"""Bundle import on every backend: reports, refusals, 409 and force, dry runs, atomicity."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from bundles import importer
from bundles.errors import BundleRefused, CommunityExists
from bundles.exporter import export_communities
from bundles.importer import import_bundles
from bundles.parse import parse_yaml_documents
from storage.errors import Conflict
from storage.models import Asset, Community, DeliveryPoint, Member
from tests.conftest import REFERENCE_BUNDLES_DIR
from tests.factories import community_doc, member_doc


def reference_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml")):
        documents.extend(parse_yaml_documents(path.read_bytes()))
    return documents


def valle_verde() -> dict[str, Any]:
    return parse_yaml_documents((REFERENCE_BUNDLES_DIR / "valle-verde.yaml").read_bytes())[0]


def imported(session: Session, documents: list[dict[str, Any]], **options: Any) -> Any:
    report = import_bundles(session, documents, dry_run=options.pop("dry_run", False),
                            force=options.pop("force", False), **options)
    session.commit()
    return report


def snapshot(session: Session) -> str:
    return export_communities(session, community_keys=None)


def count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def refusals_of(session: Session, documents: list[dict[str, Any]], **options: Any) -> list[Any]:
    with pytest.raises(BundleRefused) as caught:
        import_bundles(session, documents, dry_run=options.pop("dry_run", False),
                       force=options.pop("force", False), **options)
    assert not session.new and not session.dirty and not session.deleted
    return [(refusal.document, refusal.code, refusal.pointer)
            for refusal in caught.value.refusals]


def test_the_reference_bundles_import_and_the_report_counts_what_was_written(session):
    report = imported(session, reference_documents())

    assert report["dry_run"] is False
    assert [item["community_key"] for item in report["reports"]] == [
        "borgo-sole", "isola-vento", "valle-verde"]
    valle = report["reports"][2]
    assert valle["action"] == "created"
    assert valle["inserted"] == {"areas": 2, "topology_nodes": 4, "members": 8,
                                 "delivery_points": 7, "assets": 16}
    assert valle["deleted"] == {"areas": 0, "topology_nodes": 0, "members": 0,
                                "delivery_points": 0, "assets": 0}
    assert valle["changes"]["members"] == {"added": 8, "removed": 0, "changed": 0}
    assert valle["warnings"] == []
    assert count(session, Community) == 3
    assert count(session, Member) == 11
    meter = session.execute(select(Asset).where(Asset.sensor_id == "sens-0010")).scalar_one()
    assert (meter.key, meter.asset_type, meter.name, meter.meter_type, meter.pod) == (
        "m-rossi", "meter", "Contatore Rossi", "bidirectional", "IT001E00000010")
    assert meter.properties["device"]["model"] == "Pro 3EM"
    point = session.execute(
        select(DeliveryPoint).where(DeliveryPoint.dp_id == "IT001E00000010")).scalar_one()
    assert point.active is True and point.address == "Via dei Larici 4"


def test_an_existing_community_is_not_replaced_without_force(session):
    imported(session, [valle_verde()])
    before = snapshot(session)
    changed = valle_verde()
    changed["community"]["name"] = "Renamed"

    with pytest.raises(CommunityExists) as caught:
        import_bundles(session, [community_doc("fresh"), changed], dry_run=False, force=False)

    assert caught.value.code == "community_exists"
    assert caught.value.community_keys == ["valle-verde"]
    session.rollback()
    assert snapshot(session) == before
    assert count(session, Community) == 1


def test_force_replaces_the_community_and_reports_what_changed(session):
    imported(session, [valle_verde()])
    community_id = session.execute(select(Community.id)).scalar_one()
    changed = valle_verde()
    del changed["members"]["neri"]
    changed["members"]["rossi"]["name"] = "Mario Rossi Jr"
    changed["members"]["nuovo"] = member_doc("nuovo", area="sud", sensors=("sens-9999",))
    changed["members"]["bianchi"]["assets"]["pv"] = {"pv-bianchi": {"name": "FV Bianchi"}}

    report = imported(session, [changed], force=True)

    [community] = report["reports"]
    assert community["action"] == "replaced"
    assert community["deleted"]["members"] == 8
    assert community["inserted"]["members"] == 8
    assert community["changes"]["members"] == {"added": 1, "removed": 1, "changed": 1}
    assert community["changes"]["assets"] == {"added": 2, "removed": 1, "changed": 0}
    assert community["changes"]["delivery_points"] == {"added": 1, "removed": 1, "changed": 0}
    assert community["changes"]["areas"] == {"added": 0, "removed": 0, "changed": 0}
    # The community row is kept: its id (and anything referring to it) survives a replace.
    assert session.execute(select(Community.id)).scalar_one() == community_id
    names = set(session.execute(select(Member.name)).scalars())
    assert "Mario Rossi Jr" in names and "Paolo Neri" not in names


def test_a_dry_run_is_never_blocked_and_writes_nothing(session):
    imported(session, [valle_verde()])
    before = snapshot(session)
    changed = valle_verde()
    changed["members"]["rossi"]["status"] = "inactive"

    report = imported(session, [changed, community_doc("fresh")], dry_run=True)

    assert report["dry_run"] is True
    assert [(item["community_key"], item["action"], item["dry_run"])
            for item in report["reports"]] == [("valle-verde", "replaced", True),
                                                   ("fresh", "created", True)]
    assert report["reports"][0]["changes"]["members"] == {
        "added": 0, "removed": 0, "changed": 1}
    assert report["reports"][1]["inserted"]["members"] == 1
    assert snapshot(session) == before
    assert count(session, Community) == 1


def test_a_refused_third_document_leaves_the_registry_exactly_as_it_was(session):
    imported(session, reference_documents())
    before = snapshot(session)
    first, second = copy.deepcopy(reference_documents()[:2])
    third = valle_verde()
    third["members"]["rossi"]["area"] = "est"

    assert refusals_of(session, [first, second, third], force=True) == [
        (2, "unknown_area", "/members/rossi/area")]
    session.rollback()
    assert snapshot(session) == before


def test_a_failure_while_writing_rolls_back_to_the_registry_as_it_was(session, monkeypatch):
    imported(session, reference_documents())
    before = snapshot(session)
    write = importer.graph_store.write_community_graph
    calls = []

    def failing_write(*args: Any, **kwargs: Any) -> int:
        calls.append(kwargs["graph"].community["key"])
        if len(calls) == 2:
            raise Conflict("simulated", code="import_conflict")
        return write(*args, **kwargs)

    monkeypatch.setattr(importer.graph_store, "write_community_graph", failing_write)
    documents = reference_documents()
    documents[0]["members"] = {}
    documents[1]["members"] = {}  # changed: an unchanged community is not rewritten

    with pytest.raises(Conflict):
        import_bundles(session, documents, dry_run=False, force=True)
    session.rollback()

    assert calls == ["borgo-sole", "isola-vento"]
    assert snapshot(session) == before


def test_refusals_of_every_document_are_collected_before_anything_is_written(session):
    first = community_doc("one")
    first["members"]["alice"]["role"] = "boss"
    second = community_doc("two")
    second["community"]["areas"]["north"]["topology"] = ["elsewhere"]

    assert refusals_of(session, [first, second]) == [
        (0, "invalid_role", "/members/alice/role"),
        (1, "area_topology", "/community/areas/north/topology"),
    ]
    assert count(session, Community) == 0


def test_a_caller_may_be_limited_to_some_communities(session):
    documents = [community_doc("mine"), community_doc("theirs")]

    assert refusals_of(session, documents, allowed_community_keys={"mine"}) == [
        (1, "forbidden_community", "/community/id")]
    report = imported(session, documents[:1], allowed_community_keys={"mine"})
    assert report["reports"][0]["action"] == "created"


def test_a_sensor_an_active_member_of_another_community_holds_is_refused(session):
    imported(session, [valle_verde()])
    other = community_doc("other", {"x": member_doc("x", sensors=("sens-0010",))})

    assert refusals_of(session, [other]) == [
        (0, "sensor_held", "/members/x/assets/meter/m-x-0/sensor_id")]


@pytest.mark.parametrize("status", ["active", "pending", "suspended"])
def test_a_sensor_a_member_of_any_status_carries_elsewhere_is_refused(session, status):
    # Paolo Neri is suspended: his meter's sensor stays valle-verde's (readings are kept per
    # community; another community claiming it would reach his meter's series).
    imported(session, [valle_verde()])
    other = community_doc("other", {"x": member_doc("x", status=status,
                                                    sensors=("sens-0022", "x-own"))})

    assert refusals_of(session, [other]) == [
        (0, "sensor_held", "/members/x/assets/meter/m-x-0/sensor_id")]


def test_a_sensor_claimed_first_by_a_pending_member_keeps_it_from_another_community(
        session):
    """The race the other way: b claims the id (on a member not yet active) before a attaches
    its meter; a is refused, so b's readings can never be a's."""
    imported(session, [community_doc("b", {
        "pending": member_doc("pending", status="pending", sensors=("meter-of-a",))})])
    a = community_doc("a", {"alice": member_doc("alice", sensors=("meter-of-a", "a-s2"))})

    assert refusals_of(session, [a]) == [
        (0, "sensor_held", "/members/alice/assets/meter/m-alice-0/sensor_id")]


def test_replacing_a_community_releases_its_own_sensors_points_and_dids(session):
    imported(session, [valle_verde()])
    moved = valle_verde()
    moved["members"]["rossi2"] = moved["members"].pop("rossi")
    moved["members"]["rossi2"]["did"] = moved["members"]["presidente"].pop("did")

    report = imported(session, [moved], force=True)

    assert report["reports"][0]["changes"]["members"] == {
        "added": 1, "removed": 1, "changed": 1}


def test_sensors_and_points_can_move_between_two_communities_replaced_together(session):
    one = community_doc("one", {"a": member_doc("a", sensors=("s-1",), pods=("P-1",))})
    two = community_doc("two", {"b": member_doc("b", sensors=("s-2",), pods=("P-2",))})
    one["members"]["a"]["did"] = "did:web:a"
    imported(session, [one, two])
    one_swapped = community_doc("one", {"a": member_doc("a", sensors=("s-2",), pods=("P-2",))})
    two_swapped = community_doc("two", {"b": member_doc("b", sensors=("s-1",), pods=("P-1",))})
    two_swapped["members"]["b"]["did"] = "did:web:a"

    imported(session, [one_swapped, two_swapped], force=True)

    holders = dict(session.execute(
        select(Asset.sensor_id, Community.key).join(Community)).all())
    assert holders == {"s-1": "two", "s-2": "one"}


def test_a_delivery_point_or_did_of_another_community_is_refused(session):
    imported(session, [valle_verde()])
    other = community_doc("other", {"x": member_doc("x", pods=("IT001E00000010",))})
    other["members"]["x"]["did"] = "did:web:valleverde.example.org:anna"

    assert refusals_of(session, [other]) == [
        (0, "delivery_point_held", "/members/x/delivery_points/0/id"),
        (0, "did_taken", "/members/x/did"),
    ]


def test_a_did_held_by_an_inactive_member_of_another_community_is_still_taken(session):
    imported(session, [valle_verde()])
    changed = valle_verde()
    changed["members"]["presidente"]["status"] = "inactive"
    imported(session, [changed], force=True)
    other = community_doc("other", {"x": member_doc("x")})
    other["members"]["x"]["did"] = "did:web:valleverde.example.org:anna"

    assert refusals_of(session, [other]) == [(0, "did_taken", "/members/x/did")]


def test_unknown_asset_types_are_kept_and_reported(session):
    document = community_doc("one", {"a": member_doc("a", sensors=("s-1",), extra_assets={
        "wind": {"turbine-1": {"name": "Turbine", "hub_height_m": 30}},
        "notes": ["not", "assets"],
    })})

    report = imported(session, [document])

    assert report["reports"][0]["warnings"] == [
        "member 'a': unknown asset type 'wind', stored as assets",
        "member 'a': unknown asset type 'notes', kept as given",
    ]
    turbine = session.execute(select(Asset).where(Asset.key == "turbine-1")).scalar_one()
    assert (turbine.asset_type, turbine.name, turbine.properties["hub_height_m"]) == (
        "wind", "Turbine", 30)
    exported = parse_yaml_documents(snapshot(session).encode())[0]
    assert exported["members"]["a"]["assets"] == document["members"]["a"]["assets"]


def test_a_dry_run_says_a_held_id_is_not_available_without_naming_who_holds_it(session):
    holder = valle_verde()
    imported(session, [holder])
    other = community_doc("other", {"x": member_doc("x", sensors=("sens-0010",),
                                                    pods=("IT001E00000010",))})
    other["members"]["x"]["did"] = "did:web:valleverde.example.org:anna"

    with pytest.raises(BundleRefused) as caught:
        import_bundles(session, [other], dry_run=True, force=False)

    refusals = caught.value.refusals
    assert [refusal.code for refusal in refusals] == [
        "sensor_held", "delivery_point_held", "did_taken"]
    revealing = {holder["community"]["id"], holder["community"]["name"], "another community",
                 *holder["members"], *(member["name"] for member in holder["members"].values())}
    for refusal in refusals:
        assert "is not available" in refusal.message
        assert not [word for word in revealing if word in refusal.message], refusal.message


def test_importing_what_is_stored_says_unchanged_and_rewrites_nothing(session):
    imported(session, reference_documents())
    member_ids = sorted(session.execute(select(Member.id)).scalars())
    zero = {"areas": 0, "topology_nodes": 0, "members": 0, "delivery_points": 0, "assets": 0}
    for dry_run in (True, False):
        report = imported(session, reference_documents(), dry_run=dry_run, force=True)
        for item in report["reports"]:
            assert (item["action"], item["deleted"], item["inserted"]) == (
                "unchanged", zero, zero)
    assert sorted(session.execute(select(Member.id)).scalars()) == member_ids  # not rewritten
    changed = valle_verde()
    changed["members"]["rossi"]["status"] = "suspended"
    report = imported(session, [changed], dry_run=True, force=True)
    assert report["reports"][0]["action"] == "replaced"
    assert report["reports"][0]["changes"]["members"]["changed"] == 1


def test_sensor_ids_must_be_key_like(session):
    """A sensor id that a spreadsheet would read as a formula is refused at import."""
    document = valle_verde()
    meters = next(member["assets"]["meter"] for member in document["members"].values()
                  if "meter" in member.get("assets", {}))
    meter = next(iter(meters.values()))
    meter["sensor_id"] = '=HYPERLINK("http://evil.example","click")'
    with pytest.raises(BundleRefused) as refused:
        imported(session, [document])
    assert [refusal.code for refusal in refused.value.refusals] == ["invalid_sensor_id"]


def test_every_sensor_id_of_the_reference_and_example_bundles_is_key_like():
    from storage.exportable import SENSOR_ID_PATTERN

    paths = [*REFERENCE_BUNDLES_DIR.glob("*.yaml"),
             *(Path(__file__).parents[2] / "bundles" / "examples").glob("*.yaml")]
    sensor_ids = [properties["sensor_id"] for path in paths
                  for document in parse_yaml_documents(path.read_bytes())
                  for member in document["members"].values()
                  for assets in (member.get("assets") or {}).values()
                  for properties in assets.values() if "sensor_id" in properties]
    assert len(paths) >= 4 and sensor_ids
    assert all(SENSOR_ID_PATTERN.fullmatch(sensor_id) for sensor_id in sensor_ids)
