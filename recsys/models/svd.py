"""SVD baseline: scikit-surprise's biased SVD, with exact fold-in of users it never saw.

The model (Koren, Bell & Volinsky 2009; surprise's ``SVD(biased=True)``) predicts a rating

    r_ui = mu + b_u + b_i + q_i . p_u

and is trained by surprise's SGD on ratings derived from the implicit weights (``rating``):

* ``"log_counts"``: ``r = 1 + 4 log1p(w) / log1p(w_max)`` (listen counts; the log tames the heavy
  tail, the scale maps the training maximum to 5).
* ``"stars"``: ``r = w``, for 1..5 integer stars.
* ``"binary_negatives"``: ``r = 1`` for every interaction.
* ``"auto"`` (default): ``stars`` when every weight is an integer in 1..5 and not all are 1,
  ``log_counts`` when the largest weight is above 5, otherwise ``binary_negatives``. The
  strong-generalization protocol binarises, so benchmarks and registry models use
  ``binary_negatives``.

Under every signal, ``negatives_per_positive * n_u`` items per user are drawn uniformly among the
items the user lacks and rated 0. Binary data needs them: on positives alone every rating is 1 and
SVD learns a constant. Explicit signals gain from them too: rating-prediction SVD on observed
ratings alone ranks badly for top-N (Cremonesi et al. 2010; Last.fm 2K validation NDCG@100 0.05
with log counts and no negatives, 0.41 with 8 negatives per positive). ``negatives_per_positive=0``
gives the classic observed-only model (explicit signals only).

Fold-in (``encode``): the item factors ``q_i``, biases ``b_i`` and ``mu`` stay fixed and the user's
``(p_u, b_u)`` is the exact ridge solution of the training objective, one ``(k+1) x (k+1)`` system
per user, all solved in one stacked ``np.linalg.solve``::

    min  sum_i c_ui (r_ui - mu - b_i - b_u - q_i . p_u)^2 + lambda_u (|p_u|^2 + b_u^2)

* History items have their rating and ``c_ui = 1``.
* With negatives, *every other item* has ``r = 0`` and ``c_u = m_u / (n_items - n_u)``,
  ``m_u = min(negatives_per_positive * n_u, n_items - n_u)``: the expectation of the training
  objective over the uniform negative draw. So the fold-in is deterministic (no sampling) and works
  for any list of picks, one item included. As in implicit ALS, the sum over all items is one
  precomputed Gram matrix ``G = sum_i [q_i,1][q_i,1]^T`` plus a correction over the history:
  O(n_u k^2) per user. A fold-in that saw only positives would fit ``r = 1`` everywhere.
* ``lambda_u = fold_in_reg * W_u``, ``W_u`` the user's total weight (``n_u + m_u``; at least 1).
  surprise's SGD shrinks ``p_u`` and ``b_u`` by ``reg_all`` at each of the user's ratings, so with
  ``fold_in_reg=None`` (meaning ``reg_all``) the fold-in is the stationary point of surprise's
  objective (frequency-scaled ridge, as ALS-WR, Zhou et al. 2008). The default 0.005 was chosen on
  validation users: the SGD stops short of convergence, its item factors stay small, and new users
  need a weaker pull to zero.
* A history whose weights are all exactly 1 carries no intensity (the app's picks,
  ``Dataset.binary()``, ``histories_from_item_ids``). Under an explicit signal its items get
  ``pick_rating_``, the mean rating of a training interaction, not the rating of one listen.
* An empty history gives ``p_u = 0``, ``b_u = 0``: the ranking is ``mu + b_i``.

``encode`` returns ``p_u`` only (``latent_dim = n_factors``); ``decode(z) = mu + b_i + z @ Q^T``.
``b_u`` shifts all of a user's scores by the same amount, so dropping it changes no ranking and no
normalised score. ``score_kind`` is ``"similarity"``: to postfilter, turn a row of scores into
probabilities with ``softmax((s - mean(s)) / std(s))`` over the items (z-scoring makes the
temperature independent of the rating scale and of ``mu``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import LatentRecommender, ModelFitError, as_csr, register

logger = logging.getLogger("recsys")

RATING_SIGNALS = ("auto", "log_counts", "stars", "binary_negatives")
_CODES = {"log_counts": 0, "stars": 1, "binary_negatives": 2}
#: Padded (users x history length) rows per block when building the per-user Gram matrices.
_GRAM_BLOCK_ROWS = 32768


@functools.cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency
    except ImportError:  # pragma: no cover
        return None
    return ThreadpoolController()


def single_threaded_blas() -> contextlib.AbstractContextManager:
    """Stacked tiny matmuls and solves call BLAS once per user: threads only add overhead there, and on
    a busy machine a threaded BLAS turned 300 fold-ins from 0.1 s into 40 s. So they run on one."""
    controller = _blas_controller()
    return controller.limit(limits=1, user_api="blas") if controller else contextlib.nullcontext()


@functools.cache
def _listed_trainset_class() -> type:
    from surprise import Trainset

    class ListedTrainset(Trainset):
        """A surprise Trainset whose ``all_ratings()`` zips three flat lists instead of running a
        generator: same ratings in the same order, so the same factors, about 3x faster SGD."""

        def __init__(self, ts: Trainset):
            super().__init__(
                ts.ur, ts.ir, ts.n_users, ts.n_items, ts.n_ratings, ts.rating_scale,
                ts._raw2inner_id_users, ts._raw2inner_id_items,
            )  # fmt: skip
            self._users = list(itertools.chain.from_iterable(itertools.repeat(u, len(r)) for u, r in ts.ur.items()))
            pairs = list(itertools.chain.from_iterable(ts.ur.values()))
            self._items, self._ratings = [i for i, _ in pairs], [r for _, r in pairs]

        def all_ratings(self):
            return zip(self._users, self._items, self._ratings)

    return ListedTrainset


def listed_trainset(trainset):
    """Speed up surprise's SGD, which pulls every rating of every epoch through
    ``trainset.all_ratings()``; that generator, not the arithmetic, was two thirds of the fit."""
    return _listed_trainset_class()(trainset)


def choose_rating_signal(weights: np.ndarray) -> str:
    """The ``"auto"`` rule: stars for 1..5 integers (not all 1), log counts above 5, else binary."""
    w = np.asarray(weights)
    if w.size == 0:
        return "binary_negatives"
    if w.max() > 5:
        return "log_counts"
    if w.min() >= 1 and np.all(w == np.round(w)) and w.max() > 1:
        return "stars"
    return "binary_negatives"


def sample_negatives(x: sp.csr_matrix, per_positive: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``round(per_positive * n_u)`` distinct items per user drawn uniformly among the items it lacks
    (all of them when fewer are left). Returns (user rows, item columns), grouped by user.

    Vectorised: draw with replacement (1.5x plus 8 per user), drop history items and repeats, keep
    a random subset of the wanted size. The few users left short (those holding most of the
    catalogue) are topped up from their complement one by one.
    """
    n_users, n_items = x.shape
    counts = np.diff(x.indptr)
    want = np.minimum(np.round(per_positive * counts).astype(np.int64), n_items - counts)
    draws = np.where(want > 0, np.ceil(1.5 * want).astype(np.int64) + 8, 0)
    users = np.repeat(np.arange(n_users, dtype=np.int64), draws)
    keys = users * n_items + rng.integers(0, n_items, size=users.size)
    pos_keys = np.repeat(np.arange(n_users, dtype=np.int64), counts) * n_items + x.indices
    pos_keys.sort()
    if pos_keys.size and keys.size:
        hit = np.searchsorted(pos_keys, keys).clip(max=pos_keys.size - 1)
        keys = keys[pos_keys[hit] != keys]
    keys.sort()
    keys = keys[np.diff(keys, prepend=-1) != 0]  # distinct (keys are >= 0)
    keys = keys[rng.permutation(keys.size)]
    keys = keys[np.argsort(keys // n_items, kind="stable")]  # grouped by user, random order within
    u = keys // n_items
    keep = (np.arange(u.size) - np.searchsorted(u, u, side="left")) < want[u]
    u, items = u[keep], keys[keep] % n_items
    got = np.bincount(u, minlength=n_users)
    extra_u, extra_i = [u], [items]
    for s in np.flatnonzero(got < want):
        lo, hi = np.searchsorted(u, [s, s + 1])
        free = np.setdiff1d(
            np.arange(n_items), np.concatenate([x.indices[x.indptr[s] : x.indptr[s + 1]], items[lo:hi]])
        )
        extra_i.append(rng.choice(free, size=want[s] - got[s], replace=False))
        extra_u.append(np.full(want[s] - got[s], s, dtype=np.int64))
    return np.concatenate(extra_u), np.concatenate(extra_i).astype(np.int64)


def _row_of_entries(x: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))


def batched_grams(x: sp.csr_matrix, qt: np.ndarray, block_rows: int = _GRAM_BLOCK_ROWS) -> np.ndarray:
    """``sum_i x_ui qt_i qt_i^T`` for every row u of ``x``: (n_users, d, d), no Python loop per user.

    Rows are sorted by length and padded in blocks of at most ``block_rows`` (users x length), so
    memory stays bounded and padding stays small; each block is one batched matmul.
    """
    n, d = x.shape[0], qt.shape[1]
    out = np.zeros((n, d, d))
    lengths = np.diff(x.indptr)
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    padded = np.vstack([qt, np.zeros((1, d))])  # index n_items -> a zero row for padding
    start = 0
    while start < n:
        cost = (np.arange(1, n - start + 1)) * np.maximum(sorted_len[start:], 1)
        end = start + max(1, int(np.searchsorted(cost, block_rows, side="right")))
        rows = order[start:end]
        sub = x[rows]
        width = max(int(sorted_len[end - 1]), 1)
        mask = np.arange(width) < np.diff(sub.indptr)[:, None]
        idx = np.full(mask.shape, qt.shape[0])
        w = np.zeros(mask.shape)
        idx[mask], w[mask] = sub.indices, sub.data
        y = padded[idx]  # (c, width, d)
        out[rows] = np.matmul(y.transpose(0, 2, 1), y * w[..., None])
        start = end
    return out


@register("svd")
class SVDBaseline(LatentRecommender):
    """Biased SVD (scikit-surprise) on a rating signal derived from implicit data; fold-in by ridge.

    Parameters
    ----------
    n_factors : int
        k, the latent dimension.
    n_epochs : int
        SGD passes over the ratings (surprise).
    lr_all : float
        SGD learning rate for every parameter (surprise).
    reg_all : float
        L2 regularisation of every parameter, applied at each rating (surprise).
    rating : {"auto", "log_counts", "stars", "binary_negatives"}
        How implicit weights become ratings; see the module docstring.
    negatives_per_positive : float
        Unobserved items rated 0 per interaction: sampled in training, their expectation in the
        fold-in. Must be > 0 for binary data; 0 gives observed-only rating prediction.
    fold_in_reg : float or None
        Ridge weight of the fold-in per unit of user weight; None uses ``reg_all``, which makes the
        fold-in the stationary point of surprise's objective.
    seed : int
        Seeds negative sampling, the shuffling of the ratings and surprise's initialisation.

    Attributes
    ----------
    item_factors_ : ndarray, shape (n_items, n_factors)
        q_i; zero for items absent from the trainset.
    item_bias_ : ndarray, shape (n_items,)
        b_i; items absent from the trainset get the lowest learned bias.
    global_mean_ : float
        mu, the mean training rating (sampled negatives included).
    rating_signal_ : str
        The signal actually used ("auto" resolved).
    count_scale_ : float
        ``log1p`` of the largest training weight (``log_counts``); 1.0 otherwise.
    pick_rating_ : float
        Rating of the items of a history without intensity (all weights 1) under explicit signals:
        the mean training rating of an interaction.
    user_factors_, user_bias_ : ndarray, shape (n_train_users, n_factors) and (n_train_users,)
        surprise's learned p_u and b_u per training row (zero for users without ratings). Kept after
        ``fit`` for inspection and tests; not saved (``encode`` recomputes any user).

    References
    ----------
    Koren, Y., Bell, R., Volinsky, C. "Matrix Factorization Techniques for Recommender Systems."
    IEEE Computer 2009. Hug, N. "Surprise: A Python library for recommender systems." JOSS 2020.
    Zhou, Y. et al. "Large-scale Parallel Collaborative Filtering for the Netflix Prize." AAIM 2008.

    Examples
    --------
    >>> from recsys.data.synthetic import generate_synthetic
    >>> ds = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    >>> model = SVDBaseline(n_factors=16).fit(ds)
    >>> model.encode(ds.interactions[:2]).shape
    (2, 16)
    """

    score_kind = "similarity"

    def __init__(
        self,
        *,
        n_factors: int = 64,
        n_epochs: int = 20,
        lr_all: float = 0.05,
        reg_all: float = 0.02,
        rating: str = "auto",
        negatives_per_positive: float = 8.0,
        fold_in_reg: float | None = 0.005,
        seed: int = 0,
    ):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.rating = rating
        self.negatives_per_positive = negatives_per_positive
        self.fold_in_reg = fold_in_reg
        self.seed = seed

    # ---- fitting ------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.rating not in RATING_SIGNALS:
            raise ValueError(f"rating must be one of {RATING_SIGNALS}, got {self.rating!r}")
        if int(self.n_factors) < 1 or int(self.n_epochs) < 1:
            raise ValueError(
                f"n_factors and n_epochs must be >= 1, got n_factors={self.n_factors}, n_epochs={self.n_epochs}"
            )
        if not self.lr_all > 0 or not self.reg_all > 0:
            raise ValueError(f"lr_all and reg_all must be > 0, got lr_all={self.lr_all}, reg_all={self.reg_all}")
        if self.fold_in_reg is not None and not self.fold_in_reg > 0:
            raise ValueError(f"fold_in_reg must be > 0 or None (use reg_all), got {self.fold_in_reg}")
        if not self.negatives_per_positive >= 0:
            raise ValueError(f"negatives_per_positive must be >= 0, got {self.negatives_per_positive}")

    def _training_ratings(self, x: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(users, items, ratings) for surprise under the resolved signal, shuffled."""
        users, items = _row_of_entries(x), x.indices.astype(np.int64)
        if self.rating_signal_ == "binary_negatives":
            ratings = np.ones(x.nnz)
        else:
            ratings = self._to_ratings(x.data.astype(np.float64))
        if self.negatives_per_positive > 0:
            neg_u, neg_i = sample_negatives(x, self.negatives_per_positive, rng)
            users, items = np.concatenate([users, neg_u]), np.concatenate([items, neg_i])
            ratings = np.concatenate([ratings, np.zeros(neg_u.size)])
        order = rng.permutation(users.size)  # surprise visits each user's ratings in this order
        return users[order], items[order], ratings[order]

    def _to_ratings(self, w: np.ndarray) -> np.ndarray:
        if self.rating_signal_ == "log_counts":
            return np.clip(1.0 + 4.0 * np.log1p(np.maximum(w, 0)) / self.count_scale_, 1.0, 5.0)
        return np.clip(w, 1.0, 5.0)

    def _fit(self, train: Dataset, validation, progress) -> None:
        self._check_params()
        from surprise import SVD, Reader
        from surprise import Dataset as SurpriseDataset

        start = time.perf_counter()
        x = sp.csr_matrix(train.interactions, dtype=np.float32)
        x.sort_indices()
        rng = np.random.default_rng(self.seed)
        self.rating_signal_ = choose_rating_signal(x.data) if self.rating == "auto" else self.rating
        if self.rating_signal_ == "binary_negatives" and not self.negatives_per_positive > 0:
            raise ValueError(
                "binary data (all weights equal) needs negatives_per_positive > 0: on positives alone "
                f"every rating is 1 and SVD learns a constant; got {self.negatives_per_positive}"
            )
        self.count_scale_ = float(np.log1p(x.data.max())) if self.rating_signal_ == "log_counts" else 1.0
        users, items, ratings = self._training_ratings(x, rng)
        self.pick_rating_ = float(np.mean(ratings[ratings > 0])) if self.rating_signal_ != "binary_negatives" else 1.0
        scale = (0.0, 1.0) if self.rating_signal_ == "binary_negatives" else (0.0, 5.0)
        frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
        trainset = SurpriseDataset.load_from_df(frame, Reader(rating_scale=scale)).build_full_trainset()
        trainset = listed_trainset(trainset)
        if progress:
            progress(0, time.perf_counter() - start, {"ratings": float(ratings.size)})
        algo = SVD(
            n_factors=int(self.n_factors),
            n_epochs=int(self.n_epochs),
            biased=True,
            lr_all=self.lr_all,
            reg_all=self.reg_all,
            random_state=int(self.seed),
        )
        sgd_start = time.perf_counter()
        algo.fit(trainset)
        sgd_seconds = time.perf_counter() - sgd_start
        self._copy_out(algo, trainset, x.shape)
        del algo, trainset  # only numpy arrays stay: the model is saved without pickle
        self._clear_cache()
        info = {"train_rmse": self._train_rmse(users, items, ratings), "sgd_seconds": sgd_seconds}
        if not np.isfinite(info["train_rmse"]):
            raise ModelFitError(f"SVD diverged (training RMSE {info['train_rmse']}); lower lr_all={self.lr_all}")
        if validation is not None:
            info["val_ndcg@100"] = self._validation_ndcg(*validation)
        seconds = time.perf_counter() - start
        self.training_log_ = [
            {"epoch": int(self.n_epochs), "train_loss": info["train_rmse"], **info, "seconds": seconds}
        ]
        logger.info("svd: %s signal, %d ratings, %s", self.rating_signal_, ratings.size, info)
        if progress:
            progress(int(self.n_epochs), seconds, info)

    def _copy_out(self, algo, trainset, shape: tuple[int, int]) -> None:
        """Map surprise's inner ids back to our rows and columns."""
        n_users, n_items = shape
        k = int(self.n_factors)
        raw_items = np.fromiter((trainset.to_raw_iid(i) for i in trainset.all_items()), dtype=np.int64)
        raw_users = np.fromiter((trainset.to_raw_uid(u) for u in trainset.all_users()), dtype=np.int64)
        q = np.zeros((n_items, k), dtype=np.float32)
        q[raw_items] = algo.qi
        b = np.full(n_items, float(np.min(algo.bi)), dtype=np.float32)  # unseen items: lowest bias
        b[raw_items] = algo.bi
        self.item_factors_, self.item_bias_ = q, b
        self.global_mean_ = float(trainset.global_mean)
        self.user_factors_ = np.zeros((n_users, k), dtype=np.float32)
        self.user_factors_[raw_users] = algo.pu
        self.user_bias_ = np.zeros(n_users, dtype=np.float32)
        self.user_bias_[raw_users] = algo.bu

    def _train_rmse(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> float:
        sq = 0.0
        for lo in range(0, users.size, 65536):
            u, i = users[lo : lo + 65536], items[lo : lo + 65536]
            pred = self.global_mean_ + self.user_bias_[u] + self.item_bias_[i]
            pred = pred + np.einsum("ij,ij->i", self.user_factors_[u], self.item_factors_[i])
            sq += float(np.sum((ratings[lo : lo + 65536] - pred) ** 2))
        return float(np.sqrt(sq / max(users.size, 1)))

    def _validation_ndcg(self, foldin: sp.csr_matrix, holdout: sp.csr_matrix) -> float:
        from ..metrics import ranking_metrics

        m = ranking_metrics(self.score(foldin), foldin, holdout, recall_ks=(), ndcg_ks=(100,))
        return float(np.mean(m["ndcg@100"])) if m["ndcg@100"].size else float("nan")

    # ---- fold-in ------------------------------------------------------------------------
    def _clear_cache(self) -> None:
        self._fixed_cache = None

    def _fixed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[q_i, 1]`` (float64), its Gram matrix, and ``sum_i (-mu - b_i) [q_i, 1]``.

        Lazy, and set in one assignment: the app shares one model between sessions' threads.
        """
        cache = getattr(self, "_fixed_cache", None)
        if cache is None:
            qt = np.hstack([self.item_factors_.astype(np.float64), np.ones((self.item_factors_.shape[0], 1))])
            cache = (qt, qt.T @ qt, qt.T @ (-self.global_mean_ - self.item_bias_.astype(np.float64)))
            self._fixed_cache = cache
        return cache

    def _history_ratings(self, x: sp.csr_matrix) -> np.ndarray:
        """Rating of every stored entry of ``x`` under the trained signal (picks: ``pick_rating_``)."""
        if self.rating_signal_ == "binary_negatives":
            return np.ones(x.nnz)
        r = self._to_ratings(x.data.astype(np.float64))
        rows = _row_of_entries(x)
        not_one = np.bincount(rows, weights=x.data != 1, minlength=x.shape[0])
        picks = (np.diff(x.indptr) > 0) & (not_one == 0)
        r[picks[rows]] = self.pick_rating_
        return r

    def fold_in(self, histories: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Exact ridge ``(p_u, b_u)`` for every row, item parameters fixed: (n, k) and (n,)."""
        self._check_fitted()
        theta = self._solve(as_csr(histories, self.n_items_))
        return theta[:, :-1], theta[:, -1]

    def _solve(self, x: sp.csr_matrix) -> np.ndarray:
        x = sp.csr_matrix(x)
        x.sum_duplicates()
        x.eliminate_zeros()
        n, n_items = x.shape
        qt, gram, neg_rhs = self._fixed()
        d = qt.shape[1]
        counts = np.diff(x.indptr).astype(np.float64)
        rows = _row_of_entries(x)
        base = self.global_mean_ + self.item_bias_[x.indices].astype(np.float64)
        resid = self._history_ratings(x) - base  # r_ui - mu - b_i
        if self.negatives_per_positive > 0:
            others = n_items - counts
            m = np.minimum(self.negatives_per_positive * counts, others)
            c = np.divide(m, others, out=np.zeros(n), where=others > 0)
            weight = counts + m
            obs_w = 1.0 - c[rows]
            resid = resid + c[rows] * base  # remove the history items from the all-items sum
        else:
            c, weight, obs_w = np.zeros(n), counts, np.ones(x.nnz)
        w_x = sp.csr_matrix((obs_w, x.indices, x.indptr), shape=x.shape)
        r_x = sp.csr_matrix((resid, x.indices, x.indptr), shape=x.shape)
        rhs = np.asarray(r_x @ qt) + c[:, None] * neg_rhs
        reg = self.reg_all if self.fold_in_reg is None else self.fold_in_reg
        with single_threaded_blas():
            a = batched_grams(w_x, qt) + c[:, None, None] * gram
            a[:, np.arange(d), np.arange(d)] += (reg * np.maximum(weight, 1.0))[:, None]
            return np.linalg.solve(a, rhs[..., None])[..., 0]

    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        return self._solve(x)[:, :-1]

    def _decode(self, z: np.ndarray) -> np.ndarray:
        if z.shape[1] != self.item_factors_.shape[1]:
            raise ValueError(f"latent points have {z.shape[1]} dimensions, the model has {self.latent_dim}")
        return self.global_mean_ + self.item_bias_ + z @ self.item_factors_.T

    @property
    def latent_dim(self) -> int:
        self._check_fitted()
        return int(self.item_factors_.shape[1])

    # ---- persistence --------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {
            "item_factors": self.item_factors_,
            "item_bias": self.item_bias_,
            "scalars": np.asarray(
                [self.global_mean_, _CODES[self.rating_signal_], self.count_scale_, self.pick_rating_],
                dtype=np.float64,
            ),
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = np.asarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias_ = np.asarray(arrays["item_bias"], dtype=np.float32)
        mu, code, scale, pick = (float(v) for v in arrays["scalars"])
        self.global_mean_, self.count_scale_, self.pick_rating_ = mu, scale, pick
        self.rating_signal_ = {v: k for k, v in _CODES.items()}[int(code)]
        self.user_factors_ = self.user_bias_ = None
        self._clear_cache()
