"""Reading bundle bodies: YAML (one or many documents) or decoded JSON, into plain mappings.

YAML is read from libyaml's event stream rather than with `yaml.load`: the loader's composer
recurses in C and crashes the process on deeply nested input, and its Python constructor is
the slow half of loading. Walking the events keeps memory and time linear, stops at the first
level past `max_depth`, refuses self-referencing aliases and counts alias expansion as it goes,
so an alias bomb is refused before anything is expanded.

Scalars resolve as YAML 1.1 does in PyYAML's SafeLoader, with one difference: timestamps
stay the strings they were written as, because the schema wants strings and an export must
give the same text back. Values JSON can't hold (binary, sets, ordered maps, NaN, infinity)
and non-string mapping keys are refused, as are duplicate keys in one mapping.
"""

from __future__ import annotations

import gc
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml import events
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from bundles.errors import BundleSyntaxError, BundleTooLarge
from storage.exportable import (
    DEFAULT_MAX_DEPTH,
    UNSTORABLE,
    json_value_problem,
    kind_of,
)

DEFAULT_MAX_NODES = 2_000_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + name for name in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _MERGE, _MAP, _SEQ = (_TAG + name for name in ("timestamp", "merge", "map", "seq"))
_IMPLICIT: dict[Any, list[tuple[str, re.Pattern[str]]]] = Resolver.yaml_implicit_resolvers
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DIGITS_LIMIT = "Exceeds the limit"  # int()'s message beyond sys.get_int_max_str_digits()
_CONSTRUCTOR = SafeConstructor()
_BOOLS: dict[str, bool] = SafeConstructor.bool_values

# NUL and lone surrogates: no database text column (nor UTF-8) can hold them.

