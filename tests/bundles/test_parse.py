"""Reading bundle bodies: what a client sending YAML or JSON gets back, good or bad."""

from __future__ import annotations

import time

import pytest
import yaml

from bundles import parse
from bundles.errors import BundleSyntaxError, BundleTooLarge
from bundles.parse import parse_json_bundle, parse_yaml_documents
from tests.conftest import REFERENCE_BUNDLES_DIR

REFERENCE_FILES = sorted(REFERENCE_BUNDLES_DIR.glob("*.yaml"))


def syntax_code(data: bytes, **limits: int) -> str:
    with pytest.raises(BundleSyntaxError) as caught:
        parse_yaml_documents(data, **limits)
    return caught.value.code


@pytest.mark.parametrize("path", REFERENCE_FILES, ids=lambda path: path.name)
def test_reference_bundles_read_as_pyyaml_reads_them(path):
    expected = [document for document in yaml.safe_load_all(path.read_bytes())
                if document is not None]

    assert parse_yaml_documents(path.read_bytes()) == expected


def test_every_document_of_a_multi_document_body_is_read_and_empty_ones_skipped():
    body = b"---\n---\na: 1\n---\n# nothing\n---\nb: 2\n...\n"

    assert parse_yaml_documents(body) == [{"a": 1}, {"b": 2}]


def test_dates_and_timestamps_stay_the_text_they_were_written_as():
    body = b"created: 2024-05-10\nat: 2024-05-10T10:00:00Z\nquoted: '2024-05-10'\n"

    assert parse_yaml_documents(body) == [
        {"created": "2024-05-10", "at": "2024-05-10T10:00:00Z", "quoted": "2024-05-10"}]


def test_scalars_resolve_as_yaml_1_1_does():
    body = (b"i: 42\nneg: -7\nhex: 0x1F\nunderscored: 1_000\nf: 6.0\nexp: 1.5e+3\n"
            b"yes_: yes\noff_: Off\nnull_: ~\nempty:\nquoted: '42'\nword: 1.5e3\n")

    assert parse_yaml_documents(body) == [{
        "i": 42, "neg": -7, "hex": 31, "underscored": 1000, "f": 6.0, "exp": 1500.0,
        "yes_": True, "off_": False, "null_": None, "empty": None, "quoted": "42",
        "word": "1.5e3"}]


def test_anchors_aliases_and_merge_keys_work():
    body = b"base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\nsame: *b\n"

    [document] = parse_yaml_documents(body)

    assert document == {"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3},
                        "same": {"x": 1, "y": 2}}


def test_a_utf8_byte_order_mark_is_fine():
    assert parse_yaml_documents("\ufeffname: Comunità\n".encode()) == [{"name": "Comunità"}]


@pytest.mark.parametrize("body", [b"", b"   \n\n", b"# only a comment\n", b"---\n---\n"])
def test_an_empty_body_is_refused(body):
    assert syntax_code(body) == "empty_bundle"


def test_a_body_that_is_not_utf8_is_refused():
    assert syntax_code("name: Comunità\n".encode("latin-1")) == "invalid_encoding"


@pytest.mark.parametrize("body", [b"a: [1, 2\n", b"a: b: c\n", b"a:\n\t- tab\n", b"*nowhere\n"])
def test_invalid_yaml_is_refused(body):
    assert syntax_code(body) == "invalid_yaml"


@pytest.mark.parametrize("body", [b"- a\n- b\n", b"just text\n", b"a: 1\n---\n42\n"])
def test_a_document_that_is_not_a_mapping_is_refused(body):
    assert syntax_code(body) == "not_a_mapping"


def test_an_alias_bomb_is_refused_fast_without_expanding_it():
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        aliases = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    body = "\n".join(lines).encode()
    started = time.perf_counter()

    with pytest.raises(BundleTooLarge) as caught:
        parse_yaml_documents(body)

    assert caught.value.code == "bundle_too_large"
    assert time.perf_counter() - started < 1.0


def test_aliases_count_expanded_against_the_node_budget():
    body = b"a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a]\n"

    assert parse_yaml_documents(body, max_nodes=100)
    with pytest.raises(BundleTooLarge):
        parse_yaml_documents(body, max_nodes=40)


@pytest.mark.parametrize("body", [b"a: &a [1, *a]\n", b"a: &a {b: {c: *a}}\n"])
def test_a_self_referencing_alias_is_refused(body):
    assert syntax_code(body) == "yaml_recursive"


