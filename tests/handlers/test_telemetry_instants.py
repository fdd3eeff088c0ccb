"""The accepted instants (1900-01-01Z to 2200-01-01Z) on every input path and every read."""

from __future__ import annotations

import io
import json
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handlers.instants import iso, iso_many
from handlers.settings import Settings
from storage.telemetry.instants import END_TS_MS, MIN_TS_MS
from storage.telemetry.store import SeriesStats
from tests.factories import Api
from tests.handlers.test_telemetry import DAY, SENSOR, _community, _ingest, _rows

GOOD = f"{DAY}T10:00:00Z"
HOSTILE = ["0001-01-01T00:00:00+01:00", "0000-01-01T00:00:00Z", "1899-12-31T23:59:59.999Z",
           "2200-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]
RANGE = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:00:00Z"}


def _refused_at(response: Any, index: int) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "readings_refused"
    assert {"index": index, "code": "invalid_timestamp"}.items() <= body["errors"][0].items()


def _stored(api: Api) -> int:
    response = api.client.get("/api/telemetry/readings", params={
        "sensor_id": SENSOR, "channel": "power", "from": "1900-01-01T00:00:00Z",
        "to": "2200-01-01T00:00:00Z", "limit": 1000}, headers=api.admin())
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def _parquet(ts: pa.Array) -> bytes:
    table = pa.table({"sensor_id": [SENSOR] * len(ts), "channel": ["power"] * len(ts),
                      "ts": ts, "value": [1.0] * len(ts)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _upload(api: Api, body: bytes, media_type: str) -> Any:
    return api.client.post("/api/telemetry/readings", content=body,
                           headers={**api.admin(), "Content-Type": media_type})


@pytest.mark.parametrize("stamp", HOSTILE)
def test_every_json_and_text_path_refuses_an_instant_out_of_range(api: Api, stamp: str) -> None:
    _community(api)
    rows = [{"sensor_id": SENSOR, "channel": "power", "ts": ts, "value": 1.0}
            for ts in (GOOD, stamp)]
    _refused_at(_ingest(api, rows), 1)
    _refused_at(api.client.post("/api/telemetry/readings", json={
        "sensor_id": SENSOR, "channel": "power", "ts": [GOOD, stamp], "value": [1, 2]},
        headers=api.admin()), 1)
    csv = "sensor_id,channel,ts,value\n" + "".join(
        f"{SENSOR},power,{ts},1\n" for ts in (GOOD, stamp))
    _refused_at(_upload(api, csv.encode(), "text/csv"), 1)
    ndjson = "".join(json.dumps(row) + "\n" for row in rows)
    _refused_at(_upload(api, ndjson.encode(), "application/x-ndjson"), 1)
    _refused_at(_upload(api, _parquet(pa.array([GOOD, stamp])), "application/vnd.apache.parquet"),
                1)
    key = api.client.post(f"/api/admin/communities/alpha/sensors/{SENSOR}/ingest-key",
                          headers=api.admin()).json()["key"]
    _refused_at(api.client.post(f"/api/webhook/sensors/{SENSOR}", json={"readings": [
        {"channel": "power", "ts": GOOD, "value": 1}, {"channel": "power", "ts": stamp,
                                                       "value": 2}]},
        headers={"X-Ingest-Key": key}), 1)
    assert _stored(api) == 0


@pytest.mark.parametrize(("unit", "raw"), [
    ("ms", -9 * 10**15), ("ms", MIN_TS_MS - 1), ("s", 9 * 10**15), ("s", -(2**53)),
    ("us", (END_TS_MS) * 1000), ("ns", -(2**63) + 1)])
def test_parquet_timestamps_of_every_unit_out_of_range_are_refused(api: Api, unit: str,
                                                                    raw: int) -> None:
    _community(api)
    good = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[unit] * 1_772_445_600
    column = pa.array([good, raw], pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
    _refused_at(_upload(api, _parquet(column), "application/vnd.apache.parquet"), 1)
    assert _stored(api) == 0
    accepted = _upload(api, _parquet(pa.array([good], pa.int64()).cast(
        pa.timestamp(unit, tz="UTC"))), "application/vnd.apache.parquet")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["first_ts"] == "2026-03-02T10:00:00.000Z"


def test_the_first_accepted_instant_is_stored_and_written_back(api: Api) -> None:
    _community(api)
    response = _ingest(api, [{"sensor_id": SENSOR, "channel": "power",
                              "ts": "1900-01-01T01:00:00+01:00", "value": 3.0}])
    assert response.status_code == 200, response.text
    assert response.json()["first_ts"] == "1900-01-01T00:00:00.000Z"
    assert _stored(api) == 1


@pytest.mark.parametrize(("name", "value"), [
    ("from", "1899-12-31T23:59:59Z"), ("to", "2200-01-01T00:00:00.001Z"),
    ("from", "0001-01-01T00:00:00+01:00"), ("from", "2200-01-01T00:00:00Z")])
def test_query_ranges_out_of_the_accepted_instants_are_400(api: Api, name: str,
                                                           value: str) -> None:
    _community(api)
    params = {"sensor_id": SENSOR, "channel": "power", "from": "1900-01-01T00:00:00Z",
              "to": "2200-01-01T00:00:00Z", name: value}
    for path in ("readings", "series", "export"):
        response = api.client.get(f"/api/telemetry/{path}", params=params, headers=api.admin())
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_instant"
    response = api.client.get("/api/telemetry/daily", params={
        "sensor_id": SENSOR, "from": "1899-12-31", "to": "1900-01-02"}, headers=api.admin())
    assert response.json()["code"] == "invalid_date"


def test_a_failure_after_the_commit_is_reported_as_success(api: Api,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _community(api)
    store = api.runtime.telemetry

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("after the commit")

    monkeypatch.setattr(store, "remember_series", broken)
    response = _ingest(api, _rows(SENSOR, "power", [1.0, 2.0]))
    assert response.status_code == 200, response.text
    monkeypatch.undo()
    assert _stored(api) == 2


def test_formatting_an_instant_never_raises() -> None:
    extremes = [-(2**63), -(2**62), -62_167_219_200_000, MIN_TS_MS - 1, 0, END_TS_MS,
                2**62, 2**63 - 1]
    for value in extremes:
        assert iso(value)[-1] == "Z"
    assert iso_many(np.array(extremes, dtype=np.int64))[0] == "0001-01-01T00:00:00.000Z"
    assert iso(-1) == "1969-12-31T23:59:59.999Z"


READS = [
    ("readings", {"sensor_id": SENSOR, "channel": "power", **RANGE}),
    ("series", {"sensor_id": SENSOR, "channel": "power", **RANGE}),
    ("aggregates", {"sensor_id": SENSOR, "channel": "power", "bucket": "hour", **RANGE}),
    ("latest", {"sensor_id": SENSOR}),
    ("metrics", {"sensor_id": SENSOR}),
    ("daily", {"sensor_id": SENSOR, "from": DAY, "to": DAY}),
    ("communities/alpha/sensors", {}),
    ("communities/alpha/energy-balance", {"from": DAY, "to": DAY}),
    *[("export", {"sensor_id": SENSOR, "format": kind, **RANGE})
      for kind in ("csv", "xlsx", "parquet")],
]


def _every_read_answers(api: Api) -> list[Any]:
    answers = []
    for path, params in READS:
        response = api.client.get(f"/api/telemetry/{path}", params=params, headers=api.admin())
        assert response.status_code == 200, (path, response.text)
        answers.append(response)
    return answers


def test_a_running_store_holding_readings_out_of_range_still_answers(api: Api) -> None:
    """As a store before the range: such readings in the file and in the latest figures."""
    _community(api)
    assert _ingest(api, _rows(SENSOR, "power", [1.0, 2.0])).status_code == 200
    store = api.runtime.telemetry
    key = store.sensor_keys({SENSOR: 1})[SENSOR]
    far = [-62_170_000_000_000, 300_000_000_000_000]
    with store.writer() as cursor:
        cursor.execute("INSERT INTO readings VALUES ($s, 1, $a, 5), ($s, 1, $b, 6)",
                       {"s": key, "a": far[0], "b": far[1]})
    store.remember_series(SeriesStats(
        sensor=np.array([key]), channel=np.array([1]), first_ts=np.array([far[0]]),
        last_ts=np.array([far[1]]), last_value=np.array([6.0])), [], 0)
    answers = dict(zip([path for path, _ in READS], _every_read_answers(api), strict=False))
    assert answers["latest"].json()["items"][0]["ts"] == "9999-12-31T23:59:59.999Z"


def test_an_older_file_holding_readings_out_of_range_is_cleaned_on_opening(
        api: Api, settings: Settings) -> None:
    _community(api)
    assert _ingest(api, _rows(SENSOR, "power", [1.0, 2.0])).status_code == 200
    api.runtime.close()
    with duckdb.connect(str(settings.telemetry_path())) as connection:
        connection.execute("INSERT INTO readings VALUES (1, 1, -62170000000000, 5),"
                           " (1, 1, 300000000000000, 6)")
        connection.execute("INSERT INTO latest VALUES (1, 1, -62170000000000,"
                           " 300000000000000, 6)")
        connection.execute("DELETE FROM upgrades WHERE name = 'readings-in-range'")
    answers = _every_read_answers(api)
    latest = answers[3].json()["items"]
    assert latest == [{"sensor_id": SENSOR, "channel": "power", "ts": f"{DAY}T00:01:00.000Z",
                       "value": 2.0}]
    sensors = answers[6].json()["sensors"]
    power = next(item for item in sensors if item["sensor_id"] == SENSOR)["channels"][0]
    assert power["first_ts"] == f"{DAY}T00:00:00.000Z"
    with api.runtime.telemetry.reader() as cursor:
        assert cursor.execute("SELECT count(*) FROM readings_out_of_range").fetchall() == [(2,)]
