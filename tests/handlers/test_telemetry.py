"""Telemetry over HTTP: ingest (JSON, CSV, NDJSON, Parquet, device push), queries, access."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.factories import Api, community_doc, member_doc

SENSOR = "sens-a"
OTHER = "sens-b"
DAY = "2026-03-02"


def _community(api: Api, key: str = "alpha", sensors: tuple[str, ...] = (SENSOR, OTHER),
               operator: str | None = None) -> None:
    members: dict[str, Any] = {}
    for index, sensor in enumerate(sensors):
        members[f"m{index}"] = member_doc(f"{key}-m{index}", user_id=f"m{index}@{key}.test",
                                          sensors=(sensor,))
    if operator:
        members["op"] = member_doc(f"{key}-op", user_id=operator, role="operator")
    doc = community_doc(key, members)
    doc["community"]["settings"] = {"timezone": "Europe/Rome", "incentive_eur_per_mwh": 110}
    api.import_yaml(doc)


def _rows(sensor: str, channel: str, values: list[float], start_minute: int = 0,
          day: str = DAY) -> list[dict[str, Any]]:
    return [{"sensor_id": sensor, "channel": channel,
             "ts": f"{day}T{(start_minute + i) // 60:02d}:{(start_minute + i) % 60:02d}:00Z",
             "value": value} for i, value in enumerate(values)]


def _ingest(api: Api, rows: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Any:
    return api.client.post("/api/telemetry/readings", json={"readings": rows},
                           headers=headers or api.admin())


@pytest.fixture
def loaded(api: Api) -> Api:
    _community(api)
    response = _ingest(api, _rows(SENSOR, "power", [float(i) for i in range(120)]))
    assert response.status_code == 200, response.text
    return api


def test_channel_catalog_lists_units(api: Api) -> None:
    response = api.client.get("/api/telemetry/channels", headers=api.admin())
    assert response.status_code == 200
    units = {item["name"]: item["unit"] for item in response.json()["channels"]}
    assert units["power"] == "W" and units["energy_import"] == "Wh"


def test_json_batch_is_stored_and_resend_changes_nothing(loaded: Api) -> None:
    api = loaded
    params = {"sensor_id": SENSOR, "channel": "power", "from": f"{DAY}T00:00:00Z",
              "to": f"{DAY}T23:00:00Z", "limit": 1000}
    before = api.client.get("/api/telemetry/readings", params=params, headers=api.admin())
    assert before.status_code == 200 and len(before.json()["items"]) == 120
    again = _ingest(api, _rows(SENSOR, "power", [float(i) for i in range(120)]))
    assert again.json()["accepted"] == 120 and again.json()["replaced"] == 120
    after = api.client.get("/api/telemetry/readings", params=params, headers=api.admin())
    assert after.json() == before.json()


def test_new_value_replaces_old(loaded: Api) -> None:
    api = loaded
    _ingest(api, _rows(SENSOR, "power", [999.0], start_minute=5))
    response = api.client.get("/api/telemetry/readings", params={
        "sensor_id": SENSOR, "channel": "power", "from": f"{DAY}T00:05:00Z",
        "to": f"{DAY}T00:06:00Z"}, headers=api.admin())
    assert response.json()["items"] == [{"ts": f"{DAY}T00:05:00.000Z", "value": 999.0}]


def test_columnar_form_and_offsets(api: Api) -> None:
    _community(api)
    response = api.client.post("/api/telemetry/readings", json={
        "sensor_id": SENSOR, "channel": "voltage",
        "ts": ["2026-03-02T01:00:00+01:00", "2026-03-02T00:01:00.5Z"], "value": [230, 231.5]},
        headers=api.admin())
    assert response.status_code == 200, response.text
    assert response.json()["first_ts"] == "2026-03-02T00:00:00.000Z"
    assert response.json()["last_ts"] == "2026-03-02T00:01:00.500Z"


def test_bad_readings_are_listed_and_nothing_is_stored(loaded: Api) -> None:
    api = loaded
    rows = _rows(SENSOR, "power", [1.0, 2.0, 3.0, 4.0], start_minute=300)
    rows[1]["sensor_id"] = "nobody"
    rows[2]["ts"] = "2026-03-02T05:02:00"
    rows[3]["channel"] = "humidity"
    rows.append({**rows[0], "ts": "2099-01-01T00:00:00Z"})
    response = _ingest(api, rows)
    assert response.status_code == 422
    body = response.json()
    assert body["refused"] == 4
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "unknown_sensor"), (2, "invalid_timestamp"), (3, "unknown_channel"),
        (4, "future_timestamp")]
    latest = api.client.get("/api/telemetry/latest", params={"sensor_id": SENSOR},
                            headers=api.admin())
    assert latest.json()["items"][0]["ts"] == f"{DAY}T01:59:00.000Z"


def test_malformed_batches_are_400(api: Api) -> None:
    _community(api)
    for body in ({"readings": [{"sensor_id": SENSOR}]}, {"readings": []},
                 {"sensor_id": SENSOR, "channel": "power", "ts": ["x"], "value": [1, 2]},
                 {"readings": [{"sensor_id": SENSOR, "channel": "power", "ts": "x",
                                "value": True}]}):
        response = api.client.post("/api/telemetry/readings", json=body, headers=api.admin())
        assert response.status_code == 400, body
    response = api.client.post("/api/telemetry/readings", content=b"{not json",
                               headers={**api.admin(), "Content-Type": "application/json"})
    assert response.status_code == 400


def test_uploads_csv_ndjson_parquet(api: Api) -> None:
    _community(api)
    csv = "sensor_id,channel,ts,value\n" + "\n".join(
        f"{SENSOR},energy_import,{DAY}T0{h}:00:00Z,{h}" for h in range(1, 4))
    response = api.client.post("/api/telemetry/readings", content=csv.encode(),
                               headers={**api.admin(), "Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    ndjson = "\n".join(
        f'{{"sensor_id": "{OTHER}", "channel": "energy_export", "ts": "{DAY}T0{h}:00:00Z",'
        f' "value": {h * 2}}}' for h in range(1, 4))
    response = api.client.post("/api/telemetry/readings", content=ndjson.encode(),
                               headers={**api.admin(), "Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    table = pa.table({"sensor_id": [SENSOR] * 2, "channel": ["power"] * 2,
                      "ts": pa.array([1772409600000, 1772409660000], pa.timestamp("ms", "UTC")),
                      "value": [1.5, 2.5]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    response = api.client.post("/api/telemetry/readings", content=sink.getvalue(), headers={
        **api.admin(), "Content-Type": "application/vnd.apache.parquet"})
    assert response.status_code == 200, response.text
    bad = "sensor_id,channel,ts,value\n" + f"{SENSOR},power,{DAY}T00:00:00,1\n"
    response = api.client.post("/api/telemetry/readings", content=bad.encode(),
                               headers={**api.admin(), "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {"index": 0, "code": "invalid_timestamp",
                                            "message": response.json()["errors"][0]["message"]}
    response = api.client.post("/api/telemetry/readings", content=b"\x00garbage", headers={
        **api.admin(), "Content-Type": "application/vnd.apache.parquet"})
    assert response.status_code == 400


@pytest.mark.parametrize("media_type", ["text/csv", "application/vnd.apache.parquet"])
def test_an_upload_repeating_a_reading_keeps_its_last_value(api: Api, media_type: str) -> None:
    _community(api)
    rows = [(f"{DAY}T01:00:00Z", 1.0), (f"{DAY}T02:00:00Z", 2.0), (f"{DAY}T01:00:00Z", 7.0)]
    if media_type == "text/csv":
        body = ("sensor_id,channel,ts,value\n" + "\n".join(
            f"{SENSOR},energy_import,{ts},{value}" for ts, value in rows)).encode()
    else:
        sink = io.BytesIO()
        pq.write_table(pa.table({"sensor_id": [SENSOR] * 3, "channel": ["energy_import"] * 3,
                                 "ts": [ts for ts, _ in rows],
                                 "value": [value for _, value in rows]}), sink)
        body = sink.getvalue()
    headers = {**api.admin(), "Content-Type": media_type}
    params = {"sensor_id": SENSOR, "channel": "energy_import", "from": f"{DAY}T00:00:00Z",
              "to": f"{DAY}T03:00:00Z"}
    first = api.client.post("/api/telemetry/readings", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"] == 2, first.text
    stored = api.client.get("/api/telemetry/readings", params=params, headers=api.admin())
    assert [(item["ts"][11:16], item["value"]) for item in stored.json()["items"]] == [
        ("01:00", 7.0), ("02:00", 2.0)]
    again = api.client.post("/api/telemetry/readings", content=body, headers=headers)
    assert again.json()["replaced"] == 2
    assert api.client.get("/api/telemetry/readings", params=params,
                          headers=api.admin()).json() == stored.json()


def test_series_downsamples_keeping_extremes(loaded: Api) -> None:
    api = loaded
    values = [0.0] * 600
    values[333] = 5000.0
    _ingest(api, _rows(OTHER, "power", values))
    response = api.client.get("/api/telemetry/series", params={
        "sensor_id": [OTHER, SENSOR], "channel": "power", "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T23:00:00Z", "max_points": 40}, headers=api.admin())
    assert response.status_code == 200, response.text
    first, second = response.json()["series"]
    assert first["downsampled"] and first["raw_count"] == 600
    assert len(first["ts"]) <= 40 and 5000.0 in first["value"]
    assert first["ts"][0] == f"{DAY}T00:00:00.000Z" and first["ts"][-1] == f"{DAY}T09:59:00.000Z"
    assert second["sensor_id"] == SENSOR and second["raw_count"] == 120
    assert len(second["ts"]) <= 40 and second["value"][-1] == 119.0
    few = api.client.get("/api/telemetry/series", params={
        "sensor_id": SENSOR, "channel": "power", "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T00:10:00Z", "max_points": 40}, headers=api.admin()).json()["series"][0]
    assert not few["downsampled"] and few["value"] == [float(i) for i in range(10)]


def test_foreign_sensor_is_404_for_operator_of_another_community(api: Api) -> None:
    _community(api, "alpha")
    _community(api, "beta", sensors=("sens-z",), operator="op@beta.test")
    operator = api.login("op@beta.test")
    for path, params in (("/api/telemetry/latest", {"sensor_id": SENSOR}),
                         ("/api/telemetry/series", {"sensor_id": SENSOR, "channel": "power",
                                                    "from": f"{DAY}T00:00:00Z",
                                                    "to": f"{DAY}T01:00:00Z"})):
        response = api.client.get(path, params=params, headers=operator)
        assert response.status_code == 404, path
    refused = _ingest(api, _rows(SENSOR, "power", [1.0]), headers=operator)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "unknown_sensor"
    own = _ingest(api, _rows("sens-z", "power", [1.0]), headers=operator)
    assert own.status_code == 200


def test_member_sees_own_sensor_only_and_cannot_ingest(loaded: Api) -> None:
    api = loaded
    member = api.login("m0@alpha.test")
    assert api.client.get("/api/telemetry/latest", params={"sensor_id": SENSOR},
                          headers=member).status_code == 200
    assert api.client.get("/api/telemetry/latest", params={"sensor_id": OTHER},
                          headers=member).status_code == 404
    assert _ingest(api, _rows(SENSOR, "power", [1.0]), headers=member).status_code == 403
    sensors = api.client.get("/api/telemetry/communities/alpha/sensors", headers=member)
    assert [item["sensor_id"] for item in sensors.json()["sensors"]] == [SENSOR]


def test_community_sensors_discovery(loaded: Api) -> None:
    api = loaded
    response = api.client.get("/api/telemetry/communities/alpha/sensors", headers=api.admin())
    assert response.status_code == 200
    by_id = {item["sensor_id"]: item for item in response.json()["sensors"]}
    assert by_id[OTHER]["channels"] == []
    (power,) = by_id[SENSOR]["channels"]
    assert power == {"channel": "power", "unit": "W", "first_ts": f"{DAY}T00:00:00.000Z",
                     "last_ts": f"{DAY}T01:59:00.000Z", "latest_value": 119.0}
    assert api.client.get("/api/telemetry/communities/nowhere/sensors",
                          headers=api.admin()).status_code == 404


def test_aggregates_hourly(loaded: Api) -> None:
    api = loaded
    response = api.client.get("/api/telemetry/aggregates", params={
        "sensor_id": SENSOR, "channel": "power", "from": f"{DAY}T00:00:00Z",
        "to": f"{DAY}T02:00:00Z", "bucket": "hour"}, headers=api.admin())
    assert response.status_code == 200, response.text
    buckets = response.json()["series"][0]["buckets"]
    assert [b["count"] for b in buckets] == [60, 60]
    assert buckets[0] == {"start": f"{DAY}T00:00:00.000Z", "end": f"{DAY}T01:00:00.000Z",
                          "count": 60, "avg": 29.5, "min": 0.0, "max": 59.0, "sum": 1770.0,
                          "first": 0.0, "last": 59.0}
    both = api.client.get("/api/telemetry/aggregates", params={
        "sensor_id": SENSOR, "community": "alpha", "channel": "power", "bucket": "hour",
        "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T02:00:00Z"}, headers=api.admin())
    assert both.status_code == 400


def test_metrics_and_daily(loaded: Api) -> None:
    api = loaded
    response = api.client.get("/api/telemetry/metrics", params={"sensor_id": [SENSOR, OTHER]},
                              headers=api.admin())
    assert response.status_code == 200
    first, second = response.json()["items"]
    assert first["power"] == {"ts": f"{DAY}T01:59:00.000Z", "value": 119.0}
    assert second["power"] is None and first["timezone"] == "Europe/Rome"
    daily = api.client.get("/api/telemetry/daily", params={
        "sensor_id": SENSOR, "from": "2026-03-01", "to": "2026-03-03"}, headers=api.admin())
    assert daily.status_code == 200
    (day,) = daily.json()["days"]
    assert day["day"] == DAY and day["readings"] == 120 and day["power_max_w"] == 119.0
    too_long = api.client.get("/api/telemetry/daily", params={
        "sensor_id": SENSOR, "from": "2025-01-01", "to": "2026-03-03"}, headers=api.admin())
    assert too_long.status_code == 422


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "parquet"])
def test_exports(loaded: Api, file_format: str) -> None:
    api = loaded
    response = api.client.get("/api/telemetry/export", params={
        "sensor_id": SENSOR, "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T01:00:00Z",
        "format": file_format}, headers=api.admin())
    assert response.status_code == 200, response.text
    if file_format == "csv":
        lines = response.text.strip().splitlines()
        assert lines[0] == "sensor_id,channel,ts,value" and len(lines) == 61
        assert lines[1] == f"{SENSOR},power,{DAY}T00:00:00.000Z,0.0"
    elif file_format == "parquet":
        table = pq.read_table(io.BytesIO(response.content))
        assert table.num_rows == 60 and table.column_names == ["sensor_id", "channel", "ts",
                                                                "value"]
    else:
        assert response.content[:2] == b"PK"


def test_webhook_with_ingest_key(loaded: Api) -> None:
    api = loaded
    created = api.client.post(f"/api/admin/communities/alpha/sensors/{OTHER}/ingest-key",
                              headers=api.admin())
    assert created.status_code == 201
    key = created.json()["key"]
    body = {"readings": [{"channel": "soc", "ts": f"{DAY}T10:00:00Z", "value": 55}]}
    pushed = api.client.post(f"/api/webhook/sensors/{OTHER}", json=body,
                             headers={"X-Ingest-Key": key})
    assert pushed.status_code == 200, pushed.text
    assert api.client.post(f"/api/webhook/sensors/{SENSOR}", json=body,
                           headers={"X-Ingest-Key": key}).status_code == 401
    assert api.client.post(f"/api/webhook/sensors/{OTHER}", json=body,
                           headers={"X-Ingest-Key": key + "x"}).status_code == 401
    big = {"readings": [body["readings"][0]] * 2000}
    assert api.client.post(f"/api/webhook/sensors/{OTHER}", json=big,
                           headers={"X-Ingest-Key": key}).status_code == 413
    rotated = api.client.post(f"/api/admin/communities/alpha/sensors/{OTHER}/ingest-key",
                              headers=api.admin())
    assert api.client.post(f"/api/webhook/sensors/{OTHER}", json=body,
                           headers={"X-Ingest-Key": key}).status_code == 401
    assert api.client.post(f"/api/webhook/sensors/{OTHER}", json=body,
                           headers={"X-Ingest-Key": rotated.json()["key"]}).status_code == 200
    deleted = api.client.delete(f"/api/admin/communities/alpha/sensors/{OTHER}/ingest-key",
                                headers=api.admin())
    assert deleted.status_code == 204
    assert api.client.delete(f"/api/admin/communities/alpha/sensors/{OTHER}/ingest-key",
                             headers=api.admin()).status_code == 404
    assert api.client.post("/api/admin/communities/alpha/sensors/nope/ingest-key",
                           headers=api.admin()).status_code == 404


def test_health_reports_telemetry(loaded: Api) -> None:
    response = loaded.client.get("/api/health", headers=loaded.admin())
    assert response.status_code == 200
    telemetry = response.json()["telemetry"]
    assert telemetry["status"] == "ok" and telemetry["readings"] == 120
    assert telemetry["last_reading_at"] == f"{DAY}T01:59:00.000Z"


# -- a town of two areas: paging raw readings, week and month buckets ---------------------

TOWN_SENSORS = {"north-alice": "alice", "north-bob": "bob", "south-carol": "carol"}


def _town(api: Api) -> None:
    """Community borgo in Rome: area north (alice, bob) and south (carol), each member with
    a meter of their own, and an operator."""
    doc = community_doc("borgo", {
        "op": member_doc("borgo-op", user_id="op@borgo.test", role="operator"),
        "alice": member_doc("alice", user_id="alice@borgo.test", sensors=("north-alice",)),
        "bob": member_doc("bob", user_id="bob@borgo.test", sensors=("north-bob",)),
        "carol": member_doc("carol", user_id="carol@borgo.test", area="south",
                            sensors=("south-carol",)),
    })
    community = doc["community"]
    community["areas"]["south"] = {"name": "South", "boundary": {
        "source": "gse_cabine_primarie", "id": "AC-borgo-2"}, "topology": ["AC-borgo-2"]}
    community["topology"].append({"id": "AC-borgo-2", "type": "primary_substation"})
    api.import_yaml(doc)


def _all_pages(api: Api, headers: dict[str, str], sensor: str, channel: str, low: str,
               high: str, limit: int = 100) -> tuple[list[tuple[str, float]], int]:
    """Every reading of [low, high), following `next_cursor` to the end; and how many pages
    it took."""
    params: dict[str, Any] = {"sensor_id": sensor, "channel": channel, "from": low, "to": high,
                              "limit": limit}
    readings: list[tuple[str, float]] = []
    pages = 0
    while True:
        response = api.client.get("/api/telemetry/readings", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["sensor_id"] == sensor and body["channel"] == channel
        assert len(body["items"]) <= limit
        readings += [(item["ts"], item["value"]) for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            return readings, pages
        assert body["items"], "a page with a cursor after it holds readings"
        params["cursor"] = body["next_cursor"]


def test_raw_readings_page_through_each_sensor_exactly_once_in_order(api: Api) -> None:
    _town(api)
    # Interleaved instants: alice every 7 minutes, bob every 5, carol every 11, from
    # 23:50Z the day before to past the range's end (one reading on `to`, excluded).
    written: dict[str, list[tuple[str, float]]] = {}
    rows: list[dict[str, Any]] = []
    steps_and_bases = ((7, 1000.0), (5, 2000.0), (11, 3000.0))
    for sensor, (step, base) in zip(TOWN_SENSORS, steps_and_bases, strict=True):
        minutes = [-10, *range(0, 120, step), 120]
        for minute in minutes:
            hour, rest = divmod(minute, 60)
            ts = (f"2026-03-01T23:{50 + minute + 10:02d}:00Z" if minute < 0 else
                  f"{DAY}T{hour:02d}:{rest:02d}:00Z")
            rows.append({"sensor_id": sensor, "channel": "power", "ts": ts,
                         "value": base + minute})
        written[sensor] = [(f"{DAY}T{m // 60:02d}:{m % 60:02d}:00.000Z", base + m)
                           for m in minutes if 0 <= m < 120]
    rows.reverse()  # the order written is not the order read
    assert _ingest(api, rows).status_code == 200
    low, high = f"{DAY}T00:00:00Z", f"{DAY}T02:00:00Z"
    for sensor, expected in written.items():
        for limit in (1, 4, len(expected)):
            readings, pages = _all_pages(api, api.admin(), sensor, "power", low, high, limit)
            assert readings == expected, (sensor, limit)
            assert pages == -(-len(expected) // limit), (sensor, limit)  # no empty last page
    # A member pages through her own meter only; her neighbour's answers 404 with or
    # without a cursor.
    alice = api.login("alice@borgo.test")
    assert _all_pages(api, alice, "north-alice", "power", low, high, 3)[0] == written[
        "north-alice"]
    first = api.client.get("/api/telemetry/readings", headers=alice, params={
        "sensor_id": "north-alice", "channel": "power", "from": low, "to": high, "limit": 3})
    for cursor in (None, first.json()["next_cursor"]):
        params = {"sensor_id": "north-bob", "channel": "power", "from": low, "to": high,
                  **({"cursor": cursor} if cursor else {})}
        foreign = api.client.get("/api/telemetry/readings", params=params, headers=alice)
        assert foreign.status_code == 404 and foreign.json()["code"] == "sensor_not_found"


@pytest.mark.parametrize("cursor", ["mm8ey6ao!", "MM8EY6AO", "0123456789abcd", "", "-"])
def test_a_tampered_cursor_is_refused_cleanly(api: Api, cursor: str) -> None:
    _town(api)
    assert _ingest(api, _rows("north-alice", "power", [1.0, 2.0, 3.0])).status_code == 200
    params = {"sensor_id": "north-alice", "channel": "power", "from": f"{DAY}T00:00:00Z",
              "to": f"{DAY}T01:00:00Z", "limit": 1}
    issued = api.client.get("/api/telemetry/readings", params=params, headers=api.admin())
    assert issued.json()["next_cursor"] is not None
    response = api.client.get("/api/telemetry/readings", params={**params, "cursor": cursor},
                              headers=api.admin())
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "bad_request" and "cursor" in body["detail"]
    assert cursor not in body["detail"] or cursor in ("", "-")  # the value is not echoed
