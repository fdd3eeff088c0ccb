"""Deleting readings: DELETE /telemetry/readings, and a purged member's meters' readings."""

from __future__ import annotations

from typing import Any

import pytest

from storage.telemetry.compaction import compact
from tests.factories import Api
from tests.handlers.test_telemetry import OTHER, SENSOR, _community, _ingest

DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")
URL = "/api/telemetry/readings"


def _hourly(sensor: str, channel: str, value: float) -> list[dict[str, Any]]:
    return [{"sensor_id": sensor, "channel": channel, "ts": f"{day}T{hour:02d}:00:00Z",
             "value": value} for day in DAYS for hour in range(24)]


@pytest.fixture
def loaded(api: Api) -> Api:
    """Two sensors of alpha, hourly power and energy over three days, the first two sealed."""
    _community(api, operator="op@alpha.test")
    for sensor in (SENSOR, OTHER):
        for channel, value in (("power", 100.0), ("energy_import", 10.0)):
            assert _ingest(api, _hourly(sensor, channel, value)).status_code == 200
    compact(api.runtime.telemetry, quiet_ms=0)
    assert _ingest(api, _hourly(OTHER, "power", 100.0)[-2:]).status_code == 200  # day 3 unsealed
    return api


def _get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(f"/api/telemetry/{path}", params=params, headers=api.admin())
    assert response.status_code == 200, response.text
    return response.json()


def _figures(api: Api, sensor: str) -> dict[str, Any]:
    whole = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-04T00:00:00Z"}
    return {
        "raw": len(_get(api, "readings", sensor_id=sensor, channel="energy_import", limit=1000,
                        **whole)["items"]),
        "series": _get(api, "series", sensor_id=sensor, channel="energy_import",
                       **whole)["series"][0]["raw_count"],
        "day_sums": [bucket["sum"] for bucket in _get(
            api, "aggregates", sensor_id=sensor, channel="energy_import", bucket="day",
            timezone="UTC", **whole)["series"][0]["buckets"]],
        "power_count": sum(bucket["count"] for bucket in _get(
            api, "aggregates", sensor_id=sensor, channel="power", bucket="hour",
            **whole)["series"][0]["buckets"]),
        "latest": {(item["channel"], item["ts"]) for item in _get(
            api, "latest", sensor_id=sensor)["items"]},
        "daily": [day["energy_import_wh"] for day in _get(
            api, "daily", sensor_id=sensor, **{"from": DAYS[0], "to": DAYS[-1]})["days"]],
    }


def test_deleting_a_range_changes_every_read_of_that_sensor_only(loaded: Api) -> None:
    api = loaded
    other_before = _figures(api, OTHER)
    response = api.client.delete(URL, params={
        "sensor_id": SENSOR, "channel": "energy_import", "from": "2026-03-01T12:00:00Z",
        "to": "2026-03-04T00:00:00Z"}, headers=api.login("op@alpha.test"))
    assert response.status_code == 200, response.text
    assert response.json() == {"sensor_id": SENSOR, "channel": "energy_import",
                               "from": "2026-03-01T12:00:00.000Z",
                               "to": "2026-03-04T00:00:00.000Z", "deleted": 60}
    for _ in ("at once", "after the compaction"):
        figures = _figures(api, SENSOR)
        assert figures["raw"] == figures["series"] == 12
        # 00:00..11:00 stay; 00:00 counts for the day before (the energy up to midnight).
        assert figures["day_sums"] == [110.0]
        assert figures["power_count"] == 72
        assert ("energy_import", "2026-03-01T11:00:00.000Z") in figures["latest"]
        assert ("power", "2026-03-03T23:00:00.000Z") in figures["latest"]
        assert _figures(api, OTHER) == other_before
        compact(api.runtime.telemetry, quiet_ms=0)


def test_deleting_every_channel_and_the_whole_history(loaded: Api) -> None:
    api = loaded
    response = api.client.delete(URL, params={
        "sensor_id": SENSOR, "from": "1900-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"},
        headers=api.admin())
    assert response.json()["deleted"] == 144 and response.json()["channel"] is None
    assert _get(api, "latest", sensor_id=SENSOR)["items"] == []
    sensors = _get(api, "communities/alpha/sensors")["sensors"]
    assert next(item for item in sensors if item["sensor_id"] == SENSOR)["channels"] == []
    assert _figures(api, OTHER)["raw"] == 72


def test_a_long_deletion_takes_the_write_lock_a_day_at_a_time(
        loaded: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api = loaded
    store = api.runtime.telemetry
    original = store.writer
    transactions: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        transactions.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "writer", counting)
    response = api.client.delete(URL, params={
        "sensor_id": SENSOR, "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
        headers=api.admin())
    assert response.json()["deleted"] == 144
    # One per day the store lists, not per day asked: the three days, and 28 February,
    # listed for the energy reading at 1 March's midnight, which counts for it.
    assert len(transactions) == len(DAYS) + 1


@pytest.mark.parametrize(("who", "status", "code"), [
    ("m0@alpha.test", 403, "not_an_administrator"), ("ov@commonwatt.test", 403, "read_only")])
def test_members_and_overseers_cannot_delete(loaded: Api, who: str, status: int,
                                             code: str) -> None:
    api = loaded
    headers = api.login(who, role="overseer" if who.startswith("ov") else "user")
    response = api.client.delete(URL, params={
        "sensor_id": SENSOR, "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
        headers=headers)
    assert response.status_code == status and response.json()["code"] == code
    assert _figures(api, SENSOR)["raw"] == 72


def test_refusals_of_a_deletion(loaded: Api) -> None:
    api = loaded
    _community(api, key="beta", sensors=("sens-beta",), operator="op@beta.test")
    ranged = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}
    operator_b = api.login("op@beta.test")
    cases = [
        ({"sensor_id": SENSOR, **ranged}, operator_b, 404, "sensor_not_found"),
        ({"sensor_id": "nope", **ranged}, api.admin(), 404, "sensor_not_found"),
        ({"sensor_id": SENSOR, "from": ranged["to"], "to": ranged["from"]}, api.admin(), 400,
         "invalid_range"),
        ({"sensor_id": SENSOR, "from": "1800-01-01T00:00:00Z", "to": ranged["to"]},
         api.admin(), 400, "invalid_instant"),
        ({"sensor_id": SENSOR, **ranged}, {}, 401, "missing_token"),
    ]
    for params, headers, status, code in cases:
        response = api.client.delete(URL, params=params, headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), params
    assert _figures(api, SENSOR)["raw"] == 72


def test_a_purged_members_meters_readings_go_with_it(loaded: Api) -> None:
    api = loaded
    response = api.client.delete("/api/admin/communities/alpha/members/m0",
                                 params={"purge": "true"}, headers=api.admin())
    assert response.status_code == 200, response.text
    assert (response.json()["purged"], response.json()["assets_removed"]) == (True, 1)
    store = api.runtime.telemetry
    key = store.sensor_keys({SENSOR: 1})[SENSOR]
    with store.reader() as cursor:
        left = cursor.execute("SELECT count(*) FROM readings WHERE sensor = $s",
                              {"s": key}).fetchall()
    assert left == [(0,)]
    assert not any(sensor == key for sensor, _ in store.latest)
    assert _figures(api, OTHER)["raw"] == 72
