"""SVD baseline: the contract, fold-in against surprise's own user factors and a dense oracle,
single picks, rating signals, negative sampling and the batched Gram matrices."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr

from recsys.data.synthetic import generate_synthetic
from recsys.models import get_model_class
from recsys.models.svd import SVDBaseline, batched_grams, choose_rating_signal, listed_trainset, sample_negatives
from tests.models.contract import RecommenderContract, contract_split


class TestSVDContract(RecommenderContract):
    def make_model(self) -> SVDBaseline:
        return SVDBaseline(n_factors=16, seed=0)


@functools.lru_cache(maxsize=1)
def small_counts():
    """300 users x 600 songs with geometric play counts (not binarised)."""
    return generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)


@functools.lru_cache(maxsize=4)
def converged(rating: str, negatives: float) -> SVDBaseline:
    """SGD run long enough to sit near its stationary point (lr 0.02, many epochs, k = 16)."""
    epochs = 100 if negatives == 0 else 30
    model = SVDBaseline(
        n_factors=16, n_epochs=epochs, lr_all=0.02, rating=rating, negatives_per_positive=negatives, fold_in_reg=None
    )
    return model.fit(small_counts())


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_registered_under_its_family() -> None:
    assert get_model_class("svd") is SVDBaseline


# ---- fold-in reproduces surprise ------------------------------------------------------------
def test_fold_in_reproduces_known_users_factors_explicit_signal() -> None:
    """Log counts, no negatives: the fold-in solves exactly the problem surprise's SGD solves for p_u,
    b_u (its per-rating shrinkage is ridge scaled by the user's count), so the two agree closely."""
    model = converged("log_counts", 0.0)
    x = small_counts().interactions
    p, b = model.fold_in(x)
    cos = _cosine(p, model.user_factors_)
    rel = np.linalg.norm(p - model.user_factors_, axis=1) / np.linalg.norm(model.user_factors_, axis=1)
    assert np.median(cos) > 0.97 and np.quantile(cos, 0.1) > 0.9, np.quantile(cos, [0.1, 0.5])
    assert np.median(rel) < 0.15, np.median(rel)
    assert np.corrcoef(b, model.user_bias_)[0, 1] > 0.95
    # control: another user's factors are not close, so the agreement above is not trivial
    assert np.median(_cosine(p, np.roll(model.user_factors_, 1, axis=0))) < 0.5


def test_fold_in_reproduces_known_users_with_sampled_negatives() -> None:
    """Binary data: surprise saw one draw of negatives, the fold-in their expectation over every
    unobserved item, so the factors differ a little; directions and item rankings still agree."""
    model = converged("binary_negatives", 8.0)
    x = small_counts().binary()
    p, _ = model.fold_in(x)
    cos = _cosine(p, model.user_factors_)
    assert np.median(cos) > 0.95 and np.quantile(cos, 0.1) > 0.85, np.quantile(cos, [0.1, 0.5])
    ours, theirs = model.decode(p[:60]), model.decode(model.user_factors_[:60])
    rho = np.array([spearmanr(a, b)[0] for a, b in zip(ours, theirs)])
    assert np.median(rho) > 0.95, np.median(rho)


# ---- fold-in against a readable dense oracle -------------------------------------------------
def _oracle(model: SVDBaseline, row: sp.csr_matrix) -> np.ndarray:
    """Weighted ridge over every item, written out densely: history items with their rating and
    weight 1, all other items with rating 0 and weight c_u (when the model uses negatives)."""
    n_items = row.shape[1]
    q = np.hstack([model.item_factors_.astype(np.float64), np.ones((n_items, 1))])
    hist = row.indices
    target = np.zeros(n_items)
    target[hist] = model._history_ratings(row)
    weight = np.zeros(n_items)
    n_u = hist.size
    m_u = min(model.negatives_per_positive * n_u, n_items - n_u)
    if model.negatives_per_positive > 0:
        weight[:] = m_u / (n_items - n_u)
    weight[hist] = 1.0
    lam = (model.reg_all if model.fold_in_reg is None else model.fold_in_reg) * max(n_u + m_u, 1.0)
    y = target - model.global_mean_ - model.item_bias_.astype(np.float64)
    a = np.vstack([np.sqrt(weight)[:, None] * q, np.sqrt(lam) * np.eye(q.shape[1])])
    rhs = np.concatenate([np.sqrt(weight) * y, np.zeros(q.shape[1])])
    return np.linalg.lstsq(a, rhs, rcond=None)[0]


@pytest.mark.parametrize("rating, negatives", [("binary_negatives", 8.0), ("log_counts", 0.0), ("log_counts", 2.0)])
def test_fold_in_equals_dense_weighted_ridge(rating: str, negatives: float) -> None:
    ds = small_counts()
    model = SVDBaseline(n_factors=8, n_epochs=5, rating=rating, negatives_per_positive=negatives).fit(ds)
    n = ds.n_items
    rows = [
        sp.csr_matrix(([1.0], ([0], [17])), shape=(1, n)),  # one pick
        sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [3, 10, 42])), shape=(1, n)),  # picks
        ds.interactions[5],  # play counts
        ds.interactions[250],
    ]
    batch = sp.vstack([*rows, sp.csr_matrix((1, n))]).tocsr()
    p, b = model.fold_in(batch)
    for u, row in enumerate(rows):
        theta = _oracle(model, sp.csr_matrix(row))
        np.testing.assert_allclose(np.r_[p[u], b[u]], theta, rtol=1e-6, atol=1e-8)
    assert not p[-1].any() and b[-1] == 0  # empty history: the prior


