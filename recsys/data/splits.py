"""Evaluation splits.

``strong_generalization_split`` is the accuracy protocol of BENCHMARK.md (Liang et al. 2018): test
users are never seen in training; each gets 80 % of their items as fold-in and is scored on the
rest. ``temporal_leave_last_out`` is the next-item protocol for sequential models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .dataset import Dataset
from .sequences import OrderedHistories

#: Held-out users per group (validation and test) for the real data sets (BENCHMARK.md step 3).
HELDOUT_USERS = {"lastfm-2k": 300, "ml-1m": 600}


def binarize_and_filter(ds: Dataset, min_item_users: int = 5, min_user_items: int = 5) -> Dataset:
    """BENCHMARK.md steps 1-2: every pair present is 1; keep items with >= 5 users, then users
    with >= 5 items (once, in that order)."""
    x = ds.binary()
    keep_items = np.flatnonzero(np.diff(x.tocsc().indptr) >= min_item_users)
    ds = ds.subset(items=keep_items)
    x = ds.interactions
    keep_users = np.flatnonzero(np.diff(x.indptr) >= min_user_items)
    ds = ds.subset(users=keep_users)
    return Dataset(
        name=ds.name,
        interactions=_ones(ds.interactions),
        items=ds.items,
        user_ids=ds.user_ids,
        timestamps=ds.timestamps,
        user_features=ds.user_features,
        item_noun=ds.item_noun,
        description=ds.description,
    )


def _ones(x: sp.csr_matrix) -> sp.csr_matrix:
    x = x.copy().astype(np.float32)
    x.data[:] = 1.0
    return x


@dataclass(frozen=True, eq=False)
class StrongSplit:
    """Train users, and validation/test users with fold-in and held-out parts.

    All matrices share the item columns of ``train`` (items that occur among training users).
    """

    seed: int
    train: Dataset
    val_foldin: sp.csr_matrix
    val_holdout: sp.csr_matrix
    test_foldin: sp.csr_matrix
    test_holdout: sp.csr_matrix
    val_user_ids: np.ndarray
    test_user_ids: np.ndarray

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def describe(self) -> dict:
        return {
            "seed": self.seed,
            "train_users": self.train.n_users,
            "val_users": self.val_foldin.shape[0],
            "test_users": self.test_foldin.shape[0],
            "items": self.n_items,
            "train_interactions": self.train.interactions.nnz,
        }


def _holdout(x: sp.csr_matrix, rng: np.random.Generator, fraction: float) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each row: ``max(1, round(fraction * n))`` entries held out uniformly at random.

    Rows are processed in order; each draws ``rng.choice(n, k, replace=False)`` over the row's items
    in ascending item-index order. Python's ``round`` (half to even) decides k.
    """
    fold_mask = np.ones(x.nnz, dtype=bool)
    for r in range(x.shape[0]):
        lo, hi = x.indptr[r], x.indptr[r + 1]
        n = hi - lo
        k = max(1, int(round(fraction * n)))
        chosen = rng.choice(n, size=k, replace=False)
        fold_mask[lo + chosen] = False
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    fold = sp.csr_matrix((x.data[fold_mask], (rows[fold_mask], x.indices[fold_mask])), shape=x.shape)
    hold = sp.csr_matrix((x.data[~fold_mask], (rows[~fold_mask], x.indices[~fold_mask])), shape=x.shape)
    return fold, hold


