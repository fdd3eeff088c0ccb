"""JSON responses encoded by orjson, through Connexion's Jsonifier (the standard library
encoder was most of the time of a large answer)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from connexion.jsonifier import JSONEncoder, Jsonifier

OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _default(value: Any) -> Any:
    if isinstance(value, datetime):  # as Connexion writes them: naive ones are UTC
        return value.isoformat("T") if value.tzinfo else value.isoformat("T") + "Z"
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class FastJson:
    """The `json` module interface Jsonifier calls, on orjson; anything orjson refuses
    (an integer beyond 64 bits, say) goes to the standard library as before."""

    @staticmethod
    def dumps(data: Any, **_: Any) -> str:
        try:
            return orjson.dumps(data, default=_default, option=OPTIONS).decode()
        except TypeError:
            return json.dumps(data, cls=JSONEncoder)

    @staticmethod
    def loads(data: str | bytes) -> Any:
        return orjson.loads(data)


def fast_jsonifier() -> Jsonifier:
    """The app's Jsonifier."""
    return Jsonifier(FastJson)
