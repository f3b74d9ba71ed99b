"""Popularity and EASE: the contract, plus EASE's closed form checked against a direct solve."""

import numpy as np
import pytest

from recsys.data.synthetic import generate_synthetic
from recsys.models import EASE, Popularity
from tests.models.contract import RecommenderContract


class TestEASEContract(RecommenderContract):
    def make_model(self) -> EASE:
        return EASE(l2=50.0)


class TestPopularityContract(RecommenderContract):
    beats_popularity = False  # it is Popularity

    def make_model(self) -> Popularity:
        return Popularity()


def test_ease_matches_constrained_least_squares():
    """B minimises ||X - XB||² + λ||B||² with diag(B) = 0: each column j is a ridge regression of
    X[:, j] on the other columns."""
    ds = generate_synthetic(n_users=120, n_items=40, n_artists=20, n_tags=4, seed=0)
    lam = 10.0
    b = EASE(l2=lam).fit(ds).B_
    x = ds.binary().toarray().astype(np.float64)
    assert np.allclose(np.diag(b), 0)
    for j in (0, 7, 33):
        others = [k for k in range(x.shape[1]) if k != j]
        a = x[:, others]
        w = np.linalg.solve(a.T @ a + lam * np.eye(len(others)), a.T @ x[:, j])
        assert np.allclose(b[others, j], w, atol=1e-4)


def test_ease_rejects_nonpositive_l2():
    ds = generate_synthetic(n_users=60, n_items=40, n_artists=20, n_tags=4, seed=0)
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASE(l2=0.0).fit(ds)


def test_popularity_orders_by_user_count():
    ds = generate_synthetic(n_users=100, n_items=60, n_artists=20, n_tags=4, seed=0)
    pop = Popularity().fit(ds)
    counts = np.diff(ds.interactions.tocsc().indptr)
    idx, _ = pop.recommend(ds.interactions[:1] * 0, k=5, exclude_seen=False)
    assert (counts[idx[0]] == np.sort(counts)[::-1][:5]).all()
