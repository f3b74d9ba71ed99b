"""Ranking metrics, vectorised over users (one top-k per batch, every metric from it).

Definitions (BENCHMARK.md step 5):

* Recall@K = hits in top K / min(K, |held-out|)
* NDCG@K   = DCG / IDCG, binary relevance, discount 1 / log2(rank + 1) with rank from 1, IDCG over
  min(K, |held-out|) hits
* coverage@K = share of catalogue items that appear in some user's top K
* HR@K (next item) = 1 if the single target is in the top K; NDCG@K likewise with one relevant item
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .models.base import top_k


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def hits_matrix(top: np.ndarray, holdout: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, k): whether the item at each rank is held out for that user."""
    h = sp.csr_matrix(holdout)
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    return np.asarray(h[rows, top.ravel()]).reshape(top.shape) > 0


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k from a hits matrix (ranks beyond k are ignored)."""
    return hits[:, :k].sum(axis=1) / np.minimum(k, n_relevant)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k (binary relevance) from a hits matrix."""
    disc = _discounts(k)
    dcg = (hits[:, :k] * disc[: hits[:, :k].shape[1]]).sum(axis=1)
    idcg_table = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = idcg_table[np.minimum(k, n_relevant)]
    return dcg / idcg


def ranking_metrics(
    scores: np.ndarray,
    foldin: sp.csr_matrix,
    holdout: sp.csr_matrix,
    *,
    recall_ks: tuple[int, ...] = (20, 50),
    ndcg_ks: tuple[int, ...] = (100,),
    coverage_k: int = 20,
) -> dict[str, np.ndarray]:
    """Per-user metrics for one batch; fold-in items are never ranked.

    Users without held-out items are dropped (their metrics are undefined). Returns arrays keyed
    ``recall@20``, ``ndcg@100``, ..., plus ``top_coverage`` (the item indices in the top
    ``coverage_k``, for coverage over several batches).
    """
    holdout = sp.csr_matrix(holdout)
    n_rel = np.diff(holdout.indptr)
    keep = n_rel > 0
    kmax = max((*recall_ks, *ndcg_ks, coverage_k))
    top, _ = top_k(scores[keep], kmax, exclude=sp.csr_matrix(foldin)[keep])
    hits = hits_matrix(top, holdout[keep])
    out: dict[str, np.ndarray] = {}
    for k in recall_ks:
        out[f"recall@{k}"] = recall_at_k(hits, n_rel[keep], k)
    for k in ndcg_ks:
        out[f"ndcg@{k}"] = ndcg_at_k(hits, n_rel[keep], k)
    out["top_coverage"] = np.unique(top[:, :coverage_k])
    return out


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the catalogue appearing in some user's top list."""
    return len(np.unique(top_items)) / n_items


def next_item_metrics(
    scores: np.ndarray, targets: np.ndarray, exclude: sp.csr_matrix | None, k: int = 10
) -> dict[str, np.ndarray]:
    """HR@k and NDCG@k for one target item per user, ranked over the full item set (no sampling).

    Rows whose target is negative (users without a target, as in
    :class:`~recsys.data.splits.TemporalSplit`) are dropped, so the means are over real targets.
    ``exclude`` (the users' histories) is never ranked; a target inside it counts as a miss.
    """
    targets = np.asarray(targets)
    keep = targets >= 0
    if not keep.all():
        scores, targets = np.asarray(scores)[keep], targets[keep]
        exclude = None if exclude is None else sp.csr_matrix(exclude)[keep]
    top, _ = top_k(scores, k, exclude=exclude)
    hit_rank = top == targets[:, None]
    hr = hit_rank.any(axis=1).astype(np.float64)
    ndcg = (hit_rank * _discounts(top.shape[1])).sum(axis=1)  # k may exceed the catalogue
    return {f"hr@{k}": hr, f"ndcg@{k}": ndcg}
