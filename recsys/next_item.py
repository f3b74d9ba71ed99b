"""Next-item protocol: temporal leave-last-out, HR@10 and NDCG@10 over the full item set.

Every user's latest item (by timestamp) is the test target and the one before it the validation
target (:func:`~recsys.data.splits.temporal_leave_last_out`); models train on everything earlier.
Validation scores each user's training sequence; test scores the training sequence plus the
validation item. Every item of the catalogue is ranked (no sampled negatives) and the input history
is never recommended (items repeat nowhere in these data sets, so a target is never in its history).

* :func:`evaluate_next_item` scores any model through
  :func:`~recsys.models.sequential.score_sequences` (sequential models get the order, others a 0/1
  CSR) and returns mean HR@k / NDCG@k.
* :func:`validation_pair` is what ``fit(validation=...)`` gets, so the shared training loop stops
  early on next-item quality: (histories, target) CSRs, histories in position order for sequential
  models (their ``score(csr)`` reads the order from the values) and 0/1 for the others, plus the
  users' profiles as a third element for families that use metadata (DTNMR).
* :func:`train_validate_test` is the wrapper the benchmark and ``recsys train`` use: fit with
  validation, then validation and test metrics, fit time, seconds per epoch.
* :func:`train_next_item_from_config` is ``recsys train`` for templates with ``protocol: next_item``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import Dataset
from .data.sequences import OrderedHistories
from .data.splits import TemporalSplit, temporal_leave_last_out
from .metrics import next_item_metrics
from .models.base import ProgressCallback, Recommender
from .models.sequential import SequentialRecommender, score_sequences

logger = logging.getLogger("recsys")


def targets_csr(targets: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One-hot CSR (n_users, n_items) of the targets; rows with a negative target stay empty."""
    targets = np.asarray(targets)
    rows = np.flatnonzero(targets >= 0)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, targets[rows])), shape=(len(targets), n_items))


def _profiles(split_or_ds: TemporalSplit | Dataset, rows: np.ndarray | None = None) -> pd.DataFrame | None:
    ds = split_or_ds.train if isinstance(split_or_ds, TemporalSplit) else split_or_ds
    if ds.user_features is None:
        return None
    f = ds.user_features
    return f if rows is None else f.iloc[rows].reset_index(drop=True)


