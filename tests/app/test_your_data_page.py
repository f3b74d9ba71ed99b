"""The Your data page in AppTest: empty, with an imported data set, with a finished job (uploads: browser test)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from recsys import jobs
from recsys.data import export_csv, load_csv_dataset, record_csv_import
from recsys.data.synthetic import generate_synthetic

PAGE = "pages/your_data.py"


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "data"
    monkeypatch.setenv("RECSYS_DATA_DIR", str(home))
    return home


def _import(data_home: Path, tmp_path: Path, name: str = "mine") -> None:
    small = generate_synthetic(n_users=120, n_items=200, n_artists=30, n_tags=5)
    inter, items = export_csv(small, tmp_path / "files")
    record_csv_import(load_csv_dataset(f"{inter},{items}", name=name), data_home)


def _text(at) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "error", "success") for e in getattr(at, kind))


def test_without_data_the_page_says_to_upload_first(run_page, registry_copy: Path, data_home: Path) -> None:
    at = run_page(registry_copy, PAGE)
    assert at.title[0].value == "Your data"
    assert "Upload a data set above first" in _text(at)
    assert not at.error and not at.exception


def test_a_finished_job_lists_its_models_and_opens_them(
    run_page, registry_copy: Path, data_home: Path, tmp_path: Path
) -> None:
    _import(data_home, tmp_path)
    job = jobs.jobs_root(data_home) / "20261202-000000-mine"
    job.mkdir(parents=True)
    spec = {"dataset": "mine", "families": ["popularity", "ease"], "registry": str(registry_copy)}
    (job / "spec.json").write_text(json.dumps(spec | {"data_dir": str(data_home), "created": time.time()}))
    assert jobs.run_job(job) == 0
    at = run_page(registry_copy, PAGE)
    assert at.selectbox(key="ud_dataset").value == "mine"
    table = at.dataframe[0].value
    assert list(table["model"]) == ["popularity-mine", "ease-mine"] and set(table["state"]) == {"done"}
    assert "Finished" in at.get("progress")[0].proto.text
    assert [h.value for h in at.header][-1] == "4. Steer it"
    assert at.selectbox(key="ud_open_model").options == ["popularity-mine", "ease-mine"]
    # the models are in the registry: training them again needs 'replace'
    assert "already in the registry" in at.checkbox(key="ud_replace").label
    at.selectbox(key="ud_open_model").set_value("ease-mine").run()
    at.button(key="ud_open_Recommend").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="rec_model").value == "ease-mine"
    assert at.selectbox(key="rec_dataset").value == "mine"