# ---- picks ---------------------------------------------------------------------------------
def test_single_pick_personalises_towards_its_genre() -> None:
    """One pick moves the list towards the pick's genre, compared with the empty-history ranking."""
    split = contract_split()
    model = SVDBaseline(n_factors=16).fit(split.train)
    tags = split.train.items["tags"].to_numpy()
    n = split.n_items
    base_top, _ = model.recommend(sp.csr_matrix((1, n)), k=20)
    gains = []
    for item in range(0, n, 15):
        genre = tags[item][0]
        pick = sp.csr_matrix(([1.0], ([0], [item])), shape=(1, n))
        top, _ = model.recommend(pick, k=20)
        assert item not in top[0]
        share = np.mean([genre in tags[i] for i in top[0]])
        share_empty = np.mean([genre in tags[i] for i in base_top[0] if i != item])
        gains.append(share - share_empty)
    assert np.mean(gains) > 0.3, gains
    assert np.mean(np.array(gains) > 0) > 0.8, gains


def test_picks_without_intensity_get_the_mean_rating_under_log_counts() -> None:
    model = converged("log_counts", 0.0)
    assert model.rating_signal_ == "log_counts"
    assert 1.0 < model.pick_rating_ < 5.0
    n = model.n_items_
    picks = sp.csr_matrix(([1.0, 1.0], ([0, 0], [1, 2])), shape=(1, n))
    counts = sp.csr_matrix(([1.0, 30.0], ([0, 0], [1, 2])), shape=(1, n))
    np.testing.assert_allclose(model._history_ratings(picks), model.pick_rating_)
    r = model._history_ratings(counts)
    assert r[0] < r[1] <= 5.0 and r[0] < model.pick_rating_


# ---- rating signals and fitting -------------------------------------------------------------
def test_auto_rating_signal() -> None:
    assert choose_rating_signal(np.array([1.0, 3.0, 250.0])) == "log_counts"
    assert choose_rating_signal(np.array([1.0, 3.0, 5.0, 4.0])) == "stars"
    assert choose_rating_signal(np.ones(10)) == "binary_negatives"
    assert choose_rating_signal(np.array([0.5, 2.5])) == "binary_negatives"
    assert SVDBaseline(n_factors=4, n_epochs=2).fit(small_counts()).rating_signal_ == "log_counts"


