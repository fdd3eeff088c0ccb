"""Factories for test data: bundles, users, and authenticated API clients."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from storage.users import create_user

DEFAULT_PASSWORD = "correct horse battery staple"


def member_doc(
    key: str,
    *,
    area: str = "north",
    role: str = "consumer",
    status: str = "active",
    user_id: str | None = None,
    sensors: tuple[str, ...] = (),
    pods: tuple[str, ...] = (),
    extra_assets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One member of a bundle, with a meter for each sensor id and a POD for each pod id."""
    pod_ids = list(pods) or [f"IT-{key}-POD"]
    assets: dict[str, Any] = {}
    if sensors:
        assets["meter"] = {
            f"m-{key}-{index}": {"name": f"Meter {index} of {key}", "sensor_id": sensor,
                                 "meter_type": "bidirectional", "pod": pod_ids[0]}
            for index, sensor in enumerate(sensors)
        }
    if extra_assets:
        assets.update(copy.deepcopy(extra_assets))
    document: dict[str, Any] = {
        "user_id": user_id or f"{key}@example.org",
        "name": f"Member {key}",
        "role": role,
        "area": area,
        "status": status,
        "delivery_points": [{"id": pod, "type": "pod"} for pod in pod_ids],
    }
    if assets:
        document["assets"] = assets
    return document


def community_doc(key: str, members: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A valid one-area community bundle (format v0.7) named `key`."""
    substation = f"AC-{key}-1"
    return {
        "version": "1.0",
        "schema_version": "0.7",
        "community": {
            "id": key,
            "name": f"Community {key}",
            "settings": {"timezone": "Europe/Rome", "currency": "EUR"},
            "areas": {"north": {"name": "North", "boundary": {
                "source": "gse_cabine_primarie", "id": substation}, "topology": [substation]}},
            "topology": [{"id": substation, "type": "primary_substation"}],
        },
        "members": members if members is not None else {
            "alice": member_doc("alice", sensors=(f"{key}-s1",)),
        },
    }


def to_yaml(*documents: dict[str, Any]) -> bytes:
    """A multi-document YAML body."""
    return yaml.safe_dump_all(list(documents), sort_keys=False).encode()


def make_user(engine: Engine, email: str, *, role: str = "user",
              password: str = DEFAULT_PASSWORD) -> None:
    """An account, committed."""
    with Session(engine) as session:
        create_user(session, email=email, password=password, role=role)
        session.commit()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """An in-process client of one app, with helpers to log in as anyone."""

    client: TestClient
    engine: Engine
    runtime: Any = None  # the app's handlers.runtime.Runtime, where a test needs it
    _tokens: dict[str, str] = field(default_factory=dict)

    def login(self, email: str, *, role: str = "user") -> dict[str, str]:
        """Headers of a logged-in account (created on first use)."""
        if email not in self._tokens:
            make_user(self.engine, email, role=role)
            response = self.client.post("/api/auth/login",
                                        json={"email": email, "password": DEFAULT_PASSWORD})
            assert response.status_code == 200, response.text
            self._tokens[email] = response.json()["access_token"]
        return bearer(self._tokens[email])

    def admin(self) -> dict[str, str]:
        return self.login("root@commonwatt.test", role="admin")

    def put_asset(self, url: str, *, json: Any = None, member_key: str | None = None,
                  **kwargs: Any) -> Any:
        """PUT .../members/{member}/assets/{key}, given .../assets/{key} and a body naming its
        member (`member_key`, moved to the path; the body gains the key)."""
        community_url, key = url.rsplit("/assets/", 1)
        if isinstance(json, dict):
            member_key = json.get("member_key", member_key)
            json = {"key": key, **{name: value for name, value in json.items()
                                   if name != "member_key"}}
        return self.client.put(f"{community_url}/members/{member_key or 'unnamed'}/assets/{key}",
                               json=json, **kwargs)

    def delete_asset(self, url: str, member_key: str, **kwargs: Any) -> Any:
        """DELETE .../members/{member}/assets/{key}, given .../assets/{key}."""
        community_url, key = url.rsplit("/assets/", 1)
        return self.client.delete(f"{community_url}/members/{member_key}/assets/{key}",
                                  **kwargs)

    def put_point(self, url: str, *, json: Any = None, member_key: str | None = None,
                  **kwargs: Any) -> Any:
        """PUT .../members/{member}/delivery-points/{id}, given .../delivery-points/{id} and a
        body naming its member (`member_key`, moved to the path; the body gains the id)."""
        community_url, point_id = url.rsplit("/delivery-points/", 1)
        if isinstance(json, dict):
            member_key = json.get("member_key", member_key)
            json = {"id": point_id, **{name: value for name, value in json.items()
                                       if name != "member_key"}}
        return self.client.put(
            f"{community_url}/members/{member_key or 'unnamed'}/delivery-points/{point_id}",
            json=json, **kwargs)

    def delete_point(self, url: str, member_key: str, **kwargs: Any) -> Any:
        """DELETE .../members/{member}/delivery-points/{id}, given .../delivery-points/{id}."""
        community_url, point_id = url.rsplit("/delivery-points/", 1)
        return self.client.delete(
            f"{community_url}/members/{member_key}/delivery-points/{point_id}", **kwargs)

    def import_yaml(self, *documents: dict[str, Any], force: bool = False) -> Any:
        response = self.client.post(
            "/api/admin/import/yaml", params={"force": force}, content=to_yaml(*documents),
            headers={**self.admin(), "Content-Type": "application/yaml"})
        assert response.status_code == 200, response.text
        return response.json()


def invalid_request(response: Any, *where: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Assert the rec-registry's refusal of a request (422, `detail` listing `{loc, msg, type}`,
    `code: invalid_request`), naming each place given (`("query", "limit")`); its failures."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert body["code"] == "invalid_request" and body["status"] == 422, body
    failures: list[dict[str, Any]] = body["detail"]
    assert failures and all({"loc", "msg", "type"} <= set(item) for item in failures), body
    for place in where:
        assert any(tuple(item["loc"][:len(place)]) == place for item in failures), (place, body)
    return failures
