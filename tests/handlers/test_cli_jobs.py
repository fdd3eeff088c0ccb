"""`commonwatt jobs list|show|cancel` and `commonwatt worker` without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from handlers.app import create_runtime
from handlers.cli import main
from handlers.settings import Settings
from storage import jobs as job_store
from tests.factories import community_doc, to_yaml


@pytest.fixture
def job_ids(environment: dict, tmp_path: Path) -> list[int]:
    """A registry with a community and two queued jobs (one of it, one scheduled)."""
    bundle = tmp_path / "alpha.yaml"
    bundle.write_bytes(to_yaml(community_doc("alpha")))
    assert main(["import", str(bundle)]) == 0
    runtime = create_runtime(Settings())
    try:
        with Session(runtime.engine) as session:
            first = job_store.create_job(session, kind="bundle_import", community_key="alpha",
                                         requested_by="ada@example.org", arguments={})
            second = job_store.create_job(session, kind="telemetry_compaction")
            session.commit()
            assert first.id is not None and second.id is not None
            return [first.id, second.id]
    finally:
        runtime.engine.dispose()


def test_jobs_list_filters_and_show(job_ids: list[int],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["jobs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        [str(job_ids[0]), "bundle_import", "queued"],
        [str(job_ids[1]), "telemetry_compaction", "queued"]]
    assert lines[0].split("\t")[4:6] == ["alpha", "ada@example.org"]
    assert main(["jobs", "list", "--kind", "telemetry_compaction"]) == 0
    assert capsys.readouterr().out.startswith(f"{job_ids[1]}\t")
    assert main(["jobs", "list", "--community", "alpha", "--status", "queued"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["jobs", "list", "--status", "failed"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["jobs", "show", str(job_ids[0])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == job_ids[0] and shown["status"] == "queued"
    assert "arguments" not in shown


def test_jobs_cancel_then_refused(job_ids: list[int],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["jobs", "cancel", str(job_ids[0])]) == 0
    assert capsys.readouterr().out.strip() == f"job {job_ids[0]} cancelled"
    assert main(["jobs", "cancel", str(job_ids[0])]) == 1
    assert "[job_finished]" in capsys.readouterr().err
    assert main(["jobs", "show", "999"]) == 1
    assert "[job_not_found]" in capsys.readouterr().err


def test_jobs_commands_need_a_registry_and_usage(environment: dict,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "list"]) == 1
    assert "no registry" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["jobs", "show", "x"])
    assert exited.value.code == 2


def test_worker_needs_a_broker_url(environment: dict,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker"]) == 2
    assert "COMMONWATT_BROKER_URL" in capsys.readouterr().err
