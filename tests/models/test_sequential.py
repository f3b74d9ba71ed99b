"""Ordered histories, the temporal split, next-item metrics and the ``score_sequences`` library call."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.sequences import OrderedHistories, as_sequences
from recsys.data.splits import temporal_leave_last_out
from recsys.data.synthetic import generate_synthetic
from recsys.metrics import next_item_metrics
from recsys.models import EASE, Popularity
from recsys.models.sequential import SequentialRecommender, recommend_sequences, score_sequences
from recsys.next_item import evaluate_next_item, targets_csr, validation_pair


@pytest.fixture(scope="module")
def tiny():
    return generate_synthetic(n_users=120, n_items=150, n_artists=30, n_tags=5, seed=2)


# ---- OrderedHistories -----------------------------------------------------------------------------
def test_from_lists_round_trip_and_access():
    h = OrderedHistories.from_lists([[3, 1, 2], [], [0]], 5)
    assert h.n_users == 3 and h.lengths.tolist() == [3, 0, 1]
    assert h[0].tolist() == [3, 1, 2] and h.to_lists() == [[3, 1, 2], [], [0]]
    assert h.rows(np.array([2, 0])).to_lists() == [[0], [3, 1, 2]]
    assert h.tail(2).to_lists() == [[1, 2], [], [0]]
    assert h.append(np.array([4, -1, 1])).to_lists() == [[3, 1, 2, 4], [], [0, 1]]
    assert h.padded(4, pad=9).tolist() == [[9, 3, 1, 2], [9, 9, 9, 9], [9, 9, 9, 0]]
    assert h.windows(np.array([0, 0]), np.array([2, 0]), 3, pad=9).tolist() == [[9, 3, 1], [9, 9, 9]]


def test_item_range_checked():
    with pytest.raises(ValueError, match="outside"):
        OrderedHistories.from_lists([[0, 5]], 5)
    with pytest.raises(TypeError, match="list of item-index lists"):
        as_sequences("abc", 5)


def test_position_csr_round_trips_the_order():
    h = OrderedHistories.from_lists([[3, 1, 2], [4, 0]], 5)
    x = h.to_csr("position")
    assert OrderedHistories.from_csr(x).to_lists() == h.to_lists()
    b = h.to_csr("binary")
    assert set(np.unique(b.data)) == {1.0}
    # a 0/1 row carries no order: ascending item index (the documented fallback)
    assert OrderedHistories.from_csr(b).to_lists() == [[1, 2, 3], [0, 4]]


def test_repeated_items_keep_their_latest_position():
    h = OrderedHistories.from_lists([[2, 1, 2]], 4)
    assert OrderedHistories.from_csr(h.to_csr("position")).to_lists() == [[1, 2]]


def test_fallback_order_by_weight_larger_is_later():
    x = sp.csr_matrix(np.array([[5.0, 0, 1.0, 3.0]]))
    assert OrderedHistories.from_csr(x).to_lists() == [[2, 3, 0]]


def test_from_dataset_orders_by_timestamp(tiny):
    h = OrderedHistories.from_dataset(tiny)
    x = tiny.interactions
    for u in (0, 5, 77):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        stamp = dict(zip(x.indices[lo:hi], tiny.timestamps[lo:hi], strict=True))
        times = [stamp[i] for i in h[u]]
        assert times == sorted(times) and sorted(h[u].tolist()) == x.indices[lo:hi].tolist()


# ---- temporal split and metrics ---------------------------------------------------------------------
def test_temporal_split_never_leaks_a_future_item(tiny):
    split = temporal_leave_last_out(tiny)
    x, ts = tiny.interactions, tiny.timestamps
    seqs_val, val_t = split.validation_inputs()
    seqs_test, test_t = split.test_inputs()
    for u in range(tiny.n_users):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        stamp = dict(zip(x.indices[lo:hi], ts[lo:hi], strict=True))
        train_items = split.train.interactions[u].indices
        assert max(stamp[i] for i in train_items) <= stamp[val_t[u]] <= stamp[test_t[u]]
        assert val_t[u] not in seqs_val[u] and test_t[u] not in seqs_test[u]
        assert seqs_test[u][-1] == val_t[u]  # test input = training sequence + validation item
        assert set(seqs_val[u].tolist()) == set(train_items.tolist())
    # the training Dataset keeps timestamps aligned with its interactions
    t = split.train
    assert len(t.timestamps) == t.interactions.nnz


def test_next_item_metrics_drop_users_without_target_and_exclude_history():
    scores = np.array([[0.9, 0.5, 0.1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    hist = sp.csr_matrix(([1.0], ([0], [0])), shape=(3, 3))
    out = next_item_metrics(scores, np.array([1, -1, 2]), exclude=hist, k=2)
    assert out["hr@2"].tolist() == [1.0, 0.0]  # user 0: item 0 excluded, target 1 ranks first
    assert out["ndcg@2"][0] == pytest.approx(1.0)
    assert len(out["hr@2"]) == 2


def test_evaluate_next_item_popularity_by_hand(tiny):
    """Full-catalogue ranking: HR@10 lies between the tie-pessimistic and tie-optimistic hand counts."""
    split = temporal_leave_last_out(tiny)
    pop = Popularity().fit(split.train)
    seqs, targets = split.test_inputs()
    res = evaluate_next_item(pop, seqs, targets, k=10)
    best, worst = [], []
    for u in range(seqs.n_users):
        s = pop.item_counts_.astype(np.float64).copy()
        s[seqs[u]] = -np.inf
        s_t = s[targets[u]]
        best.append(int((s > s_t).sum()) < 10)
        worst.append(int((s >= s_t).sum()) - 1 < 10)
    assert res["n_users"] == seqs.n_users
    assert np.mean(worst) <= res["hr@10"] <= np.mean(best)
    assert 0 < res["ndcg@10"] <= res["hr@10"]


def test_validation_pair_binary_for_plain_models(tiny):
    split = temporal_leave_last_out(tiny)
    x, y = validation_pair(EASE(), split, max_users=50)
    assert x.shape == (50, tiny.n_items) and set(np.unique(x.data)) == {1.0}
    assert (np.diff(y.indptr) == 1).all()
    assert targets_csr(np.array([2, -1]), 4).toarray().tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]


# ---- the library call ----------------------------------------------------------------------------
class _LastItemModel(SequentialRecommender):
    """Scores item (last + 1) highest: a model that only makes sense with an order."""

    def __init__(self):
        pass

    def _fit(self, train, validation, progress):
        pass

    def _score_sequences(self, seqs, profiles, tags):
        out = np.zeros((seqs.n_users, self.n_items_), dtype=np.float32)
        for u in range(seqs.n_users):
            if len(seqs[u]):
                out[u, (seqs[u][-1] + 1) % self.n_items_] = 1.0
        return out


def test_score_sequences_uses_order_for_sequential_and_sets_for_others(tiny):
    seq_model = _LastItemModel().fit(tiny)
    a = score_sequences(seq_model, [[5, 9]])
    b = score_sequences(seq_model, [[9, 5]])
    assert a.argmax() == 10 and b.argmax() == 6
    # score(csr) falls back to the documented order: larger stored value = later
    x = OrderedHistories.from_lists([[9, 5]], tiny.n_items).to_csr("position")
    assert seq_model.score(x).argmax() == 6
    ease = EASE(l2=10.0).fit(tiny)
    np.testing.assert_allclose(score_sequences(ease, [[5, 9]]), score_sequences(ease, [[9, 5]]))
    idx, _ = recommend_sequences(ease, [[5, 9]], k=5)
    assert not set(idx[0]) & {5, 9}