def test_nesting_deeper_than_the_limit_is_refused():
    body = ("a: " + "[" * 200 + "]" * 200 + "\n").encode()

    assert syntax_code(body) == "yaml_too_deep"


YAML_READERS = [
    pytest.param(getattr(yaml, "CSafeLoader", None), id="libyaml"),
    pytest.param(yaml.SafeLoader, id="pure-python"),
]


@pytest.fixture(params=YAML_READERS)
def yaml_reader(request, monkeypatch):
    """Each YAML reader PyYAML may give us: libyaml's C scanner and the pure-Python one."""
    if request.param is None:
        pytest.skip("this PyYAML was built without libyaml")
    monkeypatch.setattr(parse, "_Loader", request.param)
    return request.param


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")])
def test_nesting_a_hundred_thousand_deep_is_refused_without_crashing_the_process(
    yaml_reader, opening, closing
):
    # libyaml's own composer recurses in C and overflows the stack here (a segfault); since
    # PyYAML 6.0.4 its scanner refuses flow nesting past 1,000 levels before any event.
    body = ("a: " + opening * 100_000 + closing * 100_000 + "\n").encode()

    assert syntax_code(body) == "yaml_too_deep"


def test_a_limit_above_the_readers_own_is_read_or_refused_as_too_deep(yaml_reader):
    # libyaml of PyYAML 6.0.4 refuses 1,000 block levels of its own; older libyaml and the
    # pure-Python reader read them. Either way, depth is never reported as invalid YAML.
    body = ("a:\n" + "".join("  " * (level + 1) + "- \n" for level in range(1_500))).encode()

    try:
        documents = parse_yaml_documents(body, max_depth=5_000)
    except BundleSyntaxError as refusal:
        assert refusal.code == "yaml_too_deep"
    else:
        assert len(documents) == 1


def test_a_scanner_error_that_is_not_depth_stays_invalid_yaml(yaml_reader):
    assert syntax_code(b"a: [1, 2\nb: 'open\n") == "invalid_yaml"


def test_an_alias_that_nests_a_document_too_deep_is_refused():
    deep = "[" * 40 + "]" * 40
    body = f"a: &a {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"

    assert syntax_code(body.encode(), max_depth=64) == "yaml_too_deep"
    assert parse_yaml_documents(body.encode(), max_depth=80)


@pytest.mark.parametrize("body", [b"1: one\n", b"on: x\n", b"~: x\n", b"[a]: x\n", b"a: {2: x}\n"])
def test_a_mapping_key_that_is_not_a_string_is_refused(body):
    assert syntax_code(body) == "invalid_key"


def test_a_key_given_twice_in_one_mapping_is_refused():
    assert syntax_code(b"members:\n  a: 1\n  a: 2\n") == "yaml_duplicate_key"


@pytest.mark.parametrize("body", [
    b'a: "nul\\0here"\n', b'"key\\x00": 1\n',
    b"a: !!binary aGVsbG8=\n", b"a: !!set {x, y}\n", b"a: !!omap [{x: 1}]\n",
    b"a: !!python/object:object {}\n", b"a: !custom x\n", b"a: .nan\n", b"a: -.inf\n",
])
def test_values_json_cannot_hold_are_refused(body):
    assert syntax_code(body) == "invalid_value"


def test_error_messages_say_where_the_problem_is():
    with pytest.raises(BundleSyntaxError) as caught:
        parse_yaml_documents(b"ok: 1\nalso: fine\nbad: !!binary aGVsbG8=\n")

    assert "line 3" in caught.value.detail


def test_a_json_bundle_must_be_a_mapping():
    document = {"version": "1.0"}

    assert parse_json_bundle(document) is document
    with pytest.raises(BundleSyntaxError) as caught:
        parse_json_bundle([document])
    assert caught.value.code == "not_a_mapping"


@pytest.mark.parametrize(("document", "code"), [
    ({"a": float("nan")}, "invalid_value"),
    ({"a": [float("inf")]}, "invalid_value"),
    ({"a": "nul\x00"}, "invalid_value"),
    ({"a": {"lone\ud800": 1}}, "invalid_value"),
    ({"a": {1: "x"}}, "invalid_key"),
    ({"a": [[[[[[[[[[1]]]]]]]]]]}, "yaml_too_deep"),
])
def test_a_json_bundle_holds_only_what_the_registry_can_store(document, code):
    with pytest.raises(BundleSyntaxError) as caught:
        parse_json_bundle(document, max_depth=8)

    assert caught.value.code == code
