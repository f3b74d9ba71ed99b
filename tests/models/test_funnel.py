"""Funnel (seed 002): the contract, the candidate stage, candidate vs other scores, freshness, the
stage cache (skip / refit / corrupt), the CLI's CSV, steering (postfilter) and the Compare page."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import recsys.cli as cli
from recsys.data.dataset import Dataset
from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.model_extras import compute_extras
from recsys.models import get_model_class
from recsys.models.funnel import FunnelRecommender, StageCache, tag_corpus
from recsys.models.svd import SVDBaseline
from recsys.registry import Registry
from recsys.steering import Steerer
from tests.models.contract import RecommenderContract, contract_split

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"tag_dims": 50, "n_candidates": 100, "n_popular": 20, "n_fresh": 10, "svd_factors": 16, "svd_epochs": 10}


class TestFunnelContract(RecommenderContract):
    def make_model(self) -> FunnelRecommender:
        return FunnelRecommender(**SMALL, seed=0)


@functools.lru_cache(maxsize=1)
def fitted() -> FunnelRecommender:
    return FunnelRecommender(**SMALL, seed=0).fit(contract_split().train)


def with_dates(ds: Dataset, seed: int = 0) -> Dataset:
    """The data set with a ``first_tagged`` column: random days over four years."""
    items = ds.items.copy()
    days = np.random.default_rng(seed).integers(0, 4 * 365, size=len(items))
    items["first_tagged"] = 1.2e9 + 86400.0 * days
    return Dataset(ds.name, ds.interactions, items, ds.user_ids, item_noun=ds.item_noun)


def test_registered_under_its_family() -> None:
    assert get_model_class("funnel") is FunnelRecommender
    assert FunnelRecommender.score_kind == "similarity"


# ---- candidates -------------------------------------------------------------------------------
def test_candidate_recall_is_well_above_random() -> None:
    split, model = contract_split(), fitted()
    k = 30
    r = model.candidate_recall(split.test_foldin, split.test_holdout, ks=(k,))
    n_hist = np.diff(split.test_foldin.indptr)
    has_heldout = np.diff(split.test_holdout.indptr) > 0
    random = float(np.mean((k / (split.n_items - n_hist))[has_heldout]))  # k random non-history items
    assert r[f"similarity_recall@{k}"] > 2 * random, (r, random)
    assert r[f"candidate_recall@{k}"] >= r[f"similarity_recall@{k}"]
    assert k <= r[f"candidates@{k}"] <= k + SMALL["n_popular"]


def test_candidates_outrank_every_other_item_and_skip_the_history() -> None:
    split, model = contract_split(), fitted()
    x = split.test_foldin
    mask, scores = model.candidate_mask(x), model.score(x)
    seen = x.toarray() > 0
    assert not (mask & seen).any()
    for u in range(x.shape[0]):
        rest = ~mask[u] & ~seen[u]
        assert scores[u, mask[u]].min() > scores[u, rest].max()


def test_empty_history_gets_the_popular_items() -> None:
    model = fitted()
    empty = sp.csr_matrix((1, model.n_items_), dtype=np.float32)
    mask = model.candidate_mask(empty)[0]
    pop = model.item_popularity_
    assert mask.sum() == SMALL["n_popular"]  # no similarity (nor fresh) candidates without a history
    assert pop[mask].min() >= pop[~mask].max()


def test_freshness_from_item_dates_and_popularity_only_without() -> None:
    split = contract_split()
    assert not fitted().has_freshness_ and not fitted().item_freshness_.any()
    dated = FunnelRecommender(**SMALL, seed=0).fit(with_dates(split.train))
    assert dated.has_freshness_
    f = dated.item_freshness_
    assert f.max() == 1.0 and (f > 0).all() and (f <= 1).all()
    empty = sp.csr_matrix((1, dated.n_items_), dtype=np.float32)
    mask, prior = dated.candidate_mask(empty)[0], dated.item_popularity_ * f
    assert SMALL["n_popular"] < mask.sum() <= SMALL["n_popular"] + SMALL["n_fresh"]
    assert mask[prior >= np.sort(prior)[-SMALL["n_fresh"]] + 1e-9].all()  # the freshest popular items


def test_tag_corpus_prefers_counts_over_tags() -> None:
    items = pd.DataFrame({"tags": [("rock",), ("pop", "rock"), ()]})
    x, vocab = tag_corpus(items)
    assert vocab == ["rock", "pop"] and x.toarray().tolist() == [[1, 0], [1, 1], [0, 0]]
    items["tag_counts"] = [{"rock": 3}, {"pop": 5, "rock": 1}, {}]
    x, vocab = tag_corpus(items)
    assert vocab == ["pop", "rock"] and x.toarray().tolist() == [[0, 3], [5, 1], [0, 0]]


def test_a_data_set_without_tags_is_refused() -> None:
    ds = generate_synthetic(n_users=60, n_items=40, n_artists=10, n_tags=3, seed=2)
    items = ds.items.assign(tags=[()] * ds.n_items)
    with pytest.raises(ValueError, match="needs item tags"):
        FunnelRecommender(**SMALL).fit(Dataset(ds.name, ds.interactions, items, ds.user_ids))


@pytest.mark.realdata
def test_lastfm_corpus_is_the_full_tag_counts_with_dates(data_dir) -> None:
    from recsys.data import load_dataset, load_lastfm_tag_counts

    ds = load_dataset("lastfm-2k", data_dir=data_dir)
    ours, vocab = tag_corpus(ds.items)
    theirs, their_vocab = load_lastfm_tag_counts(data_dir / "hetrec2011-lastfm-2k")
    cols = pd.Index(their_vocab).get_indexer(vocab)
    assert (cols >= 0).all() and len(vocab) == len(their_vocab)
    assert (ours != theirs[:, cols]).nnz == 0
    listened = np.diff(ds.interactions.tocsc().indptr) >= 5  # the artists the protocol keeps
    assert ds.items["first_tagged"].notna()[listened].mean() > 0.99


# ---- the stage cache ----------------------------------------------------------------------------
def test_cached_stages_are_reused_and_refit_on_request(tmp_path, monkeypatch, caplog) -> None:
    train = contract_split().train
    x = contract_split().test_foldin
    svd_fits = []
    original = SVDBaseline._fit
    monkeypatch.setattr(SVDBaseline, "_fit", lambda self, *a: (svd_fits.append(1), original(self, *a))[1])

    def fit(refit=(), **params):
        return FunnelRecommender(**{**SMALL, **params}, cache_dir=str(tmp_path)).fit(train, refit=refit)

    first = fit()
    assert first.stage_sources_ == {"tags": "fit", "svd": "fit", "ranker": "fit"} and len(svd_fits) == 1
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    again = fit()
    assert again.stage_sources_ == {"tags": "cache", "svd": "cache", "ranker": "cache"} and len(svd_fits) == 1
    np.testing.assert_array_equal(again.score(x), first.score(x))
    # --runsvd: the SVD is fitted again; same seed, same factors, so the ranker's key still matches
    assert fit(refit={"svd"}).stage_sources_ == {"tags": "cache", "svd": "fit", "ranker": "cache"}
    assert len(svd_fits) == 2
    assert fit(refit={"ranker"}).stage_sources_["ranker"] == "fit"
    assert fit(refit={"all"}).stage_sources_ == {"tags": "fit", "svd": "fit", "ranker": "fit"}
    # a changed ranker parameter refits only the ranker
    assert fit(ranker_c=0.5).stage_sources_ == {"tags": "cache", "svd": "cache", "ranker": "fit"}
    # a damaged entry is refitted (with a warning), not trusted
    svd_file = next(tmp_path.glob("svd-*.safetensors"))
    svd_file.write_bytes(svd_file.read_bytes()[:100])
    assert fit().stage_sources_["svd"] == "fit"
    assert "cannot read" in caplog.text
    with pytest.raises(ValueError, match="unknown stages"):
        fit(refit={"candidates"})
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_cache_ignores_an_entry_of_another_key(tmp_path) -> None:
    cache = StageCache(tmp_path)
    cache.put("svd", "a" * 64, {"x": np.arange(3.0)}, {})
    assert cache.get("svd", "a" * 64)["x"].tolist() == [0.0, 1.0, 2.0]
    cache.path("svd", "a" * 64).rename(cache.path("svd", "b" * 64))
    assert cache.get("svd", "b" * 64) is None


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_train_reuses_stages_and_recommend_writes_20_ranked_artists(tmp_path, monkeypatch, capsys) -> None:
    small = generate_synthetic(n_users=300, n_items=250, n_artists=50, n_tags=6, seed=4)
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: small)
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path / "store"))
    train = ["funnel", "train", "--cache-dir", str(tmp_path / "cache"), "--model-id", "funnel-small"]
    train += [a for k, v in SMALL.items() for a in ("--set", f"{k}={v}")]

    assert cli.main(train) == 0
    out = capsys.readouterr().out
    assert "registered funnel-small" in out and "stages: tags fit, svd fit, ranker fit" in out
    assert "candidate_recall@100" in out and "no freshness" in out
    assert cli.main(train) == 0
    assert "stages: tags cache, svd cache, ranker cache" in capsys.readouterr().out
    assert cli.main([*train, "--runsvd", "--judge"]) == 0
    assert "stages: tags cache, svd fit, ranker fit" in capsys.readouterr().out

    csv = tmp_path / "recs.csv"
    assert cli.main(["funnel", "recommend", "--out", str(csv)]) == 0
    df = pd.read_csv(csv)
    split = strong_generalization_split(small, 0)
    assert list(df.columns) == ["user", "rank", "item_id", "title", "artist", "score"]
    assert df.groupby("user").size().eq(20).all() and df["user"].nunique() == split.test_foldin.shape[0]
    foldin = dict(zip(split.test_user_ids, range(len(split.test_user_ids)), strict=True))
    for user, rows in df.groupby("user", sort=False):
        assert rows["rank"].tolist() == list(range(1, 21))
        assert rows["score"].is_monotonic_decreasing
        history = split.train.item_ids[split.test_foldin[foldin[user]].indices]  # what the model was shown
        assert not set(rows["item_id"]) & set(history)

    assert cli.main(["funnel", "recommend", "--model", "nope", "--out", str(csv)]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


# ---- registry, steering, the Compare page -----------------------------------------------------
def saved_with_extras(root: Path) -> str:
    split, model = contract_split(), fitted()
    extras, info = compute_extras(model, split.train, split.test_foldin, split.test_holdout)
    return Registry(root).save(
        model, dataset=split.train, model_id="funnel-contract", metrics={"ndcg@100": 0.5}, extras=extras, info=info
    )


def test_postfilter_steers_the_funnel(tmp_path) -> None:
    split, model = contract_split(), fitted()
    loaded = Registry(tmp_path).load(saved_with_extras(tmp_path))
    for steerer in (
        Steerer.from_training(model, split.train.interactions, split.train.items),
        Steerer.from_loaded(loaded),
    ):
        picks = list(steerer.items["item_id"][split.test_foldin[0].indices])
        tag = steerer.vocabulary[-1]
        plain = steerer.recommend(picks, {tag: 1.0}, 0.0, modes=("standard", "postfilter"))
        steered = steerer.recommend(picks, {tag: 1.0}, 8.0, modes=("standard", "postfilter"))
        assert plain.top_item_ids("postfilter") == plain.top_item_ids("standard")
        assert steered.lists["postfilter"].tag_share > steered.lists["standard"].tag_share
        assert set(steered.unavailable) == set() and len(steered.lists["postfilter"].items) == 20
        assert set(steerer.recommend(picks, {tag: 1.0}, 1.0).unavailable) == {"tune", "tune+post"}


def test_compare_page_lists_a_funnel_model(tmp_path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    loaded = Registry(tmp_path).load(saved_with_extras(tmp_path))
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "funnel-contract" in at.dataframe[0].value.to_string()
    assert len(at.get("plotly_chart")) == 1 and not at.warning  # its steering curve over stored listeners
    # with picks from the Recommend page: latency and overlap for the current person
    fingerprint = loaded.manifest["dataset"]["fingerprint"][:16]
    at.session_state["person"] = {
        "dataset": loaded.manifest["dataset"]["name"],
        "model": "funnel-contract",
        "alpha": 1.0,
        "by_data": {fingerprint: {"picks": list(loaded.items["item_id"][:5]), "tags": {}}},
    }
    at.run()
    assert not at.exception and not at.warning
    assert at.dataframe[1].value["model"].tolist() == ["funnel-contract"]