_NO_KEY: Any = object()
_MERGE_KEY: Any = object()

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    # Loading allocates hundreds of thousands of long-lived containers; the cyclic collector
    # would rescan them all on every generation-2 pass and more than double the load time.
    # Concurrent loads share one pause; the last one out restores what was there before.
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _where(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    if mark is None:
        return ""
    return f" (line {mark.line + 1}, column {mark.column + 1})"


class _Budget:
    """Expanded-node count of the whole body and the limits it is checked against."""

    __slots__ = ("max_depth", "max_nodes", "nodes")

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.nodes = 0
        self.max_nodes = max_nodes
        self.max_depth = max_depth

    def too_large(self) -> BundleTooLarge:
        return BundleTooLarge(
            f"the bundle expands to more than {self.max_nodes} nodes (aliases included)"
        )


class _Frame:
    """An open mapping or sequence while its events are read."""

    __slots__ = ("anchor", "container", "height", "is_map", "key", "merges", "size", "start")

    def __init__(self, container: Any, is_map: bool, anchor: str | None, start: Any) -> None:
        self.container = container
        self.is_map = is_map
        self.anchor = anchor
        self.start = start
        self.key: Any = _NO_KEY
        self.merges: list[Any] | None = None
        self.size = 1
        self.height = 1


def _convert(tag: str, value: str, event: Any) -> Any:
    """The Python value of a scalar whose tag is known to be one of the core JSON-able tags."""
    if tag in (_STR, _TIMESTAMP):
        return value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        result = _BOOLS.get(value.lower())
        if result is None:
            raise BundleSyntaxError(f"{value!r} is not a boolean{_where(event)}",
                                    code="invalid_yaml")
        return result
    if tag == _INT:
        try:
            if _DECIMAL.fullmatch(value):
                return int(value)
            return _CONSTRUCTOR.construct_yaml_int(ScalarNode(tag, value))
        except (ValueError, IndexError) as error:
            if _DIGITS_LIMIT in str(error):  # Python's int-string conversion limit
                raise BundleSyntaxError(
                    f"an integer of {len(value)} characters is too long to store"
                    f"{_where(event)}", code="invalid_value") from error
            raise BundleSyntaxError(
                f"{value[:40]!r} is not an integer{_where(event)}", code="invalid_yaml"
            ) from error
    # float
    try:
        number = float(value) if "_" not in value and ":" not in value else None
    except ValueError:
        number = None
    if number is None:
        try:
            number = _CONSTRUCTOR.construct_yaml_float(ScalarNode(tag, value))
        except (ValueError, IndexError) as error:
            raise BundleSyntaxError(
                f"{value!r} is not a number{_where(event)}", code="invalid_yaml"
            ) from error
    if not math.isfinite(number):
        raise BundleSyntaxError(
            f"{value!r}: infinity and NaN can't be stored{_where(event)}", code="invalid_value"
        )
    return number


def _scalar(event: Any) -> Any:
    tag = event.tag
    value = event.value
    if event.style == '"' and UNSTORABLE.search(value):  # only escapes can write these
        raise _unstorable(value, _where(event))
    if tag is None or tag == "!":
        if not event.implicit[0]:
            return value  # quoted, or explicitly non-specific: a string
        for resolved, pattern in _IMPLICIT.get(value[:1], ()):
            if pattern.match(value):
                if resolved == _MERGE or resolved not in _KNOWN_SCALAR_TAGS:
                    return value  # "<<" outside a key, "=": plain strings
                return _convert(resolved, value, event)
        return value
    if tag in _KNOWN_SCALAR_TAGS:
        return _convert(tag, value, event)
    raise BundleSyntaxError(
        f"the tag {tag!r} is not allowed in a bundle: only JSON values can be stored"
        f"{_where(event)}",
        code="invalid_value",
    )


_KNOWN_SCALAR_TAGS = frozenset({_STR, _NULL, _BOOL, _INT, _FLOAT, _TIMESTAMP})


def _unstorable(value: str, where: str) -> BundleSyntaxError:
    return BundleSyntaxError(
        f"the string {value[:40]!r} holds a NUL character or a lone surrogate, which the "
        f"registry can't store{where}",
        code="invalid_value",
    )


def _merged(frame: _Frame) -> dict[str, Any]:
    # As PyYAML's flatten_mapping: keys written in the mapping win over merged ones, and an
    # earlier mapping of a merge sequence wins over a later one.
    pairs: list[tuple[str, Any]] = []
    for source in reversed(frame.merges or ()):
        pairs.extend(source.items())
    pairs.extend(frame.container.items())
    return dict(pairs)


def _add_merge(frame: _Frame, value: Any, event: Any) -> None:
    sources = value if isinstance(value, list) else [value]
    if not sources or not all(isinstance(source, dict) for source in sources):
        raise BundleSyntaxError(
            f"a merge key '<<' needs a mapping or a list of mappings{_where(event)}",
            code="invalid_yaml",
        )
    if frame.merges is None:
        frame.merges = []
    frame.merges.extend(sources)


def _read_document(loader: Any, budget: _Budget) -> Any:
    """The value of the document whose DocumentStartEvent was just read."""
    anchors: dict[str, tuple[Any, int, int]] = {}
    open_anchors: set[str] = set()
    stack: list[_Frame] = []
    max_depth = budget.max_depth
    scalar_event = events.ScalarEvent
    root: Any = None
    while True:
        event = loader.get_event()
        kind = event.__class__
        is_scalar = kind is scalar_event
        if is_scalar:
            value = _scalar(event)
            size = 1
            height = 0
            budget.nodes += 1
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1, 0)
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            is_map = kind is events.MappingStartEvent
            tag = event.tag
            if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
                raise BundleSyntaxError(
                    f"the tag {tag!r} is not allowed in a bundle: only JSON values can be "
                    f"stored{_where(event)}",
                    code="invalid_value",
                )
            if len(stack) >= max_depth:
                raise BundleSyntaxError(
                    f"the document nests deeper than {max_depth} levels{_where(event)}",
                    code="yaml_too_deep",
                )
            anchor = event.anchor
            if anchor is not None:
                open_anchors.add(anchor)
            stack.append(_Frame({} if is_map else [], is_map, anchor, event))
            budget.nodes += 1
            if budget.nodes > budget.max_nodes:
                raise budget.too_large()
            continue
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            frame = stack.pop()
            if frame.is_map and frame.key is not _NO_KEY:
                raise BundleSyntaxError("a mapping key has no value", code="invalid_yaml")
            value = _merged(frame) if frame.merges else frame.container
            size = frame.size
            height = frame.height
            if frame.anchor is not None:
                open_anchors.discard(frame.anchor)
                anchors[frame.anchor] = (value, size, height)
        elif kind is events.AliasEvent:
            name = event.anchor
            if name in open_anchors:
                raise BundleSyntaxError(
                    f"the alias *{name} refers to a node that contains it{_where(event)}",
                    code="yaml_recursive",
                )
            found = anchors.get(name)
            if found is None:
                raise BundleSyntaxError(
                    f"the alias *{name} names no anchor{_where(event)}", code="invalid_yaml"
                )
            value, size, height = found
            if len(stack) + height > max_depth:
                raise BundleSyntaxError(
                    f"the alias *{name} nests the document deeper than {max_depth} levels"
                    f"{_where(event)}",
                    code="yaml_too_deep",
                )
            budget.nodes += size
        elif kind is events.DocumentEndEvent:
            return root
        elif event is None or kind is events.StreamEndEvent:
            raise BundleSyntaxError("the document ends early", code="invalid_yaml")
        else:
            continue
        if budget.nodes > budget.max_nodes:
            raise budget.too_large()
        if not stack:
            root = value
            continue
        frame = stack[-1]
        frame.size += size
        if height >= frame.height:
            frame.height = height + 1
        if not frame.is_map:
            frame.container.append(value)
        elif frame.key is _NO_KEY:
            if (
                is_scalar
                and value == "<<"
                and event.tag is None
                and event.implicit[0]
            ):
                frame.key = _MERGE_KEY
            elif value.__class__ is not str:
                raise BundleSyntaxError(
                    f"the mapping key {value!r} is not a string; quote it{_where(event)}",
                    code="invalid_key",
                )
            elif value in frame.container:
                raise BundleSyntaxError(
                    f"the key {value!r} appears twice in one mapping{_where(event)}",
                    code="yaml_duplicate_key",
                )
            else:
                frame.key = value
        elif frame.key is _MERGE_KEY:
            _add_merge(frame, value, event)
            frame.key = _NO_KEY
        else:
            frame.container[frame.key] = value
            frame.key = _NO_KEY


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BundleSyntaxError(
            f"the body is not UTF-8 (byte {error.start}): save the bundle as UTF-8",
            code="invalid_encoding",
        ) from error


