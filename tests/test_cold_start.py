"""Profile cold start: group popularity with back-off, the split, the library calls, evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.cold_start import cold_start_split, evaluate_cold_start, recommend_for_profiles, score_profiles
from recsys.data.dataset import build_dataset
from recsys.data.synthetic import generate_synthetic
from recsys.models import Popularity, get_model_class
from recsys.models.dtnmr import DTNMR
from recsys.models.group_popularity import GroupPopularity
from recsys.registry import Registry


def _profiles_dataset():
    """6 users: three 'a/x' users like items 0-1, two 'b/y' users like items 2-3, one 'b/x' item 4."""
    users = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    items = [0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 4]
    table = pd.DataFrame({"item_id": range(5), "title": list("ABCDE"), "artist": [""] * 5, "tags": [("t",)] * 5})
    feats = pd.DataFrame({"kind": ["a", "a", "a", "b", "b", "b"], "place": ["x", "x", "x", "y", "y", "x"]})
    return build_dataset("toy", np.asarray(users), np.asarray(items), None, table, user_features=feats)


def test_group_popularity_with_back_off():
    ds = _profiles_dataset()
    model = GroupPopularity(min_group_users=2).fit(ds)
    prof = pd.DataFrame({"kind": ["a", "b", "b", "c"], "place": ["x", "y", "x", "x"]})
    s = model.score_profiles(prof)
    assert s[0, :2].tolist() == [1.0, 1.0] and s[0, 2:].sum() == 0  # own group a/x
    assert s[1, 2:4].tolist() == [1.0, 1.0]  # own group b/y
    # b/x has one user (< 2): back off to kind b (3 users)
    np.testing.assert_allclose(s[2], [0, 0, 2 / 3, 2 / 3, 1 / 3])
    # unknown kind: global popularity
    np.testing.assert_allclose(s[3], np.asarray(ds.binary().sum(axis=0)).ravel() / 6)
    assert get_model_class("group_popularity") is GroupPopularity


def test_group_popularity_save_load(tmp_path):
    ds = _profiles_dataset()
    model = GroupPopularity(group_by=("kind",), min_group_users=1).fit(ds)
    reg = Registry(tmp_path)
    reg.save(model, dataset=ds, model_id="gp")
    loaded = reg.load("gp").model
    prof = pd.DataFrame({"kind": ["a", "b"]})
    np.testing.assert_array_equal(loaded.score_profiles(prof), model.score_profiles(prof))
    with pytest.raises(ValueError, match="lack the columns"):
        loaded.score_profiles(pd.DataFrame({"place": ["x"]}))


def test_group_popularity_needs_profiles():
    ds = generate_synthetic(n_users=50, n_items=60, n_artists=12, n_tags=4, seed=0)
    object.__setattr__(ds, "user_features", None)
    with pytest.raises(ValueError, match="no user features"):
        GroupPopularity().fit(ds)


@pytest.fixture(scope="module")
def cold():
    ds = generate_synthetic(n_users=300, n_items=200, n_artists=40, n_tags=5, seed=6)
    return cold_start_split(ds, seed=0, n_heldout_users=30)


def test_cold_start_split_hides_test_users(cold):
    assert len(cold.test_profiles) == cold.test_items.shape[0] == 30
    assert not set(cold.test_user_ids) & set(cold.train.user_ids)
    assert (np.diff(cold.test_items.indptr) >= 1).all()
    assert list(cold.test_profiles.columns) == ["age_group", "region", "favourite_tags"]


def test_profile_and_tag_cold_start_library_calls(cold):
    profile_cols = ["age_group", "region"]
    dt = DTNMR(dim=16, hidden=32, subset_size=10, max_points_per_user=10, epochs=2, user_features=tuple(profile_cols))
    dt.fit(cold.train)
    gp = GroupPopularity(group_by=tuple(profile_cols)).fit(cold.train)
    pop = Popularity().fit(cold.train)
    prof = cold.test_profiles[profile_cols]
    for model in (dt, gp, pop):
        s = score_profiles(model, prof)
        assert s.shape == (30, cold.train.n_items) and np.isfinite(s).all()
        res = evaluate_cold_start(model, cold.test_items, prof)
        assert res["n_users"] == 30 and 0 <= res["ndcg@10"] <= 1
    idx, _ = recommend_for_profiles(dt, {"age_group": "18-24", "region": "Europe"}, k=5)
    assert idx.shape == (1, 5)
    idx_tags, _ = recommend_for_profiles(dt, tags=["rock"], k=5)
    assert idx_tags.shape == (1, 5)
    # a stated tag pulls that tag's items up
    rock = np.asarray(["rock" in t for t in cold.train.items["tags"]])
    assert rock[idx_tags[0]].mean() >= rock.mean()
    with pytest.raises(ValueError, match="give profiles"):
        score_profiles(dt)
    s = score_profiles(pop, tags=[["rock"]])  # no metadata: an empty history
    np.testing.assert_allclose(s, pop.score(sp.csr_matrix((1, cold.train.n_items))))
