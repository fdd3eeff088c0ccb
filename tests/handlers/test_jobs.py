"""Jobs over HTTP: async imports, large exports as jobs, compaction jobs, visibility, cancel,
restart recovery, and every documented refusal."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from handlers.app import create_app
from handlers.jobqueue import worker_name
from handlers.settings import Settings
from storage import jobs as job_store
from storage.models import Community, Job, User, utc_now
from tests.factories import Api, community_doc, member_doc, to_yaml

SENSOR = "sens-a"
DAY = "2026-03-02"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"export_job_min_rows": 50, "worker_threads": 1,
                                       "telemetry_compact_quiet_seconds": 0})


def _job(api: Api, job_id: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.client.get(f"/api/jobs/{job_id}", headers=headers or api.admin())
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(api: Api) -> None:
    assert api.runtime.jobs is not None
    api.runtime.jobs.join()


def _make_job(api: Api, *, community_key: str | None = None, requested_by: str | None = None,
              kind: str = "bundle_import", arguments: dict[str, Any] | None = None) -> int:
    """A queued job row whose message was never sent."""
    with Session(api.engine) as session:
        user = session.exec(select(User).where(User.email == requested_by)).first()
        job = job_store.create_job(session, kind=kind, community_key=community_key,
                                   arguments=arguments or {},
                                   requested_by_id=user.id if user else None,
                                   requested_by=requested_by)
        session.commit()
        assert job.id is not None
        return job.id


def _community(api: Api, key: str, operator: str) -> dict[str, Any]:
    members = {"m0": member_doc(f"{key}-m0", user_id=f"m0@{key}.test", sensors=(f"{key}-s",)),
               "op": member_doc(f"{key}-op", user_id=operator, role="operator")}
    return community_doc(key, members)


def test_async_yaml_import_answers_202_with_location_and_the_report(api: Api) -> None:
    response = api.client.post(
        "/api/admin/import/yaml", params={"async": "true"},
        content=to_yaml(community_doc("alpha")),
        headers={**api.admin(), "Content-Type": "application/yaml"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["kind"] == "bundle_import" and job["status"] == "queued"
    assert job["community"] == "alpha" and job["requested_by"] == "root@commonwatt.test"
    _wait(api)
    done = _job(api, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["reports"][0]["action"] == "created"
    assert done["progress"]["percent"] == 100
    assert [entry["message"] for entry in done["log"]][-1] == "imported"
    result = api.client.get(f"/api/jobs/{job['id']}/result", headers=api.admin())
    assert result.status_code == 200 and result.json() == done["result"]
    assert api.client.get("/api/admin/communities/alpha", headers=api.admin()).status_code == 200


def test_async_json_import_result_is_the_single_report(api: Api) -> None:
    response = api.client.post("/api/admin/import", params={"async": "true"},
                               json={"bundle": community_doc("beta")}, headers=api.admin())
    assert response.status_code == 202, response.text
    _wait(api)
    done = _job(api, response.json()["id"])
    assert done["status"] == "succeeded"
    assert done["result"]["community_key"] == "beta" and done["result"]["action"] == "created"


def test_refused_async_import_fails_with_the_problem_and_writes_nothing(api: Api) -> None:
    document = community_doc("gamma")
    document["members"]["alice"]["area"] = "nowhere"
    response = api.client.post(
        "/api/admin/import/yaml", params={"async": "true"}, content=to_yaml(document),
        headers={**api.admin(), "Content-Type": "application/yaml"})
    _wait(api)
    done = _job(api, response.json()["id"])
    assert done["status"] == "failed"
    assert done["problem"]["code"] == "bundle_refused" and done["problem"]["errors"]
    assert done["result"] is None
    assert api.client.get("/api/admin/communities/gamma", headers=api.admin()).status_code == 404
    refused = api.client.get(f"/api/jobs/{done['id']}/result", headers=api.admin())
    assert refused.status_code == 409 and refused.json()["code"] == "job_not_finished"


def test_async_import_of_a_bundle_breaking_the_format_is_refused_at_once(api: Api) -> None:
    document = community_doc("delta")
    document["members"]["alice"]["role"] = "king"
    for response in (
        api.client.post("/api/admin/import", params={"async": "true"},
                        json={"bundle": document}, headers=api.admin()),
        api.client.post("/api/admin/import/yaml", params={"async": "true"},
                        content=to_yaml(document),
                        headers={**api.admin(), "Content-Type": "application/yaml"}),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "bundle_refused"
        assert "/members/alice/role" in response.text
    assert api.client.get("/api/admin/communities/delta", headers=api.admin()).status_code == 404


def test_async_import_bad_syntax_is_still_answered_at_once(api: Api) -> None:
    response = api.client.post(
        "/api/admin/import/yaml", params={"async": "true"}, content=b"a: [",
        headers={**api.admin(), "Content-Type": "application/yaml"})
    # the rec-registry's refusal of a request: 422, its failure listed where it is
    assert response.status_code == 422 and response.json()["code"] == "invalid_yaml"
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_who_sees_which_job(api: Api) -> None:
    api.import_yaml(_community(api, "alpha", "op@alpha.test"),
                    _community(api, "beta", "op@beta.test"))
    alpha_op = api.login("op@alpha.test")
    beta_op = api.login("op@beta.test")
    plain = api.login("m0@alpha.test")
    alpha_job = _make_job(api, community_key="alpha", requested_by="root@commonwatt.test")
    own_job = _make_job(api, requested_by="m0@alpha.test")
    lone_job = _make_job(api)

    def listed(headers: dict[str, str], **params: str) -> list[int]:
        response = api.client.get("/api/jobs", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert listed(api.admin()) == [alpha_job, own_job, lone_job]
    assert listed(alpha_op) == [alpha_job]
    assert listed(beta_op) == []
    assert listed(plain) == [own_job]
    assert listed(api.admin(), community="alpha") == [alpha_job]
    assert listed(api.admin(), status="queued", kind="bundle_import") == [
        alpha_job, own_job, lone_job]
    assert listed(api.admin(), status="running") == []
    assert _job(api, alpha_job, alpha_op)["community"] == "alpha"
    for headers, job_id in ((beta_op, alpha_job), (plain, alpha_job), (alpha_op, own_job),
                            (alpha_op, lone_job)):
        response = api.client.get(f"/api/jobs/{job_id}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "job_not_found"
        response = api.client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
        assert response.status_code == 404
        response = api.client.get(f"/api/jobs/{job_id}/result", headers=headers)
        assert response.status_code == 404
    page = api.client.get("/api/jobs", headers=api.admin(), params={"limit": 2}).json()
    assert [item["id"] for item in page["items"]] == [alpha_job, own_job]
    rest = api.client.get("/api/jobs", headers=api.admin(),
                          params={"cursor": page["next_cursor"]}).json()
    assert [item["id"] for item in rest["items"]] == [lone_job] and rest["next_cursor"] is None


def test_cancel_a_queued_job_then_it_has_ended(api: Api) -> None:
    headers = api.login("ada@example.org")
    job_id = _make_job(api, requested_by="ada@example.org")
    response = api.client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    again = api.client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "job_finished"
    result = api.client.get(f"/api/jobs/{job_id}/result", headers=headers)
    assert result.status_code == 409 and result.json()["code"] == "job_not_finished"


def test_documented_refusals(api: Api) -> None:
    admin = api.admin()
    assert api.client.get("/api/jobs").status_code == 401
    assert api.client.get("/api/jobs/1").status_code == 401
    assert api.client.post("/api/jobs/1/cancel").status_code == 401
    assert api.client.get("/api/jobs/1/result").status_code == 401
    bad = api.client.get("/api/jobs", headers=admin, params={"status": "sleeping"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    bad = api.client.get("/api/jobs", headers=admin, params={"cursor": "NOT-A-CURSOR"})
    assert bad.status_code == 400
    assert api.client.get("/api/jobs/0", headers=admin).status_code == 400
    assert api.client.post("/api/jobs/0/cancel", headers=admin).status_code == 400
    assert api.client.get("/api/jobs/0/result", headers=admin).status_code == 400
    for response in (api.client.get("/api/jobs/999", headers=admin),
                     api.client.post("/api/jobs/999/cancel", headers=admin),
                     api.client.get("/api/jobs/999/result", headers=admin)):
        assert response.status_code == 404 and response.json()["code"] == "job_not_found"


def _load_readings(api: Api, count: int) -> None:
    members = {"m0": member_doc("m0", user_id="m0@alpha.test", sensors=(SENSOR,))}
    api.import_yaml(community_doc("alpha", members))
    rows = [{"sensor_id": SENSOR, "channel": "power",
             "ts": f"{DAY}T{i // 60:02d}:{i % 60:02d}:00Z", "value": float(i)}
            for i in range(count)]
    response = api.client.post("/api/telemetry/readings", json={"readings": rows},
                               headers=api.admin())
    assert response.status_code == 200, response.text


def test_large_export_runs_as_a_job_whose_file_is_served_then_expires(api: Api) -> None:
    _load_readings(api, 120)
    params = {"sensor_id": SENSOR, "from": f"{DAY}T00:00:00Z", "to": f"{DAY}T23:00:00Z"}
    small = api.client.get("/api/telemetry/export", headers=api.admin(),
                           params={**params, "to": f"{DAY}T00:30:00Z"})
    assert small.status_code == 200 and small.text.count("\n") == 31
    response = api.client.get("/api/telemetry/export", headers=api.admin(), params=params)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "telemetry_export" and job["community"] == "alpha"
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    _wait(api)
    done = _job(api, job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["rows"] == 120 and done["result"]["format"] == "csv"
    served = api.client.get(f"/api/jobs/{job['id']}/result", headers=api.admin())
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/csv")
    assert served.text.count("\n") == 121
    assert "attachment" in served.headers["content-disposition"]
    results = api.runtime.settings.job_results_dir()
    assert [path.name for path in results.iterdir()] == [f"job-{job['id']}.csv"]
    with Session(api.engine) as session:
        stored = session.get(Job, job["id"])
        assert stored is not None
        stored.result_expires_at = utc_now() - timedelta(seconds=1)
        session.add(stored)
        session.commit()
    gone = api.client.get(f"/api/jobs/{job['id']}/result", headers=api.admin())
    assert gone.status_code == 410 and gone.json()["code"] == "result_expired"
    api.runtime.jobs.sweep()
    assert list(results.iterdir()) == []
    assert "result file expired" in _job(api, job["id"])["log"][-1]["message"]


def test_compaction_runs_as_a_visible_job(api: Api) -> None:
    _load_readings(api, 30)
    jobs = api.runtime.jobs
    job_id = jobs.schedule_compaction()
    assert job_id is not None
    assert jobs.schedule_compaction() in (None, job_id + 1)  # never two open at once
    _wait(api)
    listed = api.client.get("/api/jobs", headers=api.admin(),
                            params={"kind": "telemetry_compaction"}).json()["items"]
    assert listed[0]["status"] == "succeeded", listed
    assert listed[0]["result"]["days_compacted"] == 1
    assert listed[0]["requested_by"] is None and listed[0]["community"] is None
    health = api.client.get("/api/health", headers=api.admin()).json()
    assert health["telemetry"]["unsealed_days"] == 0
    assert jobs.schedule_compaction() is None  # nothing left to do: no new job
    operator_view = api.client.get("/api/jobs", headers=api.login("m0@alpha.test")).json()
    assert operator_view["items"] == []


def test_the_scheduler_queues_compaction_on_its_own(settings: Settings) -> None:
    settings = settings.model_copy(update={"telemetry_compact_interval_seconds": 0.2,
                                           "telemetry_compact_quiet_seconds": 0})
    running_before = set(threading.enumerate())
    app = create_app(settings)
    with app.test_client() as client:
        [scheduler] = [thread for thread in threading.enumerate()
                       if thread.name == "job-scheduler" and thread not in running_before]
        api = Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                  runtime=app.runtime)  # type: ignore[attr-defined]
        _load_readings(api, 10)
        deadline = time.monotonic() + 20
        items: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            items = api.client.get("/api/jobs", headers=api.admin(), params={
                "kind": "telemetry_compaction", "status": "succeeded"}).json()["items"]
            if items:
                break
            time.sleep(0.1)
        assert items and items[0]["result"]["days_compacted"] == 1
        assert scheduler.is_alive()
    # The server's shutdown stops the scheduler (it waits for it): no compaction is queued
    # after it.
    assert not scheduler.is_alive()


@pytest.fixture
def dead_worker() -> Iterator[str]:
    """The `claimed_by` of a process of this host that has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    yield f"{worker_name().rpartition(':')[0]}:{process.pid}"


