"""Low-rank DLAE: the contract, the closed form against a direct minimisation, rank and penalty."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.synthetic import generate_synthetic
from recsys.models import get_model_class
from recsys.models.dlae import LowRankDLAE
from tests.models.contract import RecommenderContract, contract_split


class TestLowRankDLAEContract(RecommenderContract):
    score_rtol = 1e-3

    def make_model(self) -> LowRankDLAE:
        return LowRankDLAE(latent_dim=32, dropout=0.5, l2=1.0)


def _objective(x: np.ndarray, b: np.ndarray, penalty: np.ndarray) -> float:
    return float(((x - x @ b) ** 2).sum() + (penalty[:, None] * b**2).sum())


def test_closed_form_is_the_best_rank_k_solution() -> None:
    """U_k U_k^T G beats every other rank-k B we try on the penalised objective, and full rank is DLAE."""
    ds = generate_synthetic(n_users=120, n_items=40, n_artists=12, n_tags=4, seed=3)
    x = ds.binary().toarray().astype(np.float64)
    g = x.T @ x
    p, l2, k = 0.4, 0.5, 6
    penalty = p / (1 - p) * np.diag(g) + l2
    model = LowRankDLAE(latent_dim=k, dropout=p, l2=l2).fit(ds)
    b = model.encoder_.astype(np.float64) @ model.decoder_.astype(np.float64)
    assert np.linalg.matrix_rank(b, tol=1e-6) == k
    best = _objective(x, b, penalty)
    full = np.linalg.solve(g + np.diag(penalty), g)  # DLAE's full-rank closed form
    rng = np.random.default_rng(0)
    u, s, vt = np.linalg.svd(full)
    candidates = [(u[:, :k] * s[:k]) @ vt[:k]]  # truncating the full-rank solution is not optimal
    candidates += [b + 1e-3 * rng.standard_normal((40, k)) @ rng.standard_normal((k, 40)) for _ in range(5)]
    assert all(best <= _objective(x, c, penalty) + 1e-9 for c in candidates)
    full_model = LowRankDLAE(latent_dim=40, dropout=p, l2=l2).fit(ds)
    b_full = full_model.encoder_.astype(np.float64) @ full_model.decoder_.astype(np.float64)
    np.testing.assert_allclose(b_full, full, atol=2e-4)


def test_eigenvalues_sorted_in_unit_interval_and_rank_capped() -> None:
    split = contract_split()
    model = LowRankDLAE(latent_dim=10_000, dropout=0.5).fit(split.train)
    assert model.encoder_.shape == (split.n_items, split.n_items)  # capped at n_items
    mu = model.eigenvalues_
    assert np.all(np.diff(mu) <= 1e-6) and mu[0] < 1 and mu[-1] > -1e-6
    assert get_model_class("dlae") is LowRankDLAE


@pytest.mark.parametrize("bad", [{"latent_dim": 0}, {"dropout": 1.0}, {"l2": -1.0}, {"dropout": 0.0, "l2": 0.0}])
def test_bad_parameters_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        LowRankDLAE(**bad).fit(contract_split().train)


def test_template_builds_the_family() -> None:
    from recsys.training import load_template

    cfg = load_template("dlae")
    assert cfg["family"] == "dlae"
    assert LowRankDLAE(**cfg["params"]).get_params() == cfg["params"]


def test_emphasis_decoder_fits_each_column_without_its_own_row() -> None:
    """emphasis=True: v_j = argmin over b = U_(-j) v of b^T A b - 2 b^T g_j, checked column by column."""
    ds = generate_synthetic(n_users=120, n_items=40, n_artists=12, n_tags=4, seed=3)
    x = ds.binary().toarray().astype(np.float64)
    g = x.T @ x
    p, l2, k = 0.4, 0.5, 6
    penalty = p / (1 - p) * np.diag(g) + l2
    a = g + np.diag(penalty)
    plain = LowRankDLAE(latent_dim=k, dropout=p, l2=l2).fit(ds)
    model = LowRankDLAE(latent_dim=k, dropout=p, l2=l2, emphasis=True).fit(ds)
    np.testing.assert_allclose(model.encoder_, plain.encoder_)  # same encoder, same latent space
    u = model.encoder_.astype(np.float64)
    expected = np.empty((k, g.shape[0]))
    for j in range(g.shape[0]):
        u_j = u.copy()
        u_j[j] = 0.0
        expected[:, j] = np.linalg.solve(u_j.T @ a @ u_j, u_j.T @ g[:, j])
    np.testing.assert_allclose(model.decoder_, expected, rtol=1e-3, atol=1e-4)
    assert not np.allclose(model.decoder_, plain.decoder_, atol=1e-3)

    def off_diagonal_loss(decoder: np.ndarray) -> float:  # the objective with B's diagonal zeroed
        b = u @ decoder.astype(np.float64)
        np.fill_diagonal(b, 0.0)
        return float(np.trace(b.T @ a @ b) - 2 * np.trace(b.T @ g))

    assert off_diagonal_loss(model.decoder_) < off_diagonal_loss(plain.decoder_)
    assert model.get_params()["emphasis"] is True


class TestLowRankDLAEEmphasisContract(RecommenderContract):
    score_rtol = 1e-3

    def make_model(self) -> LowRankDLAE:
        return LowRankDLAE(latent_dim=32, dropout=0.5, l2=1.0, emphasis=True)