def evaluate_next_item(
    model: Recommender,
    histories: OrderedHistories,
    targets: np.ndarray,
    *,
    k: int = 10,
    profiles: pd.DataFrame | None = None,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Mean HR@k and NDCG@k over users with a target (>= 0), full-catalogue ranking.

    Also returns ``n_users`` and ``score_ms_per_user`` (wall time of scoring per user).
    """
    targets = np.asarray(targets)
    rows = np.flatnonzero(targets >= 0)
    sums = {f"hr@{k}": 0.0, f"ndcg@{k}": 0.0}
    score_s = 0.0
    for lo in range(0, len(rows), batch_size):
        r = rows[lo : lo + batch_size]
        seqs = histories.rows(r)
        prof = None if profiles is None else profiles.iloc[r].reset_index(drop=True)
        t0 = time.perf_counter()
        scores = score_sequences(model, seqs, profiles=prof)
        score_s += time.perf_counter() - t0
        m = next_item_metrics(scores, targets[r], exclude=seqs.to_csr("binary"), k=k)
        for key, v in m.items():
            sums[key] += float(v.sum())
    n = max(len(rows), 1)
    return {**{key: v / n for key, v in sums.items()}, "n_users": len(rows), "score_ms_per_user": 1000 * score_s / n}


def validation_pair(
    model: Recommender,
    split: TemporalSplit,
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> tuple:
    """``fit(validation=...)`` for the next-item protocol: (histories CSR, targets CSR[, profiles]).

    ``max_users`` validates on a random subset of users (seeded) to keep each epoch cheap.
    """
    seqs, targets = split.validation_inputs()
    rows = np.flatnonzero(targets >= 0)
    if max_users is not None and len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_users, replace=False))
    seqs = seqs.rows(rows)
    sequential = isinstance(model, SequentialRecommender)
    x = seqs.to_csr("position" if sequential else "binary")
    pair: tuple = (x, targets_csr(targets[rows], seqs.n_items))
    profiles = _profiles(split, rows)
    if sequential and model.uses_metadata and profiles is not None:
        pair = (*pair, profiles)
    return pair


def _epoch_seconds(model: Recommender) -> float | None:
    log = getattr(model, "training_log_", None) or []
    secs = [r["seconds"] for r in log if r.get("seconds") is not None]
    return float(np.mean(secs)) if secs else None


def train_validate_test(
    model: Recommender,
    split: TemporalSplit,
    *,
    k: int = 10,
    max_val_users: int | None = 1000,
    progress: ProgressCallback | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on ``split.train`` (early stopping on validation users), then validation and test metrics.

    Returns ``val_hr@k``, ``val_ndcg@k``, ``hr@k``, ``ndcg@k`` (test), ``fit_s``, ``epochs``,
    ``best_epoch``, ``s_per_epoch`` (mean seconds of an epoch incl. its validation; None for
    closed-form models), ``score_ms_per_user`` and ``n_users``.
    """
    t0 = time.perf_counter()
    model.fit(
        split.train, validation=validation_pair(model, split, max_users=max_val_users, seed=seed), progress=progress
    )
    fit_s = time.perf_counter() - t0
    profiles = _profiles(split)
    val = evaluate_next_item(model, *split.validation_inputs(), k=k, profiles=profiles)
    test = evaluate_next_item(model, *split.test_inputs(), k=k, profiles=profiles)
    log = getattr(model, "training_log_", None) or []
    return {
        f"val_hr@{k}": val[f"hr@{k}"],
        f"val_ndcg@{k}": val[f"ndcg@{k}"],
        f"hr@{k}": test[f"hr@{k}"],
        f"ndcg@{k}": test[f"ndcg@{k}"],
        "fit_s": fit_s,
        "epochs": len(log) or None,
        "best_epoch": getattr(model, "best_epoch_", None),
        "s_per_epoch": _epoch_seconds(model),
        "score_ms_per_user": test["score_ms_per_user"],
        "n_users": test["n_users"],
    }


def train_next_item_from_config(
    cfg: dict[str, Any],
    model: Recommender,
    dataset: Dataset,
    *,
    registry: Any,
    progress: ProgressCallback | None = None,
    overwrite: bool = True,
) -> tuple[str, dict[str, float]]:
    """``recsys train`` with ``protocol: next_item``: temporal split, fit, HR/NDCG@10, register.

    The model is stored with steering data computed on its training histories and up to 100 test
    users (their ordered training history as fold-in, the test target as held-out item).
    """
    from .model_extras import compute_extras
    from .training import source_dataset_info

    if dataset.timestamps is None and dataset.name == "ml-1m":
        # the partial MovieLens 1M copy loads without timestamps by default; its timestamped part
        # (users 1-2999, every user with the official ratings.dat) is what this protocol needs
        from .data import load_dataset

        logger.info("ml-1m has no timestamps as loaded: using its timestamped users instead")
        dataset = load_dataset("ml-1m", timestamped_only=True)
    if dataset.timestamps is None:
        raise ValueError(
            f"the next-item protocol needs timestamps and {dataset.name!r} has none "
            "(for the partial MovieLens 1M copy, use load_dataset('ml-1m', timestamped_only=True))"
        )
    split = temporal_leave_last_out(dataset)
    metrics = train_validate_test(model, split, seed=int(cfg.get("seed", 0)))
    seqs, targets = split.test_inputs()
    rows = np.flatnonzero(targets >= 0)[:100]
    listeners = seqs.rows(rows).to_csr("position")
    extras, extra_info = compute_extras(model, split.train, listeners, targets_csr(targets[rows], dataset.n_items))
    model_id = registry.save(
        model,
        dataset=split.train,
        model_id=cfg.get("model_id") or f"{model.family}-{dataset.name}",
        metrics=metrics,
        extras=extras,
        info={
            **extra_info,
            "protocol": "next_item",
            "split": {"kind": "temporal leave-last-out", "users": dataset.n_users, "items": dataset.n_items},
            "config": cfg,
            "source_dataset": source_dataset_info(dataset),
        },
        overwrite=overwrite,
    )
    logger.info("registered %s: hr@10=%.4f ndcg@10=%.4f", model_id, metrics["hr@10"], metrics["ndcg@10"])
    return model_id, metrics