def _yaml_refusal(error: yaml.YAMLError, max_depth: int) -> BundleSyntaxError:
    """The refusal for an error of PyYAML's own scanner or parser.

    libyaml (PyYAML 6.0.2 and newer with the C extension) refuses nesting past its own limit
    in the scanner, often before our walk of the events reaches `max_depth`: that is the same
    refusal as ours, whichever layer notices it first.
    """
    problem = getattr(error, "problem", None) or ""
    if "nesting depth" in problem:
        return BundleSyntaxError(
            f"the document nests too deep for a bundle (the limit is {max_depth} levels, or "
            f"less where the YAML reader stops first){_error_place(error)}",
            code="yaml_too_deep",
        )
    return BundleSyntaxError(f"the body is not valid YAML: {error}", code="invalid_yaml")


def _error_place(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return ""
    return f" (line {mark.line + 1}, column {mark.column + 1})"


def parse_yaml_documents(
    data: bytes,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> list[dict[str, Any]]:
    """The mappings of a YAML body, one per non-empty document, in order.

    Raises BundleSyntaxError (codes empty_bundle, invalid_encoding, invalid_yaml,
    invalid_value, invalid_key, yaml_duplicate_key, yaml_too_deep, yaml_recursive,
    not_a_mapping) or BundleTooLarge when aliases expand past `max_nodes` nodes.
    """
    text = _decode(data)
    if not text.strip():
        raise BundleSyntaxError("the body is empty: send at least one bundle document",
                                code="empty_bundle")
    budget = _Budget(max_nodes, max_depth)
    documents: list[dict[str, Any]] = []
    loader = _Loader(text)
    try:
        with gc_paused():
            index = 0
            while True:
                event = loader.get_event()
                if event is None or isinstance(event, events.StreamEndEvent):
                    break
                if not isinstance(event, events.DocumentStartEvent):
                    continue
                document = _read_document(loader, budget)
                if document is None:
                    continue
                if not isinstance(document, dict):
                    raise BundleSyntaxError(
                        f"document {index} is a {kind_of(document)}, not a mapping: a bundle "
                        "document has version, schema_version, community and members",
                        code="not_a_mapping",
                    )
                documents.append(document)
                index += 1
    except yaml.YAMLError as error:
        raise _yaml_refusal(error, budget.max_depth) from error
    except RecursionError as error:  # defensive: nothing above recurses
        raise BundleSyntaxError("the document nests too deep", code="yaml_too_deep") from error
    finally:
        loader.dispose()
    if not documents:
        raise BundleSyntaxError("the body holds no bundle document", code="empty_bundle")
    return documents


def parse_json_bundle(obj: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """An already-decoded JSON body as one bundle document; it must be a mapping.

    Also refuses what JSON decoders accept but the registry can't store: NaN and infinity
    (invalid_value), NUL characters and lone surrogates (invalid_value), and nesting deeper
    than `max_depth` (yaml_too_deep, as for YAML).
    """
    if not isinstance(obj, dict):
        raise BundleSyntaxError(
            f"the JSON body is a {kind_of(obj)}, not a bundle mapping", code="not_a_mapping"
        )
    problem = json_value_problem(obj, max_depth)
    if problem is not None:
        code, message = problem
        raise BundleSyntaxError(message, code=code)
    return obj
