"""Every page of the app, run headless with AppTest on a small, an empty and a damaged registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.app_support import BUILD_COMMAND
from recsys.registry import Registry

from .conftest import MODEL_IDS, flip_byte

PAGES = ("pages/home.py", "pages/recommend.py", "pages/latent_space.py", "pages/compare.py", "pages/models.py")


def _text(at) -> str:
    """Everything the page wrote as markdown, captions, alerts and code."""
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "code") for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_exception(run_page, built_registry: Path, page: str) -> None:
    at = run_page(built_registry, page)
    assert at.title[0].value  # the page rendered its heading
    assert not at.error


def test_home_says_what_is_loaded(run_page, built_registry: Path) -> None:
    at = run_page(built_registry)
    assert at.title[0].value == "Steerable recommender"
    assert {"Standard", "Postfilter", "Tune", "Tune + post"} <= {s.value for s in at.subheader}
    loaded = at.table[0].value
    assert list(loaded.index) == ["synthetic"]
    assert int(loaded.loc["synthetic", "items"]) > 0
    text = _text(at)
    for model_id in MODEL_IDS:
        assert model_id in text


def test_models_page_lists_models_with_integrity(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/models.py")
    table = at.table[0].value
    assert sorted(table.index) == sorted(MODEL_IDS)
    assert set(table["integrity"]) == {"ok"}
    assert set(table["family"]) == {"ease", "popularity"}
    ndcg = table["NDCG@100"].astype(float)
    assert (ndcg > 0).all() and ndcg["ease-synthetic"] > ndcg["popularity-synthetic"]


def test_manifest_viewer_follows_the_selection(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/models.py")
    for model_id in MODEL_IDS:
        at.selectbox(key="manifest_model").set_value(model_id).run()
        manifest = json.loads(at.json[0].value)
        assert manifest["model_id"] == model_id
        assert manifest["info"]["split_seed"] == 0


def test_empty_registry_shows_the_build_command(run_page, tmp_path: Path) -> None:
    empty = tmp_path / "no-models-yet"
    for page in ("pages/models.py", "pages/home.py", "pages/recommend.py", "pages/compare.py"):
        at = run_page(empty, page)
        codes = [c.value for c in at.code]
        assert codes == [f"RECSYS_MODELS_DIR={empty} {BUILD_COMMAND}"], page
        assert not at.table or page == "pages/home.py"


def test_corrupted_weights_are_marked_not_raised(run_page, registry_copy: Path) -> None:
    flip_byte(registry_copy / "ease-synthetic" / "weights.safetensors")
    at = run_page(registry_copy, "pages/models.py")
    table = at.table[0].value
    assert table.loc["ease-synthetic", "integrity"] == "FAILS VERIFICATION"
    assert table.loc["popularity-synthetic", "integrity"] == "ok"
    errors = " ".join(e.value for e in at.error)
    assert "ease-synthetic" in errors and "sha256" in errors
    assert "registry remove ease-synthetic" in _text(at)
    # the damaged model is not offered for recommendations
    at.switch_page("pages/recommend.py").run()
    assert not at.exception
    assert at.selectbox(key="rec_model").options == ["popularity-synthetic"]


def test_unreadable_manifest_is_shown_as_such(run_page, registry_copy: Path) -> None:
    (registry_copy / "ease-synthetic" / "manifest.json").write_text("{not json")
    at = run_page(registry_copy, "pages/models.py")
    assert at.table[0].value.loc["ease-synthetic", "integrity"] == "UNREADABLE"
    at.selectbox(key="manifest_model").set_value("ease-synthetic").run()
    assert not at.exception
    assert not at.json
    assert any("not valid JSON" in e.value for e in at.error)


def test_recommend_page_excludes_picks(run_page, built_registry: Path) -> None:
    # pick the five most popular songs: Popularity would list them first if picks were not excluded
    popularity = Registry(built_registry).load("popularity-synthetic")
    top5 = np.argsort(-popularity.model.item_counts_, kind="stable")[:5]
    picks = [str(popularity.items["item_id"].iloc[i]) for i in top5]
    picked = {(popularity.items["title"].iloc[i], popularity.items["artist"].iloc[i]) for i in top5}

    at = run_page(built_registry, "pages/recommend.py")
    for model_id in ("popularity-synthetic", "ease-synthetic"):
        at.selectbox(key="rec_model").set_value(model_id).run()
        if model_id == "popularity-synthetic":
            at.multiselect[0].set_value(picks).run()
        assert not at.exception
        assert at.multiselect[0].value == picks  # the picks carry over to a model of the same data set
        top = at.table[0].value
        assert len(top) == 20
        assert not picked & set(zip(top["title"], top["artist"], strict=True)), model_id


def test_compare_page_ranks_by_ndcg(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/compare.py")
    table = at.dataframe[0].value
    assert list(table["model"]) == ["ease-synthetic", "popularity-synthetic"]
    assert (table["split seed"] == 0).all()
