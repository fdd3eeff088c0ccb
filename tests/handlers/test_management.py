"""The JSON bundle import over HTTP (POST /admin/import): what it stores, read back through
the API; a dry run; an existing community (409, then `force`); a body over the cap (413)."""

from __future__ import annotations

import json
from typing import Any

from tests.factories import Api, community_doc, member_doc

IMPORT = "/api/admin/import"


def _town(key: str) -> dict[str, Any]:
    """Two areas, members of every status, meters with PODs."""
    people = {"op": {"role": "operator"},
              "ada": {"role": "prosumer", "sensors": (f"{key}-ada",)},
              "ben": {"area": "south", "status": "pending", "sensors": (f"{key}-ben",)},
              "cyd": {"status": "suspended"},
              "dot": {"area": "south", "status": "inactive"}}
    document = community_doc(key, {
        name: member_doc(name, user_id=f"{name}@{key}.test", pods=(f"IT-{key}-{name}",),
                         **fields)
        for name, fields in people.items()})
    community = document["community"]
    community["areas"]["south"] = {"name": "South", "boundary": {
        "source": "gse_cabine_primarie", "id": f"AC-{key}-2"}, "topology": [f"AC-{key}-2"]}
    community["topology"].append({"id": f"AC-{key}-2", "type": "primary_substation"})
    return document


def _members(api: Api, key: str) -> dict[str, tuple[str, str]]:
    """Each member's (area, status), as the API lists them."""
    response = api.client.get(f"/api/admin/communities/{key}/members", headers=api.admin(),
                              params={"limit": 100})
    assert response.status_code == 200, response.text
    return {item["key"]: (item["area"], item["status"]) for item in response.json()["items"]}


def test_a_json_bundle_is_stored_whole_and_read_back(api: Api) -> None:
    response = api.client.post(IMPORT, headers=api.admin(), json={"bundle": _town("borgo")})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["community_key"] == "borgo" and report["action"] == "created"
    assert report["inserted"]["areas"] == 2 and report["inserted"]["members"] == 5
    assert _members(api, "borgo") == {
        "op": ("north", "active"), "ada": ("north", "active"), "ben": ("south", "pending"),
        "cyd": ("north", "suspended"), "dot": ("south", "inactive")}
    sensor = api.client.get("/api/admin/lookup/community-by-sensor-id/borgo-ada",
                            headers=api.admin())
    assert sensor.status_code == 200, sensor.text
    assert sensor.json()["community"]["id"] == "borgo"
    assert sensor.json()["member"]["key"] == "ada"
    # Another community imported beside it leaves it as it was.
    assert api.client.post(IMPORT, headers=api.admin(),
                           json={"bundle": _town("pieve")}).status_code == 200
    assert set(_members(api, "borgo")) == {"op", "ada", "ben", "cyd", "dot"}


def test_a_dry_run_reports_and_writes_nothing(api: Api) -> None:
    response = api.client.post(IMPORT, headers=api.admin(),
                               json={"bundle": _town("borgo"), "dry_run": True})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["action"] == "created"
    assert report["inserted"]["members"] == 5
    missing = api.client.get("/api/admin/communities/borgo", headers=api.admin())
    assert missing.status_code == 404


def test_an_existing_community_is_409_until_forced(api: Api) -> None:
    assert api.client.post(IMPORT, headers=api.admin(),
                           json={"bundle": _town("borgo")}).status_code == 200
    changed = _town("borgo")
    del changed["members"]["dot"]
    changed["members"]["ada"]["area"] = "south"
    again = api.client.post(IMPORT, headers=api.admin(), json={"bundle": changed})
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "community_exists"
    assert "dot" in _members(api, "borgo")  # the refusal stored nothing
    forced = api.client.post(IMPORT, headers=api.admin(),
                             json={"bundle": changed, "force": True})
    assert forced.status_code == 200, forced.text
    members = _members(api, "borgo")
    assert "dot" not in members and members["ada"] == ("south", "active")


def test_a_body_over_the_cap_is_413_and_stores_nothing(api: Api) -> None:
    document = _town("borgo")
    document["community"]["description"] = "x" * (api.runtime.settings.max_body_bytes + 1)
    response = api.client.post(IMPORT, headers={**api.admin(),
                                                "Content-Type": "application/json"},
                               content=json.dumps({"bundle": document}))
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "body_too_large"
    missing = api.client.get("/api/admin/communities/borgo", headers=api.admin())
    assert missing.status_code == 404
