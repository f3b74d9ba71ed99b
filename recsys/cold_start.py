"""Profile cold start (seed 001): recommendations for a person with no history, only a profile
(MovieLens gender / age group / occupation, synthetic age group / region) or only tags.

* :func:`score_profiles` / :func:`recommend_for_profiles`: the library calls. Models that take
  metadata (DTNMR) score an empty history with the profile and tags; group popularity
  (:class:`~recsys.models.group_popularity.GroupPopularity`) uses the profile; any other model
  scores an empty history (for the latent ones, steering's tag cold start is the way to use tags).
* :func:`cold_start_split`: the strong-generalization split (BENCHMARK.md) with the test and
  validation users reduced to their profiles: every item they have is a target.
* :func:`evaluate_cold_start`: Recall@20, NDCG@10 and NDCG@100 of such users, given only their
  profile (and/or tags), ranked over the full item set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import Dataset
from .data.splits import binarize_and_filter, strong_generalization_split
from .metrics import ranking_metrics
from .models.base import Recommender, top_k
from .models.sequential import SequentialRecommender


def score_profiles(
    model: Recommender,
    profiles: pd.DataFrame | None = None,
    tags: list[list[str]] | None = None,
) -> np.ndarray:
    """Scores (n, n_items) for people with no history, given profiles (one row each) and/or tags."""
    model._check_fitted()
    if profiles is None and tags is None:
        raise ValueError("give profiles (a DataFrame of user features) and/or tags (one list per person)")
    n = len(profiles) if profiles is not None else len(tags)
    if profiles is not None and tags is not None and len(tags) != n:
        raise ValueError(f"{len(tags)} tag lists for {n} profiles")
    if isinstance(model, SequentialRecommender) and model.uses_metadata:
        return model.score_sequences([[] for _ in range(n)], profiles=profiles, tags=tags)
    if profiles is not None and hasattr(model, "score_profiles"):
        return model.score_profiles(profiles)
    return model.score(sp.csr_matrix((n, model.n_items_), dtype=np.float32))


def recommend_for_profiles(
    model: Recommender,
    profiles: pd.DataFrame | Mapping | None = None,
    tags: list[list[str]] | list[str] | None = None,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores per person; a single profile may be a dict, single tags a list.

    >>> recommend_for_profiles(model, {"gender": "female", "age_group": "25-34"}, k=10)  # doctest: +SKIP
    """
    if isinstance(profiles, Mapping):
        profiles = pd.DataFrame([dict(profiles)])
    if tags is not None and (len(tags) == 0 or isinstance(tags[0], str)):
        tags = [list(tags)]
    return top_k(score_profiles(model, profiles, tags), k)


@dataclass(frozen=True, eq=False)
class ColdStartSplit:
    """Training users (a Dataset with profiles) and held-out users known only by their profiles."""

    train: Dataset
    val_profiles: pd.DataFrame
    val_items: sp.csr_matrix  # every item of each validation user (training columns)
    test_profiles: pd.DataFrame
    test_items: sp.csr_matrix
    test_user_ids: np.ndarray


def cold_start_split(ds: Dataset, seed: int = 0, n_heldout_users: int | None = None) -> ColdStartSplit:
    """Strong-generalization split whose validation/test users keep only their profile; their whole
    (filtered) history is the target."""
    if ds.user_features is None:
        raise ValueError(f"data set {ds.name!r} has no user features: profile cold start needs them")
    filtered = binarize_and_filter(ds)
    split = strong_generalization_split(filtered, seed, n_heldout_users, filter_first=False)

    def profiles(ids: np.ndarray) -> pd.DataFrame:
        rows = [filtered.user_index[u] for u in ids]
        return filtered.user_features.iloc[rows].reset_index(drop=True)

    return ColdStartSplit(
        train=split.train,
        val_profiles=profiles(split.val_user_ids),
        val_items=sp.csr_matrix(split.val_foldin + split.val_holdout),
        test_profiles=profiles(split.test_user_ids),
        test_items=sp.csr_matrix(split.test_foldin + split.test_holdout),
        test_user_ids=split.test_user_ids,
    )


def evaluate_cold_start(
    model: Recommender,
    items: sp.csr_matrix,
    profiles: pd.DataFrame | None = None,
    tags: list[list[str]] | None = None,
) -> dict[str, float]:
    """Mean Recall@20, NDCG@10, NDCG@100 of people given only a profile and/or tags; every item of
    theirs in ``items`` is relevant."""
    scores = score_profiles(model, profiles, tags)
    empty = sp.csr_matrix(items.shape, dtype=np.float32)
    m = ranking_metrics(scores, empty, items, recall_ks=(20,), ndcg_ks=(10, 100))
    return {k: float(v.mean()) for k, v in m.items() if k != "top_coverage"} | {"n_users": len(m["recall@20"])}
