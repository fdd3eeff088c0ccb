"""Schema and invariant checks: which refusal, in which document, at which pointer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft7Validator

from bundles.errors import Refusal
from bundles.parse import parse_yaml_documents
from bundles.validate import (
    MAX_REFUSALS,
    bundle_schema,
    check_invariants,
    schema_validator,
    validate_documents,
)
from tests.conftest import REFERENCE_BUNDLES_DIR, REFERENCE_SCHEMA_PATH

REFERENCE_FILES = sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))


def reference_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in REFERENCE_FILES:
        documents.extend(parse_yaml_documents(path.read_bytes()))
    return documents


def valle_verde() -> dict[str, Any]:
    return parse_yaml_documents((REFERENCE_BUNDLES_DIR / "valle-verde.yaml").read_bytes())[0]


def codes(refusals: list[Refusal]) -> list[tuple[int, str, str]]:
    return [(refusal.document, refusal.code, refusal.pointer) for refusal in refusals]


# ------------------------------------------------------------------------------- schema


def test_the_reference_bundles_are_valid():
    documents = reference_documents()

    assert validate_documents(documents) == []
    assert check_invariants(documents) == []


def test_our_schema_only_tightens_the_v07_schema():
    reference = Draft7Validator(json.loads(REFERENCE_SCHEMA_PATH.read_text(encoding="utf-8")))
    ours = bundle_schema()

    assert ours["definitions"].keys() == reference.schema["definitions"].keys()
    for document in reference_documents():
        assert reference.is_valid(document)
    # What ours refuses that v0.7 accepts: keys and overlong identifiers only.
    document = valle_verde()
    document["members"]["bad key"] = document["members"].pop("rossi")
    assert reference.is_valid(document)
    assert codes(validate_documents([document])) == [(0, "invalid_key", "/members/bad key")]


def test_a_missing_property_is_pointed_at():
    document = valle_verde()
    del document["members"]["rossi"]["user_id"]

    [refusal] = validate_documents([document])

    assert (refusal.code, refusal.pointer) == ("schema_required", "/members/rossi/user_id")
    assert "user_id" in refusal.message


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["members"]["rossi"]["assets"]["meter"]["m-rossi"].update(meter_type="both"),
     ("schema_enum", "/members/rossi/assets/meter/m-rossi/meter_type")),
    (lambda d: d["members"]["rossi"]["assets"]["meter"]["m-rossi"].update(sensor_id=10),
     ("schema_type", "/members/rossi/assets/meter/m-rossi/sensor_id")),
    (lambda d: d["community"].update(id="Valle Verde"), ("schema_pattern", "/community/id")),
    (lambda d: d["community"]["settings"].update(currency="euro"),
     ("schema_pattern", "/community/settings/currency")),
    (lambda d: d["members"]["rossi"].update(role="owner"),
     ("invalid_role", "/members/rossi/role")),
    (lambda d: d["members"]["rossi"].update(role=3), ("invalid_role", "/members/rossi/role")),
    (lambda d: d["members"]["rossi"].update(status="gone"),
     ("invalid_status", "/members/rossi/status")),
    (lambda d: d["community"]["areas"]["nord"].update(topology=[]),
     ("schema_minItems", "/community/areas/nord/topology")),
    (lambda d: d["members"].update({"a/b~c": d["members"].pop("rossi")}),
     ("invalid_key", "/members/a~1b~0c")),
    (lambda d: d["members"]["rossi"]["delivery_points"][0].update(id=""),
     ("schema_minLength", "/members/rossi/delivery_points/0/id")),
])
def test_each_schema_error_has_a_code_and_a_pointer(change, expected):
    document = valle_verde()
    change(document)

    refusals = validate_documents([valle_verde(), document])

    assert [(refusal.code, refusal.pointer) for refusal in refusals] == [expected]
    assert refusals[0].document == 1


def test_refusals_stop_after_the_limit():
    document = valle_verde()
    template = document["members"]["gestore"]
    for number in range(150):
        document["members"][f"m{number}"] = {**template, "role": "nobody",
                                              "user_id": f"u{number}@example.org"}

    refusals = validate_documents([document])

    assert len(refusals) == MAX_REFUSALS + 1
    assert refusals[-1].code == "too_many_errors"
    assert {refusal.code for refusal in refusals[:-1]} == {"invalid_role"}


def test_messages_are_kept_short():
    document = valle_verde()
    document["members"] = ["x" * 5000]

    [refusal] = validate_documents([document])

    assert refusal.code == "schema_type"
    assert len(refusal.message) <= 300


def test_a_refusal_is_a_plain_mapping_for_the_client():
    refusal = Refusal(2, "/members/x/area", "unknown_area", "no such area")

    assert refusal.as_dict() == {"document": 2, "pointer": "/members/x/area",
                                 "code": "unknown_area", "message": "no such area"}


REPLACEMENTS: list[Any] = [None, True, -1.5, "", "x", [], {"x": 1}]


def mutations(document: Any, path: tuple[Any, ...] = ()) -> Any:
    """(path, replacement) pairs: every value swapped for each of REPLACEMENTS, or deleted."""
    if isinstance(document, dict):
        items = list(document.items())
    elif isinstance(document, list):
        items = list(enumerate(document))
    else:
        return
    for key, value in items:
        for replacement in [*REPLACEMENTS, ...]:
            yield (*path, key), replacement
        yield from mutations(value, (*path, key))


@pytest.mark.parametrize("index", range(3))
def test_the_validator_agrees_with_the_reference_implementation_on_every_mutation(index):
    # jsonschema-rs (Rust regexes) against Python's jsonschema, the reference implementation.
    document = reference_documents()[index]
    fast = schema_validator().is_valid
    validator = Draft7Validator(bundle_schema())
    checked = 0

    for path, replacement in list(mutations(document)):
        target = document
        for key in path[:-1]:
            target = target[key]
        original = target[path[-1]]
        if replacement is ...:
            del target[path[-1]]
        else:
            target[path[-1]] = replacement
        assert fast(document) == validator.is_valid(document), (path, replacement)
        checked += 1
        if replacement is ... and isinstance(target, list):
            target.insert(path[-1], original)
        else:
            target[path[-1]] = original  # dicts keep a new position: order is not validated

    assert checked > 300
    assert validator.is_valid(document)


# --------------------------------------------------------------------------- invariants


def refused(documents: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    assert validate_documents(documents) == []
    return codes(check_invariants(documents))


def test_a_member_in_an_unknown_area_is_refused():
    document = valle_verde()
    document["members"]["rossi"]["area"] = "est"

    assert refused([document]) == [(0, "unknown_area", "/members/rossi/area")]


def test_the_same_community_twice_in_one_request_is_refused():
    assert sorted(refused([valle_verde(), valle_verde()])) == sorted([
        (1, "duplicate_key", "/community/id"),
        (1, "duplicate_key", "/members/presidente/did"),
        *[(1, "duplicate_key", f"/members/{member}/delivery_points/{index}/id")
          for member, index in [("comune", 0), ("comune", 1), ("rossi", 0), ("bianchi", 0),
                                ("verdi", 0), ("caseificio", 0), ("neri", 0)]],
        *[(1, "duplicate_key", f"/members/{member}/assets/meter/{meter}/sensor_id")
          for member, meter in [("comune", "m-municipio-prod"), ("comune", "m-municipio-cons"),
                                ("comune", "m-scuola"), ("rossi", "m-rossi"),
                                ("bianchi", "m-bianchi"), ("verdi", "m-verdi"),
                                ("caseificio", "m-caseificio"), ("neri", "m-neri")]],
    ])


def test_an_asset_key_is_unique_across_the_members_and_types_of_a_community():
    document = valle_verde()
    document["members"]["bianchi"]["assets"]["pv"] = {"pv-rossi": {"name": "same key"}}

    assert refused([document]) == [
        (0, "duplicate_key", "/members/bianchi/assets/pv/pv-rossi")]


def test_a_sensor_is_unique_in_a_request():
    document = valle_verde()
    meter = document["members"]["bianchi"]["assets"]["meter"]["m-bianchi"]
    meter["sensor_id"] = "sens-0010"

    assert refused([document]) == [
        (0, "duplicate_key", "/members/bianchi/assets/meter/m-bianchi/sensor_id")]


def test_delivery_points_topology_nodes_and_user_ids_are_unique_in_a_community():
    document = valle_verde()
    document["members"]["verdi"]["delivery_points"].append({"id": "IT001E00000010",
                                                            "type": "pod"})
    document["community"]["topology"].append({"id": "CS-S-01", "type": "feeder"})
    document["members"]["neri"]["user_id"] = "giulia.verdi@example.org"

    assert sorted(refused([document])) == [
        (0, "duplicate_key", "/community/topology/4/id"),
        (0, "duplicate_key", "/members/neri/user_id"),
        (0, "duplicate_key", "/members/verdi/delivery_points/1/id"),
    ]


def test_a_did_is_unique_across_the_request():
    first, second = reference_documents()[:2]
    first["members"]["parrocchia"]["did"] = "did:web:x"
    second["members"]["cooperativa"]["did"] = "did:web:x"

    assert refused([first, second]) == [(1, "duplicate_key", "/members/cooperativa/did")]


def test_an_area_topology_must_be_its_boundary_and_a_primary_substation():
    document = valle_verde()
    document["community"]["areas"]["nord"]["topology"] = ["AC001E00456"]
    document["community"]["areas"]["sud"]["boundary"]["id"] = "CS-S-01"
    document["community"]["areas"]["sud"]["topology"] = ["CS-S-01"]

    assert refused([document]) == [
        (0, "area_topology", "/community/areas/nord/topology"),
        (0, "area_topology", "/community/areas/sud/boundary/id"),
    ]


def test_two_areas_with_one_boundary_are_refused():
    document = valle_verde()
    document["community"]["areas"]["sud"]["boundary"]["id"] = "AC001E00123"
    document["community"]["areas"]["sud"]["topology"] = ["AC001E00123"]

    assert refused([document]) == [(0, "duplicate_boundary", "/community/areas/sud/boundary/id")]


def test_a_meter_pod_must_be_a_delivery_point_of_its_member():
    document = valle_verde()
    document["members"]["rossi"]["assets"]["meter"]["m-rossi"]["pod"] = "IT001E00000011"

    assert refused([document]) == [
        (0, "unknown_pod", "/members/rossi/assets/meter/m-rossi/pod")]


def test_topology_parents_and_operators_must_exist():
    document = valle_verde()
    document["community"]["topology"][2]["parent"] = "nowhere"
    document["community"]["topology"][0]["operator_id"] = "terna"

    assert refused([document]) == [
        (0, "unknown_operator", "/community/topology/0/operator_id"),
        (0, "unknown_parent", "/community/topology/2/parent"),
    ]


def test_the_reserved_shape_key_and_odd_unknown_asset_keys_are_refused():
    document = valle_verde()
    document["members"]["rossi"]["__bundle__"] = {}
    document["members"]["rossi"]["assets"]["wind"] = {"bad key!": {"name": "x"}}
    document["members"]["verdi"]["assets"]["wind"] = {"turbine": {"name": "ok"}}

    assert refused([document]) == [
        (0, "invalid_key", "/members/rossi/__bundle__"),
        (0, "invalid_key", "/members/rossi/assets/wind/bad key!"),
    ]


def test_a_trailing_newline_in_a_key_is_refused():
    document = valle_verde()
    document["members"]["rossi\n"] = document["members"].pop("rossi")

    # `$` in a pattern does not match before a final newline in the schema's regex dialect.
    assert codes(validate_documents([document])) == [(0, "invalid_key", "/members/rossi\n")]
