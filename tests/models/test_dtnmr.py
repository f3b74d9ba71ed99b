"""DTNMR-style model: the contract, cached preprocessing, negative sampling, filters, profiles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data.synthetic import generate_synthetic
from recsys.models import get_model_class
from recsys.models.dtnmr import DTNMR, DTNMRPoints
from recsys.models.dtnmr_prep import PrepConfig, cache_paths, preprocess, sample_negatives
from recsys.registry import Registry
from tests.models.contract import RecommenderContract, contract_split

PROFILE = ("age_group", "region")


def small_dtnmr(**kw) -> DTNMR:
    params = dict(
        dim=16, hidden=32, subset_size=10, max_points_per_user=20, long_term_len=30, short_term_len=5,
        user_features=PROFILE, epochs=4, batch_size=128, lr=5e-3, seed=0,
    )  # fmt: skip
    return DTNMR(**{**params, **kw})


@pytest.fixture(scope="module")
def tiny():
    return generate_synthetic(n_users=80, n_items=120, n_artists=20, n_tags=5, seed=4)


class TestDTNMRContract(RecommenderContract):
    def make_model(self) -> DTNMR:
        return small_dtnmr()

    def test_profiles_and_tags_change_scores(self, model: DTNMR, split) -> None:
        seqs = [[1, 2, 3], []]
        profiles = pd.DataFrame({"age_group": ["18-24", "50+"], "region": ["Europe", "Asia"]})
        plain = model.score_sequences(seqs)
        with_profile = model.score_sequences(seqs, profiles=profiles)
        with_tags = model.score_sequences(seqs, tags=[["rock"], ["jazz", "no-such-tag"]])
        assert not np.allclose(plain, with_profile) and not np.allclose(plain, with_tags)
        unknown = pd.DataFrame({"age_group": ["??", "??"], "region": ["??", "??"]})
        np.testing.assert_allclose(model.score_sequences(seqs, profiles=unknown), plain, rtol=1e-6)

    def test_save_load_keeps_profile_scoring(self, model: DTNMR, split, tmp_path) -> None:
        reg = Registry(tmp_path)
        reg.save(model, dataset=split.train, model_id="dtnmr-profiles")
        loaded = reg.load("dtnmr-profiles").model
        profiles = pd.DataFrame({"age_group": ["18-24"], "region": ["Europe"]})
        np.testing.assert_array_equal(
            loaded.score_sequences([[4, 5]], profiles=profiles, tags=[["rock"]]),
            model.score_sequences([[4, 5]], profiles=profiles, tags=[["rock"]]),
        )
        assert loaded.user_vocab_ == model.user_vocab_ and loaded.item_vocab_ == model.item_vocab_


def test_registered():
    assert get_model_class("dtnmr") is DTNMR


# ---- cached preprocessing ---------------------------------------------------------------------------
def test_cache_is_reused(tiny, tmp_path):
    cfg = PrepConfig(user_features=PROFILE)
    first = preprocess(tiny, cfg, cache_dir=tmp_path)
    second = preprocess(tiny, cfg, cache_dir=tmp_path)
    assert not first.from_cache and second.from_cache
    for name in ("point_user", "point_pos", "item_feat_ids", "user_feat_ids", "item_kept"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.sequences.to_lists() == first.sequences.to_lists()
    assert second.item_vocab == first.item_vocab and second.user_vocab == first.user_vocab
    npz, meta = cache_paths(tmp_path, first.key)
    with np.load(npz, allow_pickle=False) as z:  # plain arrays, no pickle
        assert "point_user" in z.files
    assert json.loads(meta.read_text())["key"] == first.key
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([npz.name, meta.name])  # atomic: no temp files


def test_fit_reuses_cache(tiny, tmp_path):
    a = small_dtnmr(epochs=1, cache_dir=str(tmp_path)).fit(tiny)
    b = small_dtnmr(epochs=1, cache_dir=str(tmp_path)).fit(tiny)
    assert not a.prep_from_cache_ and b.prep_from_cache_
    np.testing.assert_array_equal(a.score_sequences([[1, 2]]), b.score_sequences([[1, 2]]))


def test_cache_invalidated_by_config_data_and_corruption(tiny, tmp_path):
    cfg = PrepConfig(user_features=PROFILE)
    base = preprocess(tiny, cfg, cache_dir=tmp_path)
    assert not preprocess(tiny, PrepConfig(user_features=PROFILE, top=0.5), cache_dir=tmp_path).from_cache
    assert not preprocess(tiny, PrepConfig(user_features=("region",)), cache_dir=tmp_path).from_cache
    changed = tiny.subset(users=np.arange(tiny.n_users - 1))  # one listener fewer
    assert not preprocess(changed, cfg, cache_dir=tmp_path).from_cache
    feats = tiny.user_features.copy()
    feats.loc[0, "region"] = "Asia" if feats.loc[0, "region"] != "Asia" else "Europe"
    relabelled = tiny.subset()
    object.__setattr__(relabelled, "user_features", feats)
    assert not preprocess(relabelled, cfg, cache_dir=tmp_path).from_cache
    assert preprocess(tiny, cfg, cache_dir=tmp_path).from_cache  # the original is still cached
    npz, _ = cache_paths(tmp_path, base.key)
    npz.write_bytes(npz.read_bytes()[:-10])  # truncated
    rebuilt = preprocess(tiny, cfg, cache_dir=tmp_path)
    assert not rebuilt.from_cache
    np.testing.assert_array_equal(rebuilt.point_user, base.point_user)
    assert preprocess(tiny, cfg, cache_dir=tmp_path).from_cache  # rewritten


# ---- filters, points, negatives -------------------------------------------------------------------
def test_filters_and_points(tiny):
    data = preprocess(tiny, PrepConfig(top=0.5, min_playlist_len=10, max_playlist_len=40, max_points_per_user=7))
    assert data.item_kept.sum() == int(np.ceil(0.5 * tiny.n_items))
    pop = np.asarray(tiny.binary().sum(axis=0)).ravel()
    assert pop[data.item_kept].min() >= pop[~data.item_kept].max()
    lengths = data.sequences.lengths[data.point_user]
    assert lengths.min() >= 10 and lengths.max() <= 40
    assert np.bincount(data.point_user).max() <= 7
    positives = data.sequences.items[data.sequences.indptr[data.point_user] + data.point_pos]
    assert data.item_kept[positives].all()


def test_negative_samples_never_include_positives():
    rng = np.random.default_rng(0)
    n_items = 30
    dense = np.zeros((3, n_items), dtype=np.float32)
    dense[0, :27] = 1  # only 3 candidates left for user 0
    dense[1, ::2] = 1
    positives = sp.csr_matrix(dense)
    users = np.array([0, 1, 2, 0, 1])
    for _ in range(20):
        neg = sample_negatives(rng, users, 25, np.arange(n_items), positives)
        assert neg.shape == (5, 25)
        assert not dense[users[:, None], neg].any()
    with pytest.raises(ValueError, match="every candidate"):
        sample_negatives(rng, np.array([0]), 2, np.arange(27), positives)


def test_torch_dataset_points(tiny):
    data = preprocess(tiny, PrepConfig(user_features=PROFILE, max_points_per_user=5))
    points = DTNMRPoints(data, short_term_len=4, long_term_len=8, subset_size=6, rng=np.random.default_rng(0))
    assert len(points) == data.n_points
    batch = points.collate(np.arange(len(points)))
    user_items = data.user_positives().toarray() > 0
    assert not user_items[batch["user"].numpy()[:, None], batch["negatives"].numpy()].any()
    i = 3
    one = points[i]
    u, t = data.point_user[i], data.point_pos[i]
    seq = data.sequences[u]
    assert int(one["positive"]) == seq[t]
    short = one["short"].numpy()
    expected = seq[max(0, t - 4) : t]
    assert short[len(short) - len(expected) :].tolist() == expected.tolist()
    assert (short[: len(short) - len(expected)] == tiny.n_items).all()
    assert batch["short"].shape == (len(points), 4) and batch["long"].shape == (len(points), 8)
    assert len(batch["profile_offsets"]) == len(points)


def test_no_points_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="no training points"):
        small_dtnmr(min_playlist_len=10_000).fit(tiny)


def test_unknown_profile_column_is_refused():
    with pytest.raises(ValueError, match="not columns"):
        small_dtnmr(user_features=("shoe_size",)).fit(contract_split().train)
