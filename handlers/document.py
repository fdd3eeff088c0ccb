"""The served API document: the bundled spec with its `$ref`s kept, as clients generate from."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from connexion.middleware.swagger_ui import SwaggerUIAPI
from starlette.requests import Request

import openapi


@lru_cache(maxsize=8)
def served_document(base_path: str) -> dict[str, Any]:
    """The document Connexion validates against, before it resolves references: every
    component stays a named `#/components/...` reference, so a generator makes one model per
    component. `servers` names the base path the request came through (behind a proxy too)."""
    document = copy.deepcopy(openapi.bundled_spec())
    document["servers"] = [{"url": base_path or "/"}]
    return document


def _document_for_prefix(api: SwaggerUIAPI, request: Request) -> dict[str, Any]:
    # Connexion's own answer is the fully resolved copy (no `$ref` left), rebuilt per request.
    return served_document(api._base_path_for_prefix(request))


def serve_document_with_refs() -> None:
    """Make Connexion's /openapi.json and /openapi.yaml answer `served_document`."""
    SwaggerUIAPI._spec_for_prefix = _document_for_prefix