def strong_generalization_split(
    ds: Dataset,
    seed: int,
    n_heldout_users: int | None = None,
    *,
    holdout_fraction: float = 0.2,
    filter_first: bool = True,
) -> StrongSplit:
    """The accuracy protocol of BENCHMARK.md, step by step.

    Parameters
    ----------
    ds : Dataset
        Raw data; binarised and filtered here unless ``filter_first=False``.
    seed : int
        ``numpy.random.default_rng(seed)`` drives the user permutation and then the hold-out.
    n_heldout_users : int, optional
        H, users per validation and test group. Defaults to 300 (Last.fm 2K), 600 (MovieLens 1M),
        else 10 % of users.
    """
    if filter_first:
        ds = binarize_and_filter(ds)
    n_users = ds.n_users
    h = n_heldout_users or HELDOUT_USERS.get(ds.name) or max(1, n_users // 10)
    if 2 * h >= n_users:
        raise ValueError(f"{2 * h} held-out users leave no training users among {n_users}")
    rng = np.random.default_rng(seed)
    # user_ids of a Dataset are sorted unique ids, so row order is ascending id order
    perm = rng.permutation(ds.user_ids)
    val_ids, test_ids = np.sort(perm[:h]), np.sort(perm[h : 2 * h])
    train_ids = np.sort(perm[2 * h :])
    rows = {uid: u for u, uid in enumerate(ds.user_ids)}
    to_rows = lambda ids: np.asarray([rows[u] for u in ids], dtype=np.int64)
    train_rows, val_rows, test_rows = (
        to_rows(train_ids),
        to_rows(val_ids),
        to_rows(test_ids),
    )
    x = ds.interactions
    items = np.flatnonzero(np.diff(x[train_rows].tocsc().indptr) > 0)
    train = ds.subset(users=train_rows, items=items)
    x_items = sp.csr_matrix(x[:, items])
    val_fold, val_hold = _holdout(x_items[val_rows], rng, holdout_fraction)
    test_fold, test_hold = _holdout(x_items[test_rows], rng, holdout_fraction)
    return StrongSplit(
        seed=seed,
        train=train,
        val_foldin=val_fold,
        val_holdout=val_hold,
        test_foldin=test_fold,
        test_holdout=test_hold,
        val_user_ids=val_ids,
        test_user_ids=test_ids,
    )


@dataclass(frozen=True, eq=False)
class TemporalSplit:
    """Leave-last-out by time: each user's latest item is the test target, the one before it the
    validation target; ``train`` holds everything earlier (no future item leaks into it)."""

    train: Dataset
    val_targets: np.ndarray  # (n_users,) item index, -1 where the user has too few items
    test_targets: np.ndarray

    def sequences(self) -> OrderedHistories:
        """Every user's training items, oldest first (by timestamp; ties by item index)."""
        return OrderedHistories.from_dataset(self.train)

    def validation_inputs(self) -> tuple[OrderedHistories, np.ndarray]:
        """(histories, targets) for validation: the training sequence predicts ``val_targets``."""
        return self.sequences(), self.val_targets

    def test_inputs(self) -> tuple[OrderedHistories, np.ndarray]:
        """(histories, targets) for test: training sequence + validation item predicts ``test_targets``."""
        return self.sequences().append(self.val_targets), self.test_targets


def temporal_leave_last_out(ds: Dataset, min_items: int = 3) -> TemporalSplit:
    """Hold out every user's last (test) and second-to-last (validation) interaction by timestamp."""
    if ds.timestamps is None:
        raise ValueError(f"data set {ds.name!r} has no timestamps; a temporal split needs them")
    x = ds.interactions
    keep = np.ones(x.nnz, dtype=bool)
    val_t = np.full(ds.n_users, -1, dtype=np.int64)
    test_t = np.full(ds.n_users, -1, dtype=np.int64)
    for u in range(ds.n_users):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        if hi - lo < min_items:
            continue
        order = lo + np.lexsort((x.indices[lo:hi], ds.timestamps[lo:hi]))
        test_t[u], val_t[u] = x.indices[order[-1]], x.indices[order[-2]]
        keep[order[-2:]] = False
    rows = np.repeat(np.arange(ds.n_users), np.diff(x.indptr))
    train_x = sp.csr_matrix((x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape)
    train_x.sort_indices()
    # CSR built from row-major sorted (row, col) pairs keeps the original order of the survivors
    train = Dataset(
        name=ds.name,
        interactions=train_x,
        items=ds.items,
        user_ids=ds.user_ids,
        timestamps=ds.timestamps[keep],
        user_features=ds.user_features,
        item_noun=ds.item_noun,
        description=ds.description,
    )
    return TemporalSplit(train=train, val_targets=val_t, test_targets=test_t)
