"""Attacks on telemetry over HTTP: costly queries, abandoned exports, upload bombs, formula
ids, error bodies that show the server's files, inputs that used to answer 500."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from handlers.app import create_app
from handlers.settings import Settings
from tests.factories import Api, to_yaml
from tests.handlers.test_telemetry import DAY, SENSOR, _community, _ingest, _rows

PARQUET = {"Content-Type": "application/vnd.apache.parquet"}
# The whole range of accepted instants (three centuries), beyond every cap.
TEN_MILLENNIA = {"from": "1900-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"}


def _temp_files(api: Api) -> list[Path]:
    return sorted(api.client.app.runtime.telemetry.temp_dir.iterdir())  # type: ignore[attr-defined]


# -- point 2: a request's cost is bounded before any work ---------------------------------


@pytest.mark.parametrize("bucket", ["15min", "hour", "day", "week", "month"])
def test_aggregates_over_ten_millennia_are_refused_before_any_bucket_is_built(
        api: Api, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _community(api)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bucket edges built for a refused query")

    monkeypatch.setattr("storage.telemetry.queries.buckets_for", never)
    response = api.client.get("/api/telemetry/aggregates", params={
        "community": "alpha", "channel": "power", "bucket": bucket, **TEN_MILLENNIA},
        headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] in ("query_too_large", "range_too_long")


@pytest.mark.parametrize(("bucket", "years"), [("15min", 2), ("hour", 6), ("day", 11),
                                               ("month", 21)])
def test_each_bucket_size_covers_a_bounded_range(api: Api, bucket: str, years: int) -> None:
    _community(api)
    response = api.client.get("/api/telemetry/aggregates", params={
        "sensor_id": SENSOR, "channel": "power", "bucket": bucket,
        "from": "2000-01-01T00:00:00Z", "to": f"{2000 + years}-01-01T00:00:00Z"},
        headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "range_too_long"


def test_a_series_covers_at_most_twenty_years(api: Api) -> None:
    _community(api)
    response = api.client.get("/api/telemetry/series", params={
        "sensor_id": SENSOR, "channel": "power", "max_points": 5000, **TEN_MILLENNIA},
        headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "range_too_long"


# -- point 3: temporary files go, whatever the client does ----------------------------------


def _export_leaving_early(api: Api, *, during_body: bool) -> list[dict[str, Any]]:
    """GET an export straight through the ASGI app, with a client that goes away before the
    body (its first receive says so) or while it is sent (sending raises, as a closed socket
    does under ASGI 2.4)."""
    app = api.client.app
    headers = [(b"authorization", api.admin()["Authorization"].encode())]
    query = f"sensor_id={SENSOR}&from={DAY}T00:00:00Z&to={DAY}T23:00:00Z&format=csv"
    scope = {"type": "http", "asgi": {"version": "3.0",
                                      "spec_version": "2.4" if during_body else "2.3"},
             "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/api/telemetry/export", "raw_path": b"/api/telemetry/export",
             "query_string": query.encode(), "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if during_body and message["type"] == "http.response.body":
            raise OSError("connection reset by peer")
        sent.append(message)

    async def call() -> None:
        with contextlib.suppress(Exception):  # the app may report the disconnect
            await app(scope, receive, send)

    api.client.portal.call(call)  # type: ignore[union-attr]
    return sent


@pytest.mark.parametrize("during_body", [False, True], ids=["before_body", "during_body"])
def test_an_export_abandoned_by_its_client_leaves_no_file(api: Api, during_body: bool) -> None:
    _community(api)
    assert _ingest(api, _rows(SENSOR, "power", [float(i) for i in range(600)])).status_code == 200
    sent = _export_leaving_early(api, during_body=during_body)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert [path.name for path in _temp_files(api)] == []


def test_files_an_earlier_run_left_in_the_spool_are_removed_at_start(
        settings: Settings) -> None:
    spool = settings.telemetry_path().parent / "telemetry.tmp"
    spool.mkdir(parents=True)
    for name in ("export-abandoned.csv", "upload-abandoned"):
        (spool / name).write_bytes(b"x" * 4096)
    app = create_app(settings)
    with app.test_client():
        assert list(spool.iterdir()) == []
    app.runtime.close()  # type: ignore[attr-defined]


@pytest.fixture
def capped_api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings.model_copy(update={"telemetry_upload_max_rows": 10_000}))
    with app.test_client() as client:
        yield Api(client=client, engine=app.runtime.engine)  # type: ignore[attr-defined]
    app.runtime.close()  # type: ignore[attr-defined]


def test_an_upload_of_more_readings_than_the_cap_is_refused(capped_api: Api) -> None:
    """A few KB of dictionary-encoded Parquet can hold millions of readings."""
    api = capped_api
    _community(api)
    count = 20_000
    table = pa.table({"sensor_id": pa.array([SENSOR] * count).dictionary_encode(),
                      "channel": pa.array(["power"] * count).dictionary_encode(),
                      "ts": pa.array([f"{DAY}T00:00:00Z"] * count).dictionary_encode(),
                      "value": pa.array([1.0] * count)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert buffer.tell() < 20_000
    response = api.client.post("/api/telemetry/readings", content=buffer.getvalue(),
                               headers={**api.admin(), **PARQUET})
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_readings"
    assert "10000" in response.json()["detail"]
    stored = api.client.get("/api/telemetry/latest", params={"sensor_id": SENSOR},
                            headers=api.admin())
    assert stored.json()["items"] == []
    assert _temp_files(api) == []


# -- point 6: sensor ids that a spreadsheet would run --------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","open")'


def test_a_sensor_id_that_is_a_formula_is_refused_on_asset_writes(api: Api) -> None:
    _community(api)
    response = api.put_asset("/api/admin/communities/alpha/assets/evil-meter", json={
        "member_key": "alpha-m0", "asset_type": "meter",
        "properties": {"name": "Evil", "sensor_id": FORMULA, "meter_type": "consumption",
                       "pod": "IT-alpha-m0-POD"}}, headers=api.admin())
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_sensor_id"


def test_a_sensor_id_that_is_a_formula_is_refused_on_import(api: Api) -> None:
    from tests.factories import community_doc, member_doc

    document = community_doc("beta", {"m": member_doc("beta-m", sensors=(FORMULA,))})
    response = api.client.post("/api/admin/import/yaml", content=to_yaml(document),
                               headers={**api.admin(), "Content-Type": "application/yaml"})
    assert response.status_code == 422
    assert [error["code"] for error in response.json()["errors"]] == ["invalid_sensor_id"]


@pytest.mark.parametrize("name", ["valle-verde.yaml", "two-communities.yaml"])
def test_the_example_bundles_still_import_unchanged(api: Api, name: str) -> None:
    body = (Path(__file__).parents[2] / "bundles" / "examples" / name).read_bytes()
    response = api.client.post("/api/admin/import/yaml", params={"force": True}, content=body,
                               headers={**api.admin(), "Content-Type": "application/yaml"})
    assert response.status_code == 200, response.text


# -- point 9: error bodies never show the server's files -----------------------------------


@pytest.mark.parametrize(("media_type", "body"), [
    ("application/vnd.apache.parquet", b"PAR1 this is not parquet at all"),
    ("application/vnd.apache.parquet", b"PAR1" + b"\0" * 64 + b"PAR1"),
    ("application/x-ndjson", b'{"sensor_id": "a", "channel": "power", "ts": 1, "value": [\n'),
    ("text/csv", b'sensor_id,channel,ts,value\n"a,power\n'),
])
def test_an_unreadable_upload_is_a_malformed_upload_without_paths(
        api: Api, settings: Settings, media_type: str, body: bytes) -> None:
    _community(api)
    response = api.client.post("/api/telemetry/readings", content=body,
                               headers={**api.admin(), "Content-Type": media_type})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "malformed_upload"
    text = response.text
    data_dir = str(settings.data_dir.resolve())
    leaks = ("/tmp", data_dir, str(settings.data_dir), ".parquet", "upload-",  # noqa: S108
             "telemetry.tmp")
    for leak in leaks:
        assert leak not in text, (leak, text)
    assert _temp_files(api) == []


# -- point 10: bad input is a 4xx, never a 500 -------------------------------------------


def test_a_parquet_value_column_of_structs_is_a_malformed_upload_naming_it(api: Api) -> None:
    _community(api)
    table = pa.table({"sensor_id": [SENSOR], "channel": ["power"],
                      "ts": [f"{DAY}T00:00:00Z"], "value": [{"watts": 1.0, "volts": 230.0}]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    response = api.client.post("/api/telemetry/readings", content=buffer.getvalue(),
                               headers={**api.admin(), **PARQUET})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "malformed_upload"
    assert "value" in response.json()["detail"] and "STRUCT" in response.json()["detail"]


def test_a_yaml_integer_beyond_pythons_conversion_limit_is_an_invalid_value(api: Api) -> None:
    body = b"version: '1.0'\nschema_version: '0.7'\ncommunity:\n  id: big\n  settings:\n" \
           b"    big: " + b"9" * 5000 + b"\n"
    response = api.client.post("/api/admin/import/yaml", content=body,
                               headers={**api.admin(), "Content-Type": "application/yaml"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_value"
