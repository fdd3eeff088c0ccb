"""The OpenAPI document: split YAML files joined by $ref, bundled into one self-contained dict."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from openapi.bundle_format import bundle_format_components

SPEC_DIR = Path(__file__).parent
ROOT_FILE = SPEC_DIR / "openapi.yaml"
COMPONENT_FILES = {"schemas.yaml": "schemas", "parameters.yaml": "parameters",
                   "responses.yaml": "responses"}


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _pointer_get(document: Any, pointer: str) -> Any:
    node = document
    for raw in filter(None, pointer.split("/")):
        node = node[raw.replace("~1", "/").replace("~0", "~")]
    return node


class _Bundler:
    """Inlines path files and turns component-file refs into #/components refs."""

    def __init__(self) -> None:
        self.files: dict[Path, Any] = {}
        self.components: dict[str, dict[str, Any]] = {}

    def file(self, path: Path) -> Any:
        if path not in self.files:
            self.files[path] = _load(path)
        return self.files[path]

    def resolve(self, node: Any, base: Path) -> Any:
        if isinstance(node, list):
            return [self.resolve(item, base) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.resolve_ref(ref, base)
        return {key: self.resolve(value, base) for key, value in node.items()}

    def resolve_ref(self, ref: str, base: Path) -> Any:
        file_part, _, pointer = ref.partition("#")
        target = (base.parent / file_part).resolve() if file_part else base
        kind = COMPONENT_FILES.get(target.name) if target.parent.name == "components" else None
        if kind is not None:
            name = pointer.strip("/")
            section = self.components.setdefault(kind, {})
            if name not in section:
                section[name] = {}  # placeholder first: recursive schemas terminate
                section[name] = self.resolve(_pointer_get(self.file(target), pointer), target)
            return {"$ref": f"#/components/{kind}/{name}"}
        return self.resolve(copy.deepcopy(_pointer_get(self.file(target), pointer)), target)


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    bundler = _Bundler()
    root = bundler.file(ROOT_FILE)
    document = {key: bundler.resolve(value, ROOT_FILE) for key, value in root.items()}
    components = document.setdefault("components", {})
    if "CommunityBundle" in bundler.components.get("schemas", {}):
        bundler.components["schemas"].update(bundle_format_components())
    for kind, entries in bundler.components.items():
        components[kind] = dict(sorted(entries.items()))
    _spell_out_security(document)
    return document


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _spell_out_security(document: dict[str, Any]) -> None:
    """Copy the root `security` into every operation without its own: the same meaning, but
    generators (openapi-python-client) only make an authenticated call from an operation's."""
    default = document.get("security")
    if not default:
        return
    for item in document.get("paths", {}).values():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and "security" not in operation:
                operation["security"] = copy.deepcopy(default)


def api_version() -> str:
    """The document's `info.version` (the dated API version), without copying the document."""
    version: str = _bundled()["info"]["version"]
    return version


def bundled_spec() -> dict[str, Any]:
    """The whole API document as one dict with only internal refs (a fresh copy each call)."""
    return copy.deepcopy(_bundled())
