"""Checks one asset's properties against the bundle format's JSON Schema for its type."""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from bundles.validate import bundle_schema

DEFINITION_OF_TYPE = {
    "pv": "PVAsset",
    "meter": "MeterAsset",
    "storage": "StorageAsset",
    "ev_charger": "EVChargerAsset",
    "heat_pump": "HeatPumpAsset",
    "load": "LoadAsset",
}
ASSET_TYPES = tuple(DEFINITION_OF_TYPE)


def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = bundle_schema()["definitions"]
    return definitions


@cache
def _validator(asset_type: str) -> Draft7Validator:
    definitions = _definitions()
    schema = {**definitions[DEFINITION_OF_TYPE[asset_type]], "definitions": definitions}
    Draft7Validator.check_schema(schema)
    # As in bundle import: formats are annotations, not checked.
    return Draft7Validator(schema)


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(path: list[object]) -> str:
    return "/properties" + "".join("/" + _escape(token) for token in path)


def _problem(error: ValidationError) -> dict[str, Any]:
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # Point at the missing property itself rather than at the object lacking it.
        missing = [name for name in error.validator_value
                   if name not in error.instance and error.message.startswith(repr(name))]
        if missing:
            path.append(missing[0])
    return {"code": f"schema_{error.validator}", "pointer": _pointer(path),
            "message": error.message}


def validate_asset_properties(asset_type: str, properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Every way `properties` breaks the schema of `asset_type`, in document order (none: valid)."""
    if asset_type not in DEFINITION_OF_TYPE:
        return [{"code": "schema_enum", "pointer": "/asset_type",
                 "message": f"{asset_type!r} is not one of {', '.join(ASSET_TYPES)}"}]
    errors = sorted(_validator(asset_type).iter_errors(properties),
                    key=lambda error: [str(token) for token in error.absolute_path])
    return [_problem(error) for error in errors]
