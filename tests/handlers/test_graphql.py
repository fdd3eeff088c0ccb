"""The GraphQL door, in process: the seed's flow, access as in REST, errors with REST's codes,
limits checked before a query runs, and the SDL snapshot."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query, print_schema

from handlers.graphql_schema import executable_schema
from tests.factories import Api, community_doc, member_doc
from tests.handlers.test_telemetry import DAY, _ingest, _rows

URL = "/api/graphql"
SNAPSHOT = Path(__file__).parent / "snapshots" / "schema.graphql"
SPAN = {"from": f"{DAY}T00:00:00Z", "to": f"{DAY}T12:00:00Z"}

FLOW = """
query Flow($from: DateTime!, $to: DateTime!, $day: Date!) {
  communities { nodes { key name timezone readingTypes { channel unit firstReading lastReading } } }
  community(key: "cer") {
    sensors { nodes {
      id memberKey
      readings(channel: energy_import, from: $from, to: $to) { rawCount points { ts value } }
      aggregates(channel: energy_import, bucket: HOUR, from: $from, to: $to) { start sum }
    } }
    energyBalance(from: $day, to: $day) {
      totals { withdrawnWh fedInWh sharedWh selfConsumptionRate selfSufficiencyRate }
      areas { area totals { withdrawnWh } }
      members { memberKey withdrawnWh }
    }
  }
}
"""


def _world(api: Api) -> None:
    """Community `cer`: area `solo` (a consumer), area `trio` (three prosumers, a suspended
    and a pending member, an operator); community `other` beside it with a sensor of its own."""
    members = {
        "lone": member_doc("lone", area="solo", user_id="lone@cer.test", sensors=("s-lone",)),
        **{key: member_doc(key, area="trio", role="prosumer", user_id=f"{key}@cer.test",
                           sensors=(f"s-{key}",)) for key in ("t1", "t2", "t3")},
        "gone": member_doc("gone", area="trio", status="suspended", user_id="gone@cer.test",
                           sensors=("s-gone",)),
        "new": member_doc("new", area="trio", status="pending", user_id="new@cer.test"),
        "op": member_doc("op", area="trio", role="operator", user_id="op@cer.test"),
    }
    document = community_doc("cer", members)
    document["community"]["areas"] = {
        key: {"name": key.title(), "topology": [f"AC-{key}"],
              "boundary": {"source": "gse_cabine_primarie", "id": f"AC-{key}"}}
        for key in ("solo", "trio")}
    document["community"]["topology"] = [{"id": f"AC-{key}", "type": "primary_substation"}
                                         for key in ("solo", "trio")]
    api.import_yaml(document, community_doc("other", {
        "zed": member_doc("zed", user_id="zed@other.test", sensors=("s-zed",))}))
    readings = [*_rows("s-lone", "energy_import", [700.0], start_minute=9 * 60),
                *_rows("s-zed", "energy_import", [123.0], start_minute=9 * 60)]
    for key, withdrawn, fed_in in (("t1", 1000.0, 100.0), ("t2", 500.0, 200.0),
                                   ("t3", 300.0, 900.0)):
        readings += _rows(f"s-{key}", "energy_import", [withdrawn], start_minute=9 * 60)
        readings += _rows(f"s-{key}", "energy_export", [fed_in], start_minute=9 * 60)
    assert _ingest(api, readings).status_code == 200


def _ask(api: Api, email: str, query: str, variables: dict[str, Any] | None = None,
         *, status: int = 200) -> dict[str, Any]:
    response = api.client.post(URL, json={"query": query, "variables": variables},
                               headers=api.login(email))
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@pytest.fixture
def world(api: Api) -> Api:
    _world(api)
    return api


def test_the_seed_flow_answers_registry_readings_and_the_balance_in_one_query(
        world: Api) -> None:
    body = _ask(world, "op@cer.test", FLOW, {**SPAN, "day": DAY})
    assert "errors" not in body, body
    data = body["data"]
    assert [node["key"] for node in data["communities"]["nodes"]] == ["cer"]
    cer = data["communities"]["nodes"][0]
    assert cer["timezone"] == "Europe/Rome"
    assert [item["channel"] for item in cer["readingTypes"]] == ["energy_import", "energy_export"]
    assert cer["readingTypes"][0] == {"channel": "energy_import", "unit": "Wh",
                                      "firstReading": f"{DAY}T09:00:00.000Z",
                                      "lastReading": f"{DAY}T09:00:00.000Z"}
    sensors = {node["id"]: node for node in data["community"]["sensors"]["nodes"]}
    assert sorted(sensors) == ["s-gone", "s-lone", "s-t1", "s-t2", "s-t3"]
    assert sensors["s-t1"]["readings"] == {
        "rawCount": 1, "points": [{"ts": f"{DAY}T09:00:00.000Z", "value": 1000.0}]}
    # An energy reading at 09:00 counts for 08:00-09:00 UTC (09:00-10:00 in Rome).
    assert sensors["s-t1"]["aggregates"] == [{"start": f"{DAY}T08:00:00.000Z", "sum": 1000.0}]
    balance = data["community"]["energyBalance"]
    assert balance["totals"]["withdrawnWh"] == 2500 and balance["totals"]["fedInWh"] == 1200
    assert 0 < balance["totals"]["selfConsumptionRate"] <= 1
    assert 0 < balance["totals"]["selfSufficiencyRate"] <= 1
    assert {area["area"]: area["totals"]["withdrawnWh"] for area in balance["areas"]} == {
        "solo": 700, "trio": 1800}
    rest = world.client.get("/api/telemetry/communities/cer/energy-balance",
                            params={"from": DAY, "to": DAY},
                            headers=world.login("op@cer.test")).json()
    assert balance["totals"]["sharedWh"] == rest["totals"]["shared_wh"]


def test_a_member_sees_its_own_part_only_as_in_rest(world: Api) -> None:
    body = _ask(world, "t1@cer.test", FLOW, {**SPAN, "day": DAY})
    assert "errors" not in body, body
    community = body["data"]["community"]
    assert [node["id"] for node in community["sensors"]["nodes"]] == ["s-t1"]
    balance = community["energyBalance"]
    assert [share["memberKey"] for share in balance["members"]] == ["t1"]
    assert [area["area"] for area in balance["areas"]] == ["trio"]
    assert balance["totals"] is None  # withheld: the rest would be one consumer's figures
    assert "700" not in str(body)
    registry = _ask(world, "t1@cer.test", """{ community(key: "cer") {
        seesAll members { nodes { key status } } assets { nodes { key sensorId } }
        deliveryPoints { nodes { id memberKey } } areas { key } } }""")["data"]["community"]
    assert registry["seesAll"] is False
    assert registry["members"]["nodes"] == [{"key": "t1", "status": "active"}]
    assert registry["assets"]["nodes"] == [{"key": "m-t1-0", "sensorId": "s-t1"}]
    assert registry["deliveryPoints"]["nodes"] == [{"id": "IT-t1-POD", "memberKey": "t1"}]
    assert [area["key"] for area in registry["areas"]] == ["solo", "trio"]


def test_the_operator_pages_through_every_member(world: Api) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = _ask(world, "op@cer.test",
                    "query($after: String) { community(key: \"cer\") { members(first: 3, "
                    "after: $after) { nodes { key status } pageInfo { hasNextPage endCursor } } "
                    "} }", {"after": after})["data"]["community"]["members"]
        seen += [node["key"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["lone", "t1", "t2", "t3", "gone", "new", "op"]


def test_another_communitys_sensor_is_not_found_as_a_missing_one_is(world: Api) -> None:
    query = "query($id: String!) { sensor(id: $id) { id latest { value } } }"
    theirs = _ask(world, "op@cer.test", query, {"id": "s-zed"})
    missing = _ask(world, "op@cer.test", query, {"id": "s-nowhere"})
    assert _codes(theirs) == _codes(missing) == ["sensor_not_found"]
    assert theirs["data"] is None and "123" not in str(theirs)
    assert theirs["errors"][0]["extensions"]["status"] == 404
    assert "Traceback" not in str(theirs)
    other = _ask(world, "op@cer.test", '{ community(key: "other") { key } }')
    assert _codes(other) == ["community_not_found"]
    suspended = _ask(world, "gone@cer.test", '{ community(key: "cer") { key } }')
    assert _codes(suspended) == ["not_a_member"]
    assert _ask(world, "gone@cer.test", "{ communities { nodes { key } } }")["data"] == {
        "communities": {"nodes": []}}


def test_a_member_reads_its_latest_values_and_not_its_neighbours(world: Api) -> None:
    mine = _ask(world, "t2@cer.test", '{ sensor(id: "s-t2") { latest { channel value } } }')
    assert mine["data"]["sensor"]["latest"] == [{"channel": "energy_import", "value": 500.0},
                                                {"channel": "energy_export", "value": 200.0}]
    theirs = _ask(world, "t2@cer.test", '{ sensors(ids: ["s-t2", "s-t3"]) { id } }')
    assert _codes(theirs) == ["sensor_not_found"]


def test_bad_arguments_answer_rests_codes(world: Api) -> None:
    backwards = _ask(world, "op@cer.test", """{ sensor(id: "s-t1") { readings(
        channel: power, from: "2026-03-02T10:00:00Z", to: "2026-03-02T09:00:00Z") {
        rawCount } } }""")
    assert _codes(backwards) == ["invalid_range"]
    no_offset = _ask(world, "op@cer.test", """{ sensor(id: "s-t1") { aggregates(
        channel: power, bucket: HOUR, from: "2026-03-02", to: "2026-03-03T00:00:00Z") {
        sum } } }""")
    assert _codes(no_offset) == ["invalid_instant"]
    long_balance = _ask(world, "op@cer.test", """{ community(key: "cer") {
        energyBalance(from: "2020-01-01", to: "2026-01-01") { timezone } } }""")
    assert _codes(long_balance) == ["range_too_long"]
    assert _codes(_ask(world, "op@cer.test", "{ me { email ")) == ["graphql_parse_failed"]
    assert _codes(_ask(world, "op@cer.test", "{ me { password } }")) == [
        "graphql_validation_failed"]


def test_me_and_jobs(world: Api) -> None:
    me = _ask(world, "t1@cer.test", "{ me { email role auth memberships { communityKey "
              "memberKey status } } jobs { id status } }")["data"]
    assert me["me"] == {"email": "t1@cer.test", "role": "user", "auth": "session",
                        "memberships": [{"communityKey": "cer", "memberKey": "t1",
                                         "status": "active"}]}
    assert me["jobs"] == []


def test_without_a_token_the_endpoint_answers_401_and_runs_nothing(world: Api) -> None:
    response = world.client.post(URL, json={"query": "{ __schema { types { name } } }"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    introspection = _ask(world, "t1@cer.test", "{ __type(name: \"Sensor\") { fields("
                         "includeDeprecated: true) { name isDeprecated deprecationReason } } }")
    fields = {field["name"]: field for field in introspection["data"]["__type"]["fields"]}
    # The full introspection query of GraphiQL, Altair and gql nests deeper than the depth
    # limit: introspection is left to graphql-core's own limit.
    full = _ask(world, "t1@cer.test", get_introspection_query(descriptions=True))
    assert "errors" not in full and full["data"]["__schema"]["queryType"]["name"] == "Query"
    assert fields["power"]["isDeprecated"] is True
    assert "latest(channel: power)" in fields["power"]["deprecationReason"]


def test_get_runs_queries_and_refuses_bad_variables(world: Api) -> None:
    headers = world.login("op@cer.test")
    answer = world.client.get(URL, params={"query": "query($k: String!) { community(key: $k)"
                                           " { name } }", "variables": '{"k": "cer"}'},
                              headers=headers)
    assert answer.status_code == 200
    assert answer.json()["data"] == {"community": {"name": "Community cer"}}
    refused = world.client.get(URL, params={"query": "{ me { email } }", "variables": "[1"},
                               headers=headers)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_variables"
    malformed = world.client.post(URL, json={"query": 7}, headers=headers)
    assert malformed.status_code == 400
    listed = world.client.post(URL, json={"query": "{ me { email } }", "variables": [1]},
                               headers=headers)
    assert listed.status_code == 400 and listed.json()["code"] == "invalid_variables"


def test_queries_over_the_limits_are_refused_before_they_run(world: Api) -> None:
    deep = "{ community(key: \"cer\") { sensors { nodes { readingTypes { channel } } } } }"
    settings = world.runtime.settings
    settings.graphql_max_depth = 4
    body = _ask(world, "op@cer.test", deep)
    assert _codes(body) == ["query_too_deep"] and "data" not in body
    settings.graphql_max_depth = 10
    aliases = "{ " + " ".join(f"a{index}: me {{ email }}" for index in range(25)) + " }"
    assert _codes(_ask(world, "op@cer.test", aliases)) == ["too_many_aliases"]
    costly = "{ communities(first: 500) { nodes { sensors(first: 1000) { nodes { " \
             "readings(channel: power, from: \"2026-03-02T00:00:00Z\", " \
             "to: \"2026-03-03T00:00:00Z\") { rawCount } } } } } }"
    body = _ask(world, "op@cer.test", costly)
    assert _codes(body) == ["query_too_costly"]
    assert body["errors"][0]["extensions"]["cost"] > settings.graphql_max_cost


def test_expensive_queries_past_the_callers_rate_answer_429(world: Api) -> None:
    settings = world.runtime.settings
    settings.graphql_expensive_cost = 50
    settings.graphql_expensive_per_minute = 2
    query = "{ community(key: \"cer\") { sensors(first: 100) { nodes { id } } } }"
    for _ in range(2):
        assert "errors" not in _ask(world, "op@cer.test", query)
    response = world.client.post(URL, json={"query": query}, headers=world.login("op@cer.test"))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["errors"][0]["extensions"]["code"] == "too_many_requests"
    # Cheap queries and other callers go on.
    assert "errors" not in _ask(world, "op@cer.test", "{ me { email } }")
    assert "errors" not in _ask(world, "t1@cer.test", query)


def test_the_sdl_matches_its_snapshot() -> None:
    """A change to the schema is a deliberate one: rewrite the snapshot with
    COMMONWATT_UPDATE_SNAPSHOT=1 and review its diff."""
    printed = print_schema(executable_schema()) + "\n"
    if os.environ.get("COMMONWATT_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(printed, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == printed


BIG_QUERY = """query($from: DateTime!, $to: DateTime!) { community(key: "big") {
  sensors(first: 1000) { nodes { id latest(channel: power) { ts value }
    aggregates(channel: power, bucket: HOUR, from: $from, to: $to) { start avg max } } } } }"""


def big_community(members: int = 40, per_member: int = 20) -> dict[str, Any]:
    """A community of members * per_member meters, in two areas (the benchmark's too)."""
    document = community_doc("big", {
        f"p{index}": member_doc(f"p{index}", user_id=f"p{index}@big.test", role="prosumer",
                                sensors=tuple(f"big-{index}-{meter}"
                                              for meter in range(per_member)))
        for index in range(members)})
    return document


def big_readings(sensor_ids: list[str]) -> list[dict[str, Any]]:
    """One power reading an hour through the day, for each sensor."""
    return [
        {"sensor_id": sensor, "channel": "power", "ts": f"{DAY}T{hour:02d}:30:00Z",
         "value": float(index + hour)}
        for index, sensor in enumerate(sensor_ids) for hour in range(24)]


def test_800_sensors_with_latest_and_a_days_hours_run_a_bounded_number_of_queries(
        api: Api) -> None:
    document = big_community()
    sensors = sorted(meter["sensor_id"] for member in document["members"].values()
                     for meter in member["assets"]["meter"].values())
    assert len(sensors) == 800
    api.import_yaml(document, community_doc("other"))
    rows = big_readings(sensors)
    for start in range(0, len(rows), 6400):
        assert _ingest(api, rows[start:start + 6400]).status_code == 200
    headers = api.login("root@commonwatt.test", role="admin")
    statements: list[str] = []
    readers = 0
    store = api.runtime.telemetry
    reader = store.reader

    def counting_reader(*args: Any, **kwargs: Any) -> Any:
        nonlocal readers
        readers += 1
        return reader(*args, **kwargs)

    def count(*args: Any) -> None:
        # The request runs on the event loop's thread ("asyncio-portal-...") and the threads
        # asyncio.to_thread lends it ("asyncio_N"). The server's own threads (the scheduler's
        # polls, the embedded worker delivering the import's webhook events) are not the
        # query's statements, and come more often the longer a loaded machine takes.
        thread = threading.current_thread().name
        if thread.startswith("asyncio"):
            statements.append(f"{thread}: {args[2]}")

    from sqlalchemy import event
    event.listen(api.engine, "before_cursor_execute", count)
    store.reader = counting_reader  # counts the telemetry queries; each still runs
    try:
        response = api.client.post(URL, json={"query": BIG_QUERY, "variables": {
            "from": f"{DAY}T00:00:00Z", "to": "2026-03-03T00:00:00Z"}},
            headers=headers)
    finally:
        event.remove(api.engine, "before_cursor_execute", count)
        del store.reader
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"][:2]
    nodes = body["data"]["community"]["sensors"]["nodes"]
    assert [node["id"] for node in nodes] == sensors
    first = nodes[0]
    index = sensors.index(first["id"])
    assert first["latest"] == [{"ts": f"{DAY}T23:30:00.000Z", "value": float(index + 23)}]
    assert len(first["aggregates"]) == 24 and first["aggregates"][5]["avg"] == index + 5
    # One aggregates query for the 800 sensors; latest values come from the store's index;
    # the registry is asked a handful of times (the caller, the community, its sensors).
    print(f"\n800 sensors: {len(statements)} registry statements, {readers} telemetry query")
    assert readers == 1
    assert len(statements) <= 12, "\n".join(statements)
