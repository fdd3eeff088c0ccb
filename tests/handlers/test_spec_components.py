"""Every schema a client generator turns into a type is a named component: no inline object or
enum schema in paths, parameters, responses, properties or items, and no nullable object
component (a generator names its object half `...Type0`); nullability sits on the property."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from handlers.document import served_document

SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SUBSCHEMA_MAPS = ("properties",)
SUBSCHEMAS = ("items", "additionalProperties", "not")


def escape(key: str) -> str:
    """A key as a JSON pointer (RFC 6901) segment."""
    return key.replace("~", "~0").replace("/", "~1")


def subschemas(schema: dict[str, Any], pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The schemas a schema holds (its properties, items, compositions), with their pointers."""
    for keyword in SUBSCHEMA_LISTS:
        for index, part in enumerate(schema.get(keyword) or []):
            yield f"{pointer}/{keyword}/{index}", part
    for keyword in SUBSCHEMA_MAPS:
        for name, part in (schema.get(keyword) or {}).items():
            yield f"{pointer}/{keyword}/{escape(name)}", part
    for keyword in SUBSCHEMAS:
        part = schema.get(keyword)
        if isinstance(part, dict):
            yield f"{pointer}/{keyword}", part


def is_object(schema: dict[str, Any]) -> bool:
    return (schema.get("type") == "object" or "properties" in schema
            or isinstance(schema.get("additionalProperties"), dict))


def anonymous_in_schema(schema: dict[str, Any], pointer: str, *, named: bool) -> Iterator[str]:
    """Pointers of inline object and enum schemas in `schema`. A named component and the
    `allOf` parts it is composed of are named; everything below them is not."""
    if "$ref" in schema:
        return
    if not named and (is_object(schema) or "enum" in schema):
        yield pointer
    for child_pointer, child in subschemas(schema, pointer):
        composed = named and child_pointer.startswith(f"{pointer}/allOf/")
        yield from anonymous_in_schema(child, child_pointer, named=composed)


def anonymous_schemas(node: Any, pointer: str = "") -> Iterator[str]:
    """Pointers of inline object and enum schemas anywhere in an OpenAPI document."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from anonymous_schemas(item, f"{pointer}/{index}")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        child_pointer = f"{pointer}/{escape(key)}"
        if pointer == "/components/schemas":
            yield from anonymous_in_schema(value, child_pointer, named=True)
        elif key == "schema" and isinstance(value, dict):
            yield from anonymous_in_schema(value, child_pointer, named=False)
        else:
            yield from anonymous_schemas(value, child_pointer)


def nullable_object_components(document: dict[str, Any]) -> list[str]:
    """Pointers of components that are an object (or composed of parts) and nullable."""
    return [f"/components/schemas/{escape(name)}"
            for name, schema in document["components"]["schemas"].items()
            if schema.get("nullable") and (is_object(schema) or "allOf" in schema)]


def test_the_served_document_has_no_anonymous_object_or_enum_schema() -> None:
    assert list(anonymous_schemas(served_document("/api"))) == []


def test_no_component_is_a_nullable_object() -> None:
    assert nullable_object_components(served_document("/api")) == []


def test_the_check_names_each_anonymous_schema_by_its_pointer() -> None:
    status = {"type": "string", "enum": ["on", "off"]}
    document = {
        "paths": {"/things/{id}": {
            "parameters": [{"name": "mode", "in": "query", "schema": status}],
            "get": {"responses": {"200": {"content": {"application/json": {"schema": {
                "type": "array", "items": {"type": "object", "properties": {"id": {}}}}}}}}},
        }},
        "components": {"schemas": {
            "Thing": {"type": "object", "properties": {
                "status": status, "owner": {"$ref": "#/components/schemas/Owner"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "a/b": {"allOf": [{"type": "object", "properties": {"x": {}}}]},
            }},
            "Owner": {"allOf": [{"$ref": "#/components/schemas/Thing"},
                                {"type": "object", "properties": {"name": {}}}],
                      "nullable": True},
            "Mode": status,
            "Free": {"type": "object", "nullable": True, "additionalProperties": True},
        }},
    }
    assert sorted(anonymous_schemas(document)) == [
        "/components/schemas/Thing/properties/a~1b/allOf/0",
        "/components/schemas/Thing/properties/status",
        "/components/schemas/Thing/properties/tags",
        "/paths/~1things~1{id}/get/responses/200/content/application~1json/schema/items",
        "/paths/~1things~1{id}/parameters/0/schema",
    ]
    assert nullable_object_components(document) == [
        "/components/schemas/Owner", "/components/schemas/Free"]
