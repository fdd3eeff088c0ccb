"""Meta operations: the index, health (details for authenticated callers only), version."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import openapi
from handlers.instants import iso
from handlers.runtime import current_runtime, in_thread
from storage.db import database_status
from storage.errors import StorageError


@lru_cache(maxsize=1)
def service_version() -> str:
    """The installed package's version."""
    try:
        return version("commonwatt")
    except PackageNotFoundError:
        return "0.0.0+unknown"


async def get_health(token_info: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    runtime = current_runtime()
    database = await in_thread(database_status, runtime.engine)
    try:
        telemetry = await in_thread(runtime.telemetry.status)
    except StorageError as error:
        telemetry = {"status": "error", "error": error.detail}
    healthy = database["status"] == "ok" and telemetry["status"] == "ok"
    status = 200 if healthy else 503
    if not (token_info and "uid" in token_info):
        # Anonymous callers (load balancers, probes) learn only whether the service is up.
        return {"status": "ok" if healthy else "degraded"}, status
    last = telemetry.pop("last_reading_ms", None)
    if telemetry["status"] == "ok":
        telemetry["last_reading_at"] = None if last is None else iso(last)
    body = {"status": "ok" if healthy else "degraded", "version": service_version(),
            "database": database, "telemetry": telemetry}
    if runtime.mqtt is not None:
        body["mqtt"] = runtime.mqtt.status()
    return body, status


async def get_index() -> dict[str, Any]:
    return {"name": "commonwatt", "version": service_version(),
            "api_version": openapi.api_version(),
            "links": {"openapi": "/api/openapi.json", "swagger_ui": "/api/ui/",
                      "health": "/api/health", "version": "/api/version"}}


async def get_version() -> dict[str, Any]:
    return {"name": "commonwatt", "version": service_version(),
            "api_version": openapi.api_version()}