def test_binary_data_needs_negatives_and_bad_params_are_refused() -> None:
    split = contract_split()
    with pytest.raises(ValueError, match="negatives_per_positive > 0"):
        SVDBaseline(negatives_per_positive=0).fit(split.train)
    with pytest.raises(ValueError, match="rating must be one of"):
        SVDBaseline(rating="counts").fit(split.train)
    with pytest.raises(ValueError, match="fold_in_reg"):
        SVDBaseline(fold_in_reg=0.0).fit(split.train)


def test_training_log_progress_and_no_surprise_object_kept() -> None:
    split = contract_split()
    calls = []
    model = SVDBaseline(n_factors=8, n_epochs=3).fit(
        split.train, validation=(split.val_foldin, split.val_holdout), progress=lambda *a: calls.append(a)
    )
    (entry,) = model.training_log_
    assert entry["epoch"] == 3 and {"train_loss", "val_ndcg@100", "seconds"} <= set(entry)
    assert 0 < entry["val_ndcg@100"] <= 1 and np.isfinite(entry["train_loss"])
    assert calls[-1][0] == 3 and calls[-1][2]["val_ndcg@100"] == entry["val_ndcg@100"]
    assert all(isinstance(v, np.ndarray) for v in model._state().values())
    assert not any("surprise" in type(v).__module__ for v in vars(model).values())


def test_items_absent_from_training_get_zero_factors_and_lowest_bias() -> None:
    ds = small_counts()
    x = ds.interactions.tolil()
    x[:, 7] = 0
    x = sp.csr_matrix(x)
    x.eliminate_zeros()
    ds2 = type(ds)(name="holes", interactions=x, items=ds.items, user_ids=ds.user_ids)
    model = SVDBaseline(n_factors=8, n_epochs=3, rating="log_counts", negatives_per_positive=0).fit(ds2)
    assert not model.item_factors_[7].any()
    assert model.item_bias_[7] == model.item_bias_.min()


def test_save_load_keeps_the_rating_signal() -> None:
    model = converged("log_counts", 0.0)
    loaded = SVDBaseline(**model.get_params()).load_state_dict(model.state_dict())
    assert loaded.rating_signal_ == "log_counts" and loaded.pick_rating_ == model.pick_rating_
    x = small_counts().interactions[:20]
    np.testing.assert_array_equal(loaded.score(x), model.score(x))
    picks = small_counts().binary()[:20]
    np.testing.assert_array_equal(loaded.encode(picks), model.encode(picks))


# ---- helpers -------------------------------------------------------------------------------
def test_sample_negatives_avoid_history_and_repeats() -> None:
    x = small_counts().binary()
    u, i = sample_negatives(x, 3.0, np.random.default_rng(0))
    assert not np.asarray(x[u, i]).any()
    keys = u * x.shape[1] + i
    assert np.unique(keys).size == keys.size
    per_user = np.bincount(u, minlength=x.shape[0])
    np.testing.assert_array_equal(per_user, 3 * np.diff(x.indptr))


def test_batched_grams_match_a_loop() -> None:
    rng = np.random.default_rng(0)
    x = sp.random(30, 50, density=0.2, format="lil", random_state=1)
    x[3] = 0  # an empty row
    x = sp.csr_matrix(x)
    qt = rng.normal(size=(50, 5))
    out = batched_grams(x, qt, block_rows=16)  # forces several blocks
    for u in range(30):
        row = x[u]
        expected = (qt[row.indices] * row.data[:, None]).T @ qt[row.indices]
        np.testing.assert_allclose(out[u], expected, atol=1e-12)


def test_listed_trainset_gives_surprise_identical_factors() -> None:
    """The fast rating iterator changes speed only: stock surprise learns bit-identical parameters."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader

    x = small_counts().interactions
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    frame = pd.DataFrame({"u": rows, "i": x.indices, "r": np.log1p(x.data)})
    stock = Dataset.load_from_df(frame, Reader(rating_scale=(0, 5))).build_full_trainset()
    a = SVD(n_factors=4, n_epochs=3, random_state=0).fit(stock)
    b = SVD(n_factors=4, n_epochs=3, random_state=0).fit(listed_trainset(stock))
    for name in ("pu", "qi", "bu", "bi"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert list(listed_trainset(stock).all_ratings()) == list(stock.all_ratings())
