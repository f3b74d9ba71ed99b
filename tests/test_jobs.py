"""Training jobs of the "Your data" page: detached, one model's failure its own, cancellable, never lost."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from recsys import jobs
from recsys.data import export_csv, record_csv_import
from recsys.data.synthetic import generate_synthetic
from recsys.registry import Registry

NAME = "mine"


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    """A data directory with one imported CSV data set, ``mine`` (120 listeners)."""
    from recsys.data import load_csv_dataset

    small = generate_synthetic(n_users=120, n_items=200, n_artists=30, n_tags=5)
    inter, items = export_csv(small, tmp_path / "files")
    ds = load_csv_dataset(f"{inter},{items}", name=NAME)
    record_csv_import(ds, tmp_path / "data")
    return tmp_path / "data"


def _job_dir(root: Path, families: list[str], registry: Path, data_dir: Path, **spec) -> Path:
    job = root / "job-1"
    job.mkdir(parents=True)
    spec = {"dataset": NAME, "families": families, "registry": str(registry), "data_dir": str(data_dir)} | spec
    (job / "spec.json").write_text(json.dumps(spec | {"created": time.time()}))
    return job


def _wait(job: Path, states: tuple[str, ...], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.job_status(job)
        if status["state"] in states:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job still {jobs.job_status(job)['state']} after {timeout} s:\n{jobs.log_tail(job)}")


def test_a_job_trains_each_family_and_reports_progress(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    job = _job_dir(tmp_path / "jobs", ["popularity", "ease"], tmp_path / "reg", imported)
    assert jobs.run_job(job) == 0
    status = jobs.job_status(job)
    assert status["state"] == "done" and jobs.progress_fraction(status) == 1.0
    assert [m["state"] for m in status["models"]] == ["done", "done"]
    assert sorted(Registry(tmp_path / "reg").ids()) == [f"ease-{NAME}", f"popularity-{NAME}"]
    assert 0 < status["models"][1]["metrics"]["ndcg@100"] <= 1
    assert f"registered ease-{NAME}" in capsys.readouterr().out  # the runner's stdout is the job's log


def test_one_failing_family_costs_only_its_own_model(
    imported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = jobs.job_config

    def config(family: str, dataset: str, epochs):
        cfg = real(family, dataset, epochs)
        if family == "ease":
            cfg["params"]["l2"] = "lots"  # fails inside the fit
        return cfg

    monkeypatch.setattr(jobs, "job_config", config)
    job = _job_dir(tmp_path / "jobs", ["ease", "popularity"], tmp_path / "reg", imported)
    assert jobs.run_job(job) == 1
    status = jobs.job_status(job)
    assert [m["state"] for m in status["models"]] == ["failed", "done"]
    assert status["state"] == "done" and "ease" not in " ".join(Registry(tmp_path / "reg").ids())
    assert status["models"][0]["error"]


def test_a_data_set_that_cannot_be_loaded_fails_the_job_with_its_reason(imported: Path, tmp_path: Path) -> None:
    record = json.loads((imported / "csv_imports.json").read_text())[NAME]
    Path(record["items"]["path"]).write_text("item,title\n")  # the file changed since the import
    job = _job_dir(tmp_path / "jobs", ["popularity"], tmp_path / "reg", imported)
    assert jobs.run_job(job) == 1
    status = jobs.job_status(job)
    assert status["state"] == "failed" and "changed" in status["error"], status["error"]
    assert [m["state"] for m in status["models"]] == ["failed"]


def test_job_configs_cap_epochs() -> None:
    from recsys.training import max_epochs

    cfg = jobs.job_config("multvae", NAME, 7)
    assert cfg["params"]["epochs"] == 7 and cfg["model_id"] == f"multvae-{NAME}" and cfg["dataset"] == NAME
    assert max_epochs("multvae", cfg["params"]) == 7
    assert max_epochs("ease", {}) is None
    flow = jobs.job_config("flow", NAME, 5)["params"]
    assert max_epochs("flow", flow) == flow["epochs"] + flow["flow_epochs"] <= 10


def test_start_refuses_unknown_families_and_existing_models(imported: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    with pytest.raises(jobs.JobError, match="unknown families"):
        jobs.start_job(dataset=NAME, families=["nope"], registry_root=reg, data_dir=imported)
    with pytest.raises(jobs.JobError, match="at least one"):
        jobs.start_job(dataset=NAME, families=[], registry_root=reg, data_dir=imported)
    job = _job_dir(tmp_path / "jobs", ["popularity"], reg, imported)
    jobs.run_job(job)
    with pytest.raises(jobs.JobError, match="replace"):
        jobs.start_job(dataset=NAME, families=["popularity"], registry_root=reg, data_dir=imported)


def test_a_detached_job_is_cancelled_and_leaves_no_half_model(imported: Path, tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    job = jobs.start_job(dataset=NAME, families=["mlp", "ease"], registry_root=reg, data_dir=imported, epochs=100)
    with pytest.raises(jobs.JobError, match="running already"):  # one job at a time
        jobs.start_job(dataset=NAME, families=["popularity"], registry_root=reg, data_dir=imported)
    _wait(job, ("running",))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not jobs.job_status(job)["models"][0].get("epoch"):
        time.sleep(0.2)  # inside the first model's training
    jobs.cancel_job(job)
    status = _wait(job, ("cancelled",), timeout=60)
    assert [m["state"] for m in status["models"]] == ["cancelled", "cancelled"]
    assert not reg.exists() or Registry(reg).ids() == []
    assert jobs.active_job(job.parent) is None


def test_a_runner_killed_outright_is_reported_as_died(imported: Path, tmp_path: Path) -> None:
    job = jobs.start_job(dataset=NAME, families=["mlp"], registry_root=tmp_path / "reg", data_dir=imported, epochs=100)
    status = _wait(job, ("running",))
    os.killpg(status["pid"], signal.SIGKILL)
    status = _wait(job, ("died",), timeout=30)
    assert "stopped without finishing" in status["error"]
    assert jobs.active_job(job.parent) is None  # a dead job does not block the next


def test_a_runner_that_ignores_the_cancel_is_killed_after_the_grace_period(
    imported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    job = _job_dir(tmp_path / "jobs", ["popularity"], tmp_path / "reg", imported)
    # a stand-in runner that ignores SIGTERM (as one stuck in a long C call would, for a while)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(job)], start_new_session=True)
    (job / "status.json").write_text(json.dumps({"state": "running", "pid": proc.pid, "models": []}))
    try:
        time.sleep(0.5)
        jobs.cancel_job(job)
        assert jobs.job_status(job)["state"] == "cancelling" and proc.poll() is None
        monkeypatch.setattr(jobs, "CANCEL_GRACE_S", 0.0)
        jobs.cancel_job(job)  # what the page does on its next poll
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert jobs.job_status(job)["state"] == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_every_offered_family_has_a_template_and_a_note() -> None:
    from recsys.training import list_templates

    assert set(jobs.JOB_FAMILIES) <= set(list_templates())
    assert set(jobs.JOB_FAMILY_NOTES) == set(jobs.JOB_FAMILIES)
    assert set(jobs.DEFAULT_JOB_FAMILIES) <= set(jobs.JOB_FAMILIES)
