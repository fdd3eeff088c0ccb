"""Readings in and out: JSON batches and CSV, NDJSON or Parquet uploads, device pushes with
a sensor's ingest key, the ingest keys themselves, and deleting a sensor's readings."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from connexion.context import receive as request_receive
from connexion.context import scope as request_scope

from handlers import present
from handlers.access import (
    admin_community,
    caller_of,
    deletable_sensor,
    require_writer,
    writable_sensors,
)
from handlers.instants import iso, parse_range
from handlers.mqtt_broker import sync_broker
from handlers.problems import Problem
from handlers.rule_firing import CommunitiesSeen, evaluate_stored, watches_readings
from handlers.runtime import Runtime, current_runtime, in_thread
from handlers.security import Caller
from storage import sensors
from storage.telemetry.deletion import delete_readings as delete_stored_readings
from storage.telemetry.errors import MalformedUpload
from storage.telemetry.ingest import (
    UPLOAD_FORMATS,
    IngestResult,
    ingest_file,
    ingest_push,
    ingest_table,
    table_from_json,
)

LOG = logging.getLogger("commonwatt.mqtt")


def _answer(result: IngestResult) -> dict[str, Any]:
    """The answer of a stored batch, from figures computed before its commit; iso() never
    raises, so nothing after the commit can turn a stored batch into an error."""
    return {"accepted": result.accepted, "replaced": result.replaced, "sensors": result.sensors,
            "first_ts": iso(result.first_ms), "last_ts": iso(result.last_ms)}


def _media_type() -> str:
    headers = dict(request_scope.get("headers") or [])
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


async def _body_chunks() -> Any:
    while True:
        message = await request_receive()
        if message["type"] != "http.request":
            raise Problem(400, "incomplete_body", "the client went away before the body ended")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _read_body() -> bytes:
    return b"".join([chunk async for chunk in _body_chunks()])


async def _spool_body(directory: Path) -> Path:
    """The streamed body in a temporary file (the caller deletes it)."""
    descriptor, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            async for chunk in _body_chunks():
                handle.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _authorizer(runtime: Runtime, caller: Caller) -> Any:
    def authorize(sensor_ids: list[str]) -> Mapping[str, int]:
        with runtime.session(read_only=True) as session:
            return writable_sensors(session, caller, sensor_ids, grants=runtime.write_grants)
    return authorize


def _parse_json_batch(raw: bytes) -> Any:
    if not raw:
        raise MalformedUpload("the request body is empty")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise MalformedUpload(f"the body is not valid JSON: {str(error)[:120]}") from error
    return table_from_json(document)


async def ingest_readings(token_info: dict[str, Any]) -> dict[str, Any]:
    runtime = current_runtime()
    caller = caller_of(token_info)
    with runtime.session(read_only=True) as session:
        require_writer(session, caller)
    store = runtime.telemetry
    max_future_ms = runtime.settings.telemetry_max_future_seconds * 1000
    media_type = _media_type()
    seen = CommunitiesSeen(_authorizer(runtime, caller))
    if media_type in UPLOAD_FORMATS:
        path = await _spool_body(store.temp_dir)
        try:
            result = await in_thread(ingest_file, store, path, media_type, authorize=seen,
                                     max_future_ms=max_future_ms,
                                     max_rows=runtime.settings.telemetry_upload_max_rows,
                                     keep_readings=watches_readings(runtime))
        finally:
            path.unlink(missing_ok=True)
        await in_thread(evaluate_stored, runtime, result.readings, seen.communities)
        return _answer(result)
    table = await in_thread(_parse_json_batch, await _read_body())
    result = await in_thread(ingest_table, store, table, authorize=seen,
                             max_future_ms=max_future_ms)
    await in_thread(evaluate_stored, runtime, table, seen.communities)
    return _answer(result)


async def push_sensor_readings(sensor_id: str, body: dict[str, Any],
                               token_info: dict[str, Any]) -> dict[str, Any]:
    if token_info.get("sensor_id") != sensor_id:
        raise Problem(401, "invalid_ingest_key", "the ingest key is not this sensor's")
    runtime = current_runtime()
    # The key was checked against an active holding of its community: that series is written.
    community_id = int(token_info["community_id"])
    result = await in_thread(
        ingest_push, runtime.telemetry, sensor_id=sensor_id, community_id=community_id,
        readings=body["readings"],
        max_future_ms=runtime.settings.telemetry_max_future_seconds * 1000)
    await in_thread(evaluate_stored, runtime, result.readings, {sensor_id: community_id})
    return _answer(result)


async def create_ingest_key(community_key: str, sensor_id: str,
                            token_info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        key, plaintext = sensors.rotate_ingest_key(session, community_id=community.id,
                                                   sensor_id=sensor_id)
        answer = {"sensor_id": sensor_id, "community": community.key, "key": plaintext,
                  "prefix": key.prefix, "created_at": present.timestamp(key.created_at)}
    await _sync_broker()
    return answer, 201


async def delete_ingest_key(community_key: str, sensor_id: str,
                            token_info: dict[str, Any]) -> tuple[None, int]:
    with current_runtime().session() as session:
        community = admin_community(session, caller_of(token_info), community_key, write=True)
        assert community.id is not None
        sensors.delete_ingest_key(session, community_id=community.id, sensor_id=sensor_id)
    await _sync_broker()
    return None, 204


async def _sync_broker() -> None:
    """After a key change: the MQTT broker's password file from the registry, reloaded (the
    old key is cut off on MQTT too)."""
    runtime = current_runtime()
    try:
        await in_thread(sync_broker, runtime.settings, runtime.engine)
    except OSError as error:  # the key is changed; the next sync writes the files
        LOG.warning("the MQTT broker's files were not written: %s", error)


async def delete_readings(sensor_id: str, token_info: dict[str, Any], channel: str | None = None,
                          **arguments: str) -> dict[str, Any]:
    low, high = parse_range(arguments)
    runtime = current_runtime()
    caller = caller_of(token_info)
    with runtime.session(read_only=True) as session:
        require_writer(session, caller)
        holder = deletable_sensor(session, caller, sensor_id, holders=runtime.holders)
    deleted = await in_thread(delete_stored_readings, runtime.telemetry,
                              community_id=holder.community_id, sensor_id=sensor_id,
                              channel=channel, low=low, high=high)
    return {"sensor_id": sensor_id, "channel": channel, "from": iso(low), "to": iso(high),
            "deleted": deleted}
