"""Import, export, re-import: the registry ends in the same state, unknown properties included."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from bundles.exporter import export_communities, export_community_document
from bundles.importer import import_bundles
from bundles.parse import parse_yaml_documents
from storage.models import Community
from tests.conftest import REFERENCE_BUNDLES_DIR

REFERENCE_FILES = sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))


def load(session: Session, documents: list[dict[str, Any]], *, force: bool = False) -> None:
    import_bundles(session, documents, dry_run=False, force=force)
    session.commit()
    session.expire_all()


def documents_by_key(session: Session) -> dict[str, dict[str, Any]]:
    rows = session.execute(select(Community.key, Community.id).order_by(Community.key)).all()
    return {key: export_community_document(session, community_id=community_id)
            for key, community_id in rows}


def with_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the registry holds it: a delivery point is active unless it says not."""
    result = copy.deepcopy(document)
    for member in result["members"].values():
        for point in member.get("delivery_points") or []:
            point.setdefault("active", True)
    return result


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda path: path.name)
def test_a_reference_bundle_survives_import_export_import(session, path: Path):
    original = parse_yaml_documents(path.read_bytes())
    load(session, original)
    first_text = export_communities(session, community_keys=None)
    first_state = documents_by_key(session)

    load(session, parse_yaml_documents(first_text.encode()), force=True)
    second_text = export_communities(session, community_keys=None)

    assert second_text == first_text
    assert documents_by_key(session) == first_state
    # And the export says what the bundle said, nothing lost, nothing made up.
    assert list(first_state.values()) == sorted(
        (with_defaults(document) for document in original),
        key=lambda document: document["community"]["id"])


def test_unknown_properties_come_back_where_they_were(session):
    document = parse_yaml_documents((REFERENCE_BUNDLES_DIR / "valle-verde.yaml").read_bytes())[0]
    assert document["community"]["settings"]["incentive_eur_per_mwh"] == 110
    document["x_source"] = {"system": "crm", "exported": "2026-10-15"}
    document["metadata"]["x_reviewed_by"] = "audit"
    document["community"]["x_founded"] = 2021
    document["community"]["areas"]["nord"]["population"] = 11916
    document["community"]["topology"][2]["x_capacity_kva"] = 630
    document["community"]["operators"]["edistribuzione"]["x_code"] = "ED"
    rossi = document["members"]["rossi"]
    rossi["x_joined"] = "2024-01-01"
    rossi["delivery_points"][0]["x_meter_reading"] = {"kwh": 1234.5}
    rossi["assets"]["pv"]["pv-rossi"]["x_warranty_years"] = 25
    rossi["assets"]["wind"] = {"micro-rossi": {"name": "Micro eolico", "rated_power": 1.5}}
    rossi["assets"]["x_note"] = "free text kept as given"
    document["members"]["gestore"]["assets"] = {}
    document["members"]["gestore"]["delivery_points"] = []

    load(session, [document])
    text = export_communities(session, community_keys=["valle-verde"])
    [exported] = parse_yaml_documents(text.encode())

    assert exported["community"]["settings"]["incentive_eur_per_mwh"] == 110
    assert exported["x_source"] == {"system": "crm", "exported": "2026-10-15"}
    assert exported["metadata"]["x_reviewed_by"] == "audit"
    assert exported["community"]["x_founded"] == 2021
    assert exported["community"]["areas"]["nord"]["population"] == 11916
    assert exported["community"]["topology"][2]["x_capacity_kva"] == 630
    assert exported["community"]["operators"]["edistribuzione"]["x_code"] == "ED"
    exported_rossi = exported["members"]["rossi"]
    assert exported_rossi["x_joined"] == "2024-01-01"
    assert exported_rossi["delivery_points"][0]["x_meter_reading"] == {"kwh": 1234.5}
    assert exported_rossi["assets"]["pv"]["pv-rossi"]["x_warranty_years"] == 25
    assert exported_rossi["assets"]["wind"] == {
        "micro-rossi": {"name": "Micro eolico", "rated_power": 1.5}}
    assert exported_rossi["assets"]["x_note"] == "free text kept as given"
    assert list(exported_rossi["assets"]) == ["pv", "storage", "meter", "wind", "x_note"]
    assert exported["members"]["gestore"]["assets"] == {}
    assert exported["members"]["gestore"]["delivery_points"] == []
    assert exported == with_defaults(document)

    load(session, [exported], force=True)
    assert export_communities(session, community_keys=["valle-verde"]) == text


def test_unquoted_dates_export_as_the_same_text(session):
    body = (REFERENCE_BUNDLES_DIR / "valle-verde.yaml").read_bytes().replace(
        b'installation_date: "2024-05-10"', b"installation_date: 2024-05-10")
    load(session, parse_yaml_documents(body))

    text = export_communities(session, community_keys=None)

    assert 'installation_date: "2024-05-10"' in text
    [exported] = parse_yaml_documents(text.encode())
    pv = exported["members"]["comune"]["assets"]["pv"]["pv-municipio"]
    assert pv["installation_date"] == "2024-05-10"


def test_the_examples_shipped_with_the_package_are_the_reference_bundles():
    examples = Path(__file__).resolve().parents[2] / "bundles" / "examples"

    assert sorted(path.name for path in examples.glob("*.yaml")) == [
        path.name for path in REFERENCE_FILES]
    for path in REFERENCE_FILES:
        assert (examples / path.name).read_bytes() == path.read_bytes()