def _restart(settings: Settings) -> Iterator[Api]:
    app = create_app(settings)
    with app.test_client() as client:
        yield Api(client=client, engine=app.runtime.engine,  # type: ignore[attr-defined]
                  runtime=app.runtime)  # type: ignore[attr-defined]


def test_restart_runs_queued_jobs_and_ends_interrupted_imports(
        settings: Settings, dead_worker: str, tmp_path: Path) -> None:
    first = create_app(settings)
    with first.test_client():
        pass  # migrated, then stopped
    engine = first.runtime.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        queued = job_store.create_job(session, kind="bundle_import", arguments={
            "documents": [community_doc("delta")], "dry_run": False, "force": False,
            "single": False, "allowed": None})
        interrupted = job_store.create_job(session, kind="bundle_import", arguments={
            "documents": [community_doc("epsilon")], "dry_run": False, "force": False,
            "single": False, "allowed": None})
        interrupted.status, interrupted.claimed_by = "running", dead_worker
        session.add(interrupted)
        session.commit()
        queued_id, interrupted_id = queued.id, interrupted.id
    for api in _restart(settings):
        _wait(api)
        assert _job(api, queued_id)["status"] == "succeeded"
        failed = _job(api, interrupted_id)
        assert failed["status"] == "failed" and failed["problem"]["code"] == "interrupted"
        with Session(api.engine) as session:
            keys = set(session.exec(select(Community.key)).all())
        assert keys == {"delta"}
