"""Bundle export: deterministic bytes, order, absent optionals omitted, YAML that reads back."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from bundles.exporter import dump_documents, export_communities, export_community_document
from bundles.importer import import_bundles
from bundles.parse import parse_yaml_documents
from storage.errors import NotFound
from storage.graph import CommunityGraph, write_community_graph
from storage.models import Asset, Community
from tests.conftest import REFERENCE_BUNDLES_DIR
from tests.factories import community_doc


def reference_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml")):
        documents.extend(parse_yaml_documents(path.read_bytes()))
    return documents


@pytest.fixture
def registry(session):
    """The session, with the reference bundles imported and committed."""
    import_bundles(session, list(reversed(reference_documents())), dry_run=False, force=False)
    session.commit()
    return session


def test_the_same_registry_always_exports_the_same_bytes(registry):
    first = export_communities(registry, community_keys=None)

    assert export_communities(registry, community_keys=None) == first
    registry.expire_all()
    assert export_communities(registry, community_keys=None) == first


def test_all_communities_come_in_key_order_and_chosen_ones_in_the_order_asked(registry):
    every = parse_yaml_documents(export_communities(registry, community_keys=None).encode())
    chosen = parse_yaml_documents(
        export_communities(registry, community_keys=["valle-verde", "borgo-sole"]).encode())

    assert [document["community"]["id"] for document in every] == [
        "borgo-sole", "isola-vento", "valle-verde"]
    assert [document["community"]["id"] for document in chosen] == [
        "valle-verde", "borgo-sole"]


def test_an_unknown_community_is_not_found_and_named(registry):
    with pytest.raises(NotFound) as caught:
        export_communities(registry, community_keys=["valle-verde", "atlantis"])

    assert caught.value.code == "community_not_found"
    assert "atlantis" in caught.value.detail


def test_an_empty_registry_exports_nothing(session):
    assert export_communities(session, community_keys=None) == ""


def test_documents_are_separated_and_any_yaml_loader_reads_them(registry):
    text = export_communities(registry, community_keys=None)
    ids = registry.execute(select(Community.id).order_by(Community.key)).scalars().all()

    assert text.count("\n---\n") == 2
    assert list(yaml.safe_load_all(text)) == [
        export_community_document(registry, community_id=community_id) for community_id in ids]


def test_a_document_has_envelope_community_then_members_in_schema_order(registry):
    community_id = registry.execute(
        select(Community.id).where(Community.key == "valle-verde")).scalar_one()

    document = export_community_document(registry, community_id=community_id)

    assert list(document) == ["version", "schema_version", "metadata", "community", "members"]
    assert list(document["community"]) == [
        "id", "name", "description", "legal", "links", "contact", "settings", "operators",
        "areas", "topology"]
    assert list(document["members"]["presidente"]) == [
        "user_id", "did", "name", "type", "role", "area", "status"]
    assert list(document["members"]) == ["comune", "rossi", "bianchi", "verdi", "caseificio",
                                         "neri", "gestore", "presidente"]


def test_absent_optional_properties_are_omitted_not_null(registry):
    text = export_communities(registry, community_keys=["borgo-sole"])

    assert "null" not in text
    esposito = parse_yaml_documents(text.encode())[0]["members"]["esposito"]
    assert "type" not in esposito and "did" not in esposito


def test_a_column_changed_after_import_wins_over_the_imported_properties(registry):
    registry.execute(update(Asset).where(Asset.key == "m-rossi").values(name="Nuovo nome"))
    registry.commit()

    document = parse_yaml_documents(
        export_communities(registry, community_keys=["valle-verde"]).encode())[0]

    assert document["members"]["rossi"]["assets"]["meter"]["m-rossi"]["name"] == "Nuovo nome"


TRICKY_STRINGS = [
    "", " ", "  lead", "trail ", "yes", "No", "on", "OFF", "null", "~", "true", "123", "-5",
    "0x1F", "0o17", "012", "1_000", "1:30", "6.0", ".5", "1e3", "1.5e3", "2024-05-10",
    "2024-05-10T10:00:00Z", "<<", "=", "- a", "-a", "a: b", "a:b", "a #b", "#x", "x#", "@x",
    "`x", "!x", "&x", "*x", "|", ">", "%x", "{x}", "[x]", ",x", "?", "? x", "'q'", '"q"',
    "line\nbreak", "tab\there", "trailing:", "back\\slash", "Comunità", "Élan", "emoji 😀",
    "nel\x85x", "ls\u2028x", "del\x7fx", "bom\ufeffx", "bell\x07", "https://x.example/a?b=c#d",
    "schema:Person", "mario.rossi@example.org", "Via Roma 1, 38100 Trento TN", "l'acqua",
    "x" * 2000,
]


def test_every_string_reads_back_as_written():
    data = {"strings": TRICKY_STRINGS, **{value: value for value in TRICKY_STRINGS}}

    text = dump_documents([data])

    assert yaml.safe_load(text) == data
    assert parse_yaml_documents(text.encode()) == [data]


def test_every_json_value_reads_back_as_written():
    data = {"int": 7, "negative": -3, "big": 10**30, "float": 6.0, "small": 1e-05,
            "large": 1e+20, "true": True, "false": False, "none": None, "empty_map": {},
            "empty_list": [], "nested": [[1, [2, {}]], {"a": [{"b": None}, []]}, [{"c": 1}]],
            "list_of_maps": [{"a": 1, "b": {"c": [1, 2]}}, {}]}

    text = dump_documents([data, {"second": 1}])

    assert list(yaml.safe_load_all(text)) == [data, {"second": 1}]
    assert parse_yaml_documents(text.encode()) == [data, {"second": 1}]


def test_a_long_key_is_written_as_an_explicit_key():
    data = {"k" * 1500: {"a": 1}, "short": [{"l" * 1200: "v", "x": 1}]}

    assert yaml.safe_load(dump_documents([data])) == data


def test_exported_text_is_readable_block_yaml(registry):
    text = export_communities(registry, community_keys=["borgo-sole"])

    assert text.startswith('version: "1.0"\nschema_version: "0.7"\ncommunity:\n  id: borgo-sole\n')
    assert "    user_id: parroco@borgo.example.org\n" in text


def test_a_small_generated_community_exports_what_was_imported(session):
    document = community_doc("small")
    import_bundles(session, [document], dry_run=False, force=False)
    session.commit()

    [exported] = parse_yaml_documents(
        export_communities(session, community_keys=["small"]).encode())

    for point in document["members"]["alice"]["delivery_points"]:
        point.setdefault("active", True)
    assert exported == document


def test_a_community_written_without_a_bundle_exports_as_a_valid_bundle(session):
    write_community_graph(session, community_id=None, graph=CommunityGraph(
        community={"key": "api-made", "name": "Made by the API", "extra": {}, "envelope": {}},
        areas=[{"key": "a", "name": "A", "boundary_source": "gse_cabine_primarie",
                "boundary_id": "AC-1", "topology": ["AC-1"], "extra": {}, "position": 0}],
        topology_nodes=[{"node_id": "AC-1", "type": "primary_substation", "name": None,
                         "parent": None, "operator_id": None, "extra": {}, "position": 0}]))
    session.commit()

    [document] = parse_yaml_documents(
        export_communities(session, community_keys=["api-made"]).encode())

    assert document["version"] == "1.0" and document["schema_version"] == "0.7"
    assert document["members"] == {}
    report = import_bundles(session, [document], dry_run=True, force=False)
    assert report["reports"][0]["changes"]["areas"] == {
        "added": 0, "removed": 0, "changed": 0}
