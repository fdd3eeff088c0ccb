"""A real GraphQL client (gql, over HTTP) against a live `commonwatt serve --demo`: the seed's
flow of facilities, then reading types, then readings and an analysis in one query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

from tests.clients import DemoServer, demo_server

DAY = "2026-03-02"
PRODUCER, CONSUMER = "sens-0001", "sens-0002"  # the town hall's meters in valle-verde


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("graphql-demo")) as running:
        yield running


def _token(server: DemoServer) -> str:
    response = httpx.post(f"{server.base_url}/auth/login", timeout=30,
                          json={"email": server.email, "password": server.password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _client(server: DemoServer, token: str) -> Client:
    transport = HTTPXTransport(url=f"{server.base_url}/graphql", timeout=60,
                               headers={"Authorization": f"Bearer {token}"})
    return Client(transport=transport, fetch_schema_from_transport=True)


def _readings(server: DemoServer, token: str) -> None:
    rows = [{"sensor_id": sensor, "channel": channel, "ts": f"{DAY}T{hour:02d}:00:00Z",
             "value": value}
            for hour in range(8, 17)
            for sensor, channel, value in ((PRODUCER, "energy_produced", 900.0),
                                           (PRODUCER, "energy_export", 600.0),
                                           (CONSUMER, "energy_import", 400.0))]
    response = httpx.post(f"{server.base_url}/telemetry/readings", json={"readings": rows},
                          headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert response.status_code == 200, response.text


FACILITIES = gql("{ communities { nodes { key name timezone } } }")
READING_TYPES = gql("""query($key: String!) { community(key: $key) {
  readingTypes { channel unit firstReading lastReading } } }""")
READINGS_AND_ANALYSIS = gql("""
query Analysis($key: String!, $from: DateTime!, $to: DateTime!, $day: Date!) {
  production: sensor(id: "sens-0001") {
    readings(channel: energy_produced, from: $from, to: $to, maxPoints: 100) {
      rawCount points { ts value } }
  }
  consumption: sensor(id: "sens-0002") {
    aggregates(channel: energy_import, bucket: DAY, from: $from, to: $to) { start sum }
  }
  community(key: $key) {
    energyBalance(from: $day, to: $day) {
      timezone
      totals { producedWh fedInWh withdrawnWh sharedWh selfConsumptionRate selfSufficiencyRate }
    }
  }
}""")


def test_the_seed_flow_through_a_graphql_client(server: DemoServer) -> None:
    token = _token(server)
    _readings(server, token)
    with _client(server, token) as session:
        facilities = session.execute(FACILITIES)["communities"]["nodes"]
        assert "valle-verde" in [facility["key"] for facility in facilities]
        types = session.execute(READING_TYPES, variable_values={"key": "valle-verde"})
        channels = {item["channel"]: item for item in types["community"]["readingTypes"]}
        assert set(channels) >= {"energy_produced", "energy_export", "energy_import"}
        assert channels["energy_import"]["lastReading"] == f"{DAY}T16:00:00.000Z"
        answer: dict[str, Any] = session.execute(READINGS_AND_ANALYSIS, variable_values={
            "key": "valle-verde", "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:59:59Z",
            "day": DAY})
    assert answer["production"]["readings"]["rawCount"] == 9
    assert sum(point["value"] for point in answer["production"]["readings"]["points"]) == 8100
    assert sum(bucket["sum"] for bucket in answer["consumption"]["aggregates"]) == 3600
    totals = answer["community"]["energyBalance"]["totals"]
    assert totals["fedInWh"] == 5400 and totals["withdrawnWh"] >= 3600
    assert totals["sharedWh"] == min(totals["fedInWh"], totals["withdrawnWh"])
    assert totals["selfSufficiencyRate"] == pytest.approx(
        totals["sharedWh"] / totals["withdrawnWh"])
    print("\nanswer:", answer)


def test_a_client_sees_errors_with_rests_codes(server: DemoServer) -> None:
    with _client(server, _token(server)) as session, pytest.raises(TransportQueryError) as caught:
        session.execute(gql('{ sensor(id: "no-such-sensor") { id } }'))
    assert caught.value.errors is not None
    assert caught.value.errors[0]["extensions"]["code"] == "sensor_not_found"


def test_without_a_token_a_client_gets_401(server: DemoServer) -> None:
    response = httpx.post(f"{server.base_url}/graphql", json={"query": "{ me { email } }"},
                          timeout=30)
    assert response.status_code == 401

