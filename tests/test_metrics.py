"""Ranking metrics on hand-computed cases."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.metrics import hits_matrix, ndcg_at_k, next_item_metrics, ranking_metrics, recall_at_k


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_recall_and_ndcg_hand_computed():
    # ranking for one user: items 3, 1, 4, 0, 2; held out {1, 2}
    scores = np.array([[2.0, 4.0, 1.0, 5.0, 3.0]])
    out = ranking_metrics(scores, _csr([[]], 5), _csr([[1, 2]], 5), recall_ks=(2, 5), ndcg_ks=(5,), coverage_k=2)
    # hits at ranks 2 and 5
    assert out["recall@2"][0] == pytest.approx(1 / 2)  # one hit in top 2, min(2, 2) = 2
    assert out["recall@5"][0] == pytest.approx(2 / 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert out["ndcg@5"][0] == pytest.approx(dcg / idcg)
    assert set(out["top_coverage"]) == {3, 1}


def test_recall_denominator_is_min_k_and_heldout():
    hits = np.array([[True, False, False], [True, True, False]])
    rec = recall_at_k(hits, np.array([1, 10]), 2)
    assert rec.tolist() == [1.0, 1.0]  # 1/min(2,1), 2/min(2,10)


def test_perfect_ranking_ndcg_is_one_and_bounds():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_rel = rng.integers(1, 8, size=30)
        hits = np.zeros((30, 10), dtype=bool)
        for u, n in enumerate(n_rel):
            hits[u, : min(n, 10)] = True
        assert np.allclose(ndcg_at_k(hits, n_rel, 10), 1.0)
        random_hits = rng.random((30, 10)) < 0.3
        v = ndcg_at_k(random_hits, np.maximum(n_rel, random_hits.sum(1)), 10)
        assert ((v >= 0) & (v <= 1 + 1e-12)).all()


def test_foldin_items_never_ranked_and_users_without_heldout_dropped():
    scores = np.array([[9.0, 8.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    foldin = _csr([[0, 1], [3]], 4)
    holdout = _csr([[2], []], 4)
    out = ranking_metrics(scores, foldin, holdout, recall_ks=(1,), ndcg_ks=(2,), coverage_k=1)
    assert len(out["recall@1"]) == 1  # second user has no held-out items
    assert out["recall@1"][0] == 1.0  # item 2 ranks first once 0 and 1 are excluded


def test_hits_matrix():
    top = np.array([[2, 0, 1]])
    assert hits_matrix(top, _csr([[0]], 3)).tolist() == [[False, True, False]]


def test_next_item_metrics():
    scores = np.array([[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]])
    out = next_item_metrics(scores, np.array([2, 1]), exclude=None, k=2)
    assert out["hr@2"].tolist() == [1.0, 0.0]
    assert out["ndcg@2"][0] == pytest.approx(1 / math.log2(3))
