"""The strong-generalization protocol of BENCHMARK.md and the temporal split."""

import numpy as np
import pytest

from recsys.data.splits import binarize_and_filter, strong_generalization_split, temporal_leave_last_out
from recsys.data.synthetic import generate_synthetic
from recsys.evaluate import evaluate_on_users
from recsys.models import Popularity
from recsys.models.base import top_k


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=500, n_items=400, n_artists=60, n_tags=6, seed=3)


def test_filter_thresholds(small):
    ds = binarize_and_filter(small, 5, 5)
    x = ds.interactions
    assert set(np.unique(x.data)) == {1.0}
    assert (np.diff(x.indptr) >= 5).all()  # users filtered last: all keep >= 5 items


def test_split_sizes_disjoint_and_heldout_fraction(small):
    s = strong_generalization_split(small, seed=0, n_heldout_users=50)
    assert s.val_foldin.shape[0] == 50 and s.test_foldin.shape[0] == 50
    filtered = binarize_and_filter(small)
    assert s.train.n_users == filtered.n_users - 100
    ids = [set(s.train.user_ids), set(s.val_user_ids), set(s.test_user_ids)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    for fold, hold in ((s.val_foldin, s.val_holdout), (s.test_foldin, s.test_holdout)):
        assert fold.multiply(hold).nnz == 0  # disjoint
        n = np.diff((fold + hold).indptr)
        k = np.diff(hold.indptr)
        expected = np.maximum(1, [round(0.2 * v) for v in n])
        # items absent from training users are dropped, so n counts only kept items
        assert (k == expected).all()
    # every item column occurs among training users
    assert (np.diff(s.train.interactions.tocsc().indptr) > 0).all()


def test_split_deterministic_per_seed(small):
    a = strong_generalization_split(small, seed=7, n_heldout_users=40)
    b = strong_generalization_split(small, seed=7, n_heldout_users=40)
    c = strong_generalization_split(small, seed=8, n_heldout_users=40)
    assert (a.test_user_ids == b.test_user_ids).all()
    assert (a.test_holdout != b.test_holdout).nnz == 0
    assert not np.array_equal(a.test_user_ids, c.test_user_ids)


def test_permutation_follows_benchmark_recipe(small):
    """Step 3: rng.permutation of the sorted unique user ids; first H validation, next H test."""
    ds = binarize_and_filter(small)
    rng = np.random.default_rng(11)
    perm = rng.permutation(np.unique(ds.user_ids))
    s = strong_generalization_split(small, seed=11, n_heldout_users=30)
    assert set(s.val_user_ids) == set(perm[:30])
    assert set(s.test_user_ids) == set(perm[30:60])


def test_no_foldin_item_ever_recommended(small):
    s = strong_generalization_split(small, seed=1, n_heldout_users=40)
    model = Popularity().fit(s.train)
    idx, _ = model.recommend(s.test_foldin, k=50)
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    assert s.test_foldin[rows, idx.ravel()].sum() == 0
    assert evaluate_on_users(model, s.test_foldin, s.test_holdout)["ndcg@100"] > 0


def test_top_k_sorted_and_excludes():
    scores = np.array([[0.1, 0.5, 0.3, 0.9]])
    import scipy.sparse as sp

    idx, val = top_k(scores, 3, exclude=sp.csr_matrix(([1.0], ([0], [3])), shape=(1, 4)))
    assert idx.tolist() == [[1, 2, 0]]
    assert (np.diff(val[0]) <= 0).all()


def test_temporal_split_never_leaks_future(small):
    t = temporal_leave_last_out(small)
    x, ts = small.interactions, small.timestamps
    train = t.train.interactions
    for u in range(0, small.n_users, 7):
        if t.test_targets[u] < 0:
            continue
        lo, hi = x.indptr[u], x.indptr[u + 1]
        stamp = dict(zip(x.indices[lo:hi], ts[lo:hi], strict=True))
        train_items = train.indices[train.indptr[u] : train.indptr[u + 1]]
        assert max(stamp[i] for i in train_items) <= stamp[t.val_targets[u]] <= stamp[t.test_targets[u]]
        assert t.test_targets[u] not in train_items and t.val_targets[u] not in train_items
    assert train.nnz == x.nnz - 2 * (t.test_targets >= 0).sum()


def test_temporal_split_needs_timestamps(small):
    no_ts = small.subset(users=np.arange(10))
    object.__setattr__(no_ts, "timestamps", None)
    with pytest.raises(ValueError, match="no timestamps"):
        temporal_leave_last_out(no_ts)
