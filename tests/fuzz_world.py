"""The data a fuzzing run works on, made through the API, and the path and query values that
reach it: the reference bundles with readings, one of everything a path can name, and scratch
objects for each destructive operation so that deleting never starves the operations after it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from sqlmodel import Session, select
from starlette.testclient import TestClient

from bundles.parse import parse_yaml_documents
from storage import jobs as job_store
from storage.models import User
from tests.factories import DEFAULT_PASSWORD, bearer, community_doc, make_user, member_doc, to_yaml

ADMIN_EMAIL = "fuzz-admin@commonwatt.test"
# Valle Verde's operator and one of its active prosumers, from the reference bundle.
OPERATOR_EMAIL = "gestore@valleverde.example.org"
MEMBER_EMAIL = "mario.rossi@example.org"
ROLES = {"admin": ADMIN_EMAIL, "operator": OPERATOR_EMAIL, "member": MEMBER_EMAIL}
HOME_COMMUNITY = "valle-verde"

# Operations that remove what they name (or its key): each draws only from scratch objects
# made for it alone.
DESTRUCTIVE = ("delete_area", "rename_area", "delete_topology_node", "delete_member",
               "remove_member_delivery_point", "delete_member_asset", "delete_ingest_key",
               "delete_webhook", "delete_rule", "delete_token", "delete_dashboard",
               "remove_dashboard_widget", "cancel_job")
# Operations on the caller's own memberships (/user/...): they name the run's accounts' assets.
USER_OPERATION_PREFIXES = ("get_user_", "list_user_", "update_user_", "put_user_")
# Those among them that need a community of their own.
SCRATCH_COMMUNITIES = DESTRUCTIVE[:9]
# The stateful run's community: what it creates, changes and deletes through the spec's links.
STATEFUL_COMMUNITY = "scratch-stateful"
# Readings are stored for these days (UTC), so telemetry reads inside them find data.
READINGS_FROM = "2026-03-02T00:00:00Z"
READINGS_TO = "2026-03-04T00:00:00Z"
BROKER_SECRET = "fuzz-broker-secret-" + "s" * 24
WEBHOOK_TARGET = "http://127.0.0.1:9/commonwatt-fuzz"  # refused at once: deliveries fail fast


@dataclass
class World:
    """What the run may name: records of consistent path values, each for one pool (None for
    the shared data, an operationId for its scratch objects), and the secrets headers need."""

    records: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    community_sensors: dict[str, list[str]] = field(default_factory=dict)
    ingest_keys: dict[str, str] = field(default_factory=dict)

    def add(self, pool: str | None, **values: Any) -> None:
        self.records.append((pool, values))

    def path_choices(self, operation_id: str, names: frozenset[str], *,
                     writes: bool = False) -> list[dict[str, Any]]:
        """The distinct values of `names` that name something real, for this operation. A
        write never names the memberships the run signs in with, nor the member whose meters
        the device push signs for: a fuzzed status or role would lock later calls out."""
        protected = set(ROLES.values()) | {
            values["user_id"] for _, values in self.records
            if values.get("sensor_id") in self.ingest_keys and "user_id" in values}
        pool = operation_id if operation_id in DESTRUCTIVE else None
        if operation_id == "push_sensor_readings":
            return [{"sensor_id": sensor} for sensor in sorted(self.ingest_keys)]
        choices: list[dict[str, Any]] = []
        for record_pool, values in self.records:
            if operation_id == "create_ingest_key" and values.get("sensor_id") in self.ingest_keys:
                continue  # a new key would replace the one the device push signs with
            if operation_id.startswith(USER_OPERATION_PREFIXES) and values.get(
                    "user_id") not in ROLES.values():
                continue
            if writes and "member_key" in names and values.get("user_id") in protected:
                continue
            if record_pool == pool and names <= values.keys():
                projection = {name: values[name] for name in sorted(names)}
                if projection not in choices:
                    choices.append(projection)
        return choices


def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json() if response.content else None


def _walk_bundle(world: World, pool: str | None, document: dict[str, Any]) -> None:
    """Records for a community bundle's areas, topology, members, points, assets, sensors."""
    key = document["community"]["id"]
    world.add(pool, community_key=key)
    for area_key, area in document["community"].get("areas", {}).items():
        world.add(pool, community_key=key, area_key=area_key, area=area)
    for node in document["community"].get("topology", []):
        world.add(pool, community_key=key, node_id=node["id"], node=node)
    for member_key, member in document.get("members", {}).items():
        base = {"community_key": key, "member_key": member_key, "user_id": member["user_id"]}
        world.add(pool, **base)
        for point in member.get("delivery_points", []):
            world.add(pool, **base, point_id=point["id"], dp_id=point["id"], point=point)
        for asset_type, category in member.get("assets", {}).items():
            for asset_key, asset in category.items():
                sensor = asset.get("sensor_id")
                world.add(pool, **base, asset_key=asset_key, asset_type=asset_type,
                          asset=asset, **({"sensor_id": sensor} if sensor else {}))
                # Readings are taken only from active members' meters.
                if sensor and pool is None and member.get("status", "active") == "active":
                    world.community_sensors.setdefault(key, []).append(sensor)


def _scratch_bundle(operation_id: str) -> dict[str, Any]:
    """A small community of its own for one destructive operation: four members with a meter
    and two PODs each (the meter names the first), an area nobody is in, and a substation no
    area names."""
    key = "scratch-" + operation_id.replace("_", "-")
    members = {f"m{index}": member_doc(f"{key}-m{index}", user_id=f"m{index}@{key}.test",
                                       sensors=(f"{key}-s{index}",),
                                       pods=(f"IT-{key}-POD{index}", f"IT-{key}-POD{index}B"))
               for index in range(4)}
    document = community_doc(key, members)
    community = document["community"]
    community["areas"]["east"] = {"name": "East", "boundary": {
        "source": "gse_cabine_primarie", "id": f"AC-{key}-2"}, "topology": [f"AC-{key}-2"]}
    community["topology"] += [{"id": f"AC-{key}-2", "type": "primary_substation"},
                              {"id": f"CS-{key}-1", "type": "secondary_substation",
                               "parent": f"AC-{key}-1"},
                              {"id": f"CS-{key}-2", "type": "secondary_substation",
                               "parent": f"AC-{key}-1"}]
    return document


def _readings(sensors: list[str]) -> list[dict[str, Any]]:
    """Two days of quarter-hourly readings on the energy and power channels."""
    rows = []
    generator = random.Random(7)
    for index, sensor in enumerate(sensors):
        for step in range(2 * 96):
            day, minute = divmod(step * 15, 1440)
            ts = f"2026-03-0{2 + day}T{minute // 60:02d}:{minute % 60:02d}:00Z"
            sun = max(0.0, 1 - abs(minute - 750) / 360)
            rows += [{"sensor_id": sensor, "channel": "energy_export", "ts": ts,
                      "value": round(400 * sun * (1 + index % 3), 1)},
                     {"sensor_id": sensor, "channel": "energy_import", "ts": ts,
                      "value": round(80 + generator.random() * 120, 1)},
                     {"sensor_id": sensor, "channel": "power", "ts": ts,
                      "value": round(generator.uniform(-2000, 3000), 1)}]
    return rows


def build_world(client: TestClient, runtime: Any, reference_bundles: list[Path]) -> World:
    """Make, through the API, everything the run names; the records that name it."""
    world = World()
    engine = runtime.engine
    make_user(engine, ADMIN_EMAIL, role="admin")
    for email in (OPERATOR_EMAIL, MEMBER_EMAIL):
        make_user(engine, email)
    headers = {role: login(client, email) for role, email in ROLES.items()}
    admin = headers["admin"]

    documents = [document for path in reference_bundles
                 for document in parse_yaml_documents(path.read_bytes())]
    scratch = [_scratch_bundle(operation_id) for operation_id in SCRATCH_COMMUNITIES]
    stateful = _scratch_bundle("stateful")
    _ok(client.post("/api/admin/import/yaml", content=to_yaml(*documents, *scratch, stateful),
                    headers={**admin, "Content-Type": "application/yaml"}))
    for document in documents:
        _walk_bundle(world, None, document)
    for operation_id, document in zip(SCRATCH_COMMUNITIES, scratch, strict=True):
        _walk_bundle(world, operation_id, document)
    _walk_bundle(world, "stateful", stateful)

    sensors = [sensor for keys in world.community_sensors.values() for sensor in keys]
    for start in range(0, len(sensors), 10):
        _ok(client.post("/api/telemetry/readings", headers=admin,
                        json={"readings": _readings(sensors[start:start + 10])}))

    # Ingest keys: for the device push (shared sensors), and for deleting (scratch sensors).
    for sensor in world.community_sensors[HOME_COMMUNITY][:3]:
        created = _ok(client.post(f"/api/admin/communities/{HOME_COMMUNITY}/sensors/{sensor}"
                                  "/ingest-key", headers=admin), 201)
        world.ingest_keys[sensor] = created["key"]
    for pool, values in list(world.records):
        if pool == "delete_ingest_key" and "sensor_id" in values:
            _ok(client.post(f"/api/admin/communities/{values['community_key']}/sensors/"
                            f"{values['sensor_id']}/ingest-key", headers=admin), 201)

    _id_objects(world, client, headers)
    _jobs(world, client, runtime, admin)
    return world


def _id_objects(world: World, client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    """Tokens, webhook endpoints with messages, rules and dashboards with widgets: shared ones
    and scratch ones, in the home community and in the scratch communities."""
    admin = headers["admin"]
    for pool in (None, "delete_token"):
        for role, role_headers in headers.items():
            token = _ok(client.post("/api/tokens", headers=role_headers,
                                    json={"name": f"fuzz {role}", "expires_in_days": 30}), 201)
            world.add(pool, token_id=token["id"])
    for pool in (None, "delete_webhook"):
        community = HOME_COMMUNITY if pool is None else "scratch-delete-webhook"
        hooks = f"/api/admin/communities/{community}/webhooks"
        for index in range(3):
            endpoint = _ok(client.post(hooks, headers=admin, json={
                "url": f"{WEBHOOK_TARGET}/{index}", "description": f"fuzz {index}"}), 201)
            world.add(pool, community_key=community, endpoint_id=endpoint["id"])
            if pool is None:
                _ok(client.post(f"{hooks}/{endpoint['id']}/test", headers=admin), 202)
                for message in _ok(client.get(f"{hooks}/{endpoint['id']}/messages",
                                              headers=admin))["items"]:
                    world.add(None, community_key=community, endpoint_id=endpoint["id"],
                              message_id=message["id"])
    for pool in (None, "delete_rule"):
        community = HOME_COMMUNITY if pool is None else "scratch-delete-rule"
        for index, operator in enumerate(("gt", "lt", "between")):
            body: dict[str, Any] = {"name": f"fuzz {index}", "channel": "power",
                                    "operator": operator, "threshold": 2500}
            if operator == "between":
                body.update(threshold=-100, threshold_high=100)
            rule = _ok(client.post(f"/api/admin/communities/{community}/rules", headers=admin,
                                   json=body), 201)
            world.add(pool, community_key=community, rule_id=rule["id"])
    for pool in (None, "delete_dashboard", "remove_dashboard_widget"):
        for role_headers in headers.values():
            dashboard = _ok(client.post("/api/dashboards", headers=role_headers,
                                        json={"name": "Fuzz energy"}), 201)
            world.add(pool, dashboard_id=dashboard["id"])
            for x in (0, 6):
                widget = _ok(client.post(f"/api/dashboards/{dashboard['id']}/widgets",
                                         headers=role_headers, json={
                                             "kind": "balance", "x": x, "y": 0, "w": 6, "h": 4,
                                             "window": "P30D", "community": HOME_COMMUNITY}),
                             201)
                world.add(pool, dashboard_id=dashboard["id"], widget_id=widget["id"])


def _jobs(world: World, client: TestClient, runtime: Any, admin: dict[str, str]) -> None:
    """An export job with its file, an import job, and queued jobs (message never sent) for
    cancelling; each caller's own among them."""
    sensors = ",".join(world.community_sensors[HOME_COMMUNITY][:4])
    export = client.get("/api/telemetry/export", headers=admin, params={
        "sensor_id": sensors, "from": READINGS_FROM, "to": READINGS_TO, "format": "csv"})
    assert export.status_code == 202, export.text
    imported = client.post("/api/admin/import/yaml", params={"async": "true", "dry_run": "true"},
                           headers={**admin, "Content-Type": "application/yaml"},
                           content=to_yaml(_scratch_bundle("async_import")))
    assert imported.status_code == 202, imported.text
    runtime.jobs.join()
    with Session(runtime.engine) as session:
        users = {user.email: user for user in session.exec(select(User)).all()}
        for email in ROLES.values():
            for kind in ("bundle_import", "telemetry_export"):
                job = job_store.create_job(session, kind=kind, requested_by=email,
                                           community_key=HOME_COMMUNITY,
                                           requested_by_id=users[email].id)
                world.add("cancel_job", job_id=job.id)
        session.commit()
    for job in _ok(client.get("/api/jobs", headers=admin, params={"limit": 100}))["items"]:
        if job["status"] != "queued":
            world.add(None, job_id=job["id"])


def login(client: TestClient, email: str) -> dict[str, str]:
    """Headers of a fresh login of one of the run's accounts."""
    response = client.post("/api/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


# -- bodies that a schema alone does not make valid ----------------------------------------

FRESH = itertools.count(1)
RULE_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "between", "not_between")
# Operations whose valid bodies depend on what the registry holds (an area of the community, a
# primary substation, a free grid cell, a bundle of a new community ...), or on rules across
# fields that no JSON Schema expresses (a threshold rule's operator): `real_body` writes them.
BODY_OPERATIONS = frozenset((
    "create_member", "update_member", "put_member_area", "patch_member_profile", "put_area",
    "upsert_topology_node", "upsert_member_delivery_point", "upsert_member_asset",
    "import_bundle",
    "import_yaml_bundles", "ingest_readings", "push_sensor_readings", "login", "create_rule",
    "replace_rule", "add_dashboard_widget", "update_dashboard_widget"))


def _record(world: World, path: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The shared or scratch record naming `path`'s values and holding `name`."""
    for _, values in world.records:
        if name in values and all(values.get(key) == value for key, value in path.items()
                                  if key in values):
            return values
    return None


def real_body(world: World, operation_id: str, path: dict[str, Any],
              draw: Callable[[Any], Any]) -> tuple[str, Any] | None:
    """A body (media type, value) that the operation accepts for `path`, or None when there is
    none to write (then the generated body is kept)."""
    community = str(path.get("community_key", HOME_COMMUNITY))
    fresh = next(FRESH)
    if operation_id in {"create_member", "put_member_area", "patch_member_profile"}:
        area = _record(world, {"community_key": community}, "area_key")
        if area is None:
            return None
        if operation_id == "put_member_area":
            return "application/json", {"area": area["area_key"]}
        if operation_id == "patch_member_profile":
            return "application/json", {"area": area["area_key"], "role": draw(
                st.sampled_from(["consumer", "producer", "prosumer"]))}
        return "application/json", {
            "key": f"fuzz-member-{fresh}", "user_id": f"fuzz-member-{fresh}@example.org",
            "name": f"Fuzz member {fresh}", "role": draw(st.sampled_from(["consumer", "producer",
                                                                          "prosumer"])),
            "area": area["area_key"], "status": draw(st.sampled_from(["active", "pending"]))}
    if operation_id == "update_member":
        return "application/json", {"name": draw(st.text(min_size=1, max_size=40).filter(
            lambda name: name.strip() and "\x00" not in name))}
    if operation_id == "put_area":
        area = _record(world, path, "area")
        if area is None:
            return None
        return "application/json", {**area["area"], "name": f"Area renamed {fresh}"}
    if operation_id == "upsert_topology_node":
        node = _record(world, path, "node")
        return "application/json", ({**node["node"], "name": f"Node {fresh}"} if node else {
            "id": path.get("node_id"), "type": "secondary_substation"})
    if operation_id == "upsert_member_delivery_point":
        point = _record(world, path, "point")
        return "application/json", {**(point["point"] if point else {"type": "pod"}),
                                     "id": path.get("point_id"),
                                     "description": f"Fuzz description {fresh}"}
    if operation_id == "upsert_member_asset":
        asset = _record(world, path, "asset")
        if asset is None or "sensor_id" in asset["asset"]:
            return None  # a meter's sensor is left as it is: other operations read it
        properties = {key: value for key, value in asset["asset"].items()}
        return "application/json", {"key": path.get("asset_key"),
                                    "asset_type": asset["asset_type"],
                                    "properties": {**properties, "name": f"Asset {fresh}"}}
    if operation_id in {"import_bundle", "import_yaml_bundles"}:
        document = _scratch_bundle(f"import-{fresh}")
        if operation_id == "import_yaml_bundles":
            return "application/yaml", to_yaml(document)
        return "application/json", {"bundle": document, "dry_run": draw(st.booleans())}
    if operation_id == "ingest_readings":
        sensors = world.community_sensors[draw(st.sampled_from(sorted(world.community_sensors)))]
        rows = [{**row, "ts": row["ts"].replace("2026-03-0", "2026-03-1")}
                for row in _readings(sensors[:2])[:draw(st.integers(1, 12))]]
        return "application/json", {"readings": rows}
    if operation_id == "push_sensor_readings":
        return "application/json", {"readings": [
            {"channel": "power", "ts": f"2026-03-20T{hour:02d}:00:00+01:00",
             "value": draw(st.floats(-5000, 5000, allow_nan=False))}
            for hour in range(draw(st.integers(1, 4)))]}
    if operation_id == "login":
        return "application/json", {"email": draw(st.sampled_from(sorted(ROLES.values()))),
                                    "password": DEFAULT_PASSWORD}
    if operation_id in {"create_rule", "replace_rule"}:
        operator = draw(st.sampled_from(RULE_OPERATORS))
        low = draw(st.floats(-5000, 5000, allow_nan=False))
        body: dict[str, Any] = {"name": f"Fuzz rule {fresh}", "channel": "power",
                                "operator": operator, "threshold": low,
                                "cooldown_seconds": draw(st.integers(0, 3600))}
        if operator in {"between", "not_between"}:
            body["threshold_high"] = low + draw(st.floats(0, 1000, allow_nan=False))
        return "application/json", body
    if operation_id in {"add_dashboard_widget", "update_dashboard_widget"}:
        return "application/json", {"kind": "balance", "x": 0, "y": draw(st.integers(4, 990)),
                                    "w": 12, "h": 1, "window": "P30D",
                                    "community": HOME_COMMUNITY}
    return None
