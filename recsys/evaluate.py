"""Run the accuracy protocol: fit on a split's training users, score fold-in histories, average.

``evaluate_on_users`` scores users in batches and computes every metric from one top-k per batch.
``select_on_validation`` picks hyperparameters on validation users only. ``run_protocol`` repeats
over seeds and returns a tidy table (one row per model and seed) that ``summarize`` turns into
mean +- std.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import Dataset
from .data.splits import StrongSplit, strong_generalization_split
from .metrics import ranking_metrics
from .models.base import Recommender

logger = logging.getLogger("recsys")

METRIC_COLUMNS = ("recall@20", "recall@50", "ndcg@100", "coverage@20")


def evaluate_on_users(
    model: Recommender,
    foldin: sp.csr_matrix,
    holdout: sp.csr_matrix,
    *,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Mean Recall@20/50, NDCG@100 and coverage@20 over users with held-out items.

    Also reports ``score_ms_per_user``: wall time of ``model.score`` per user.
    """
    sums: dict[str, float] = {}
    n = 0
    covered: list[np.ndarray] = []
    score_time = 0.0
    for lo in range(0, foldin.shape[0], batch_size):
        f, h = foldin[lo : lo + batch_size], holdout[lo : lo + batch_size]
        t0 = time.perf_counter()
        s = model.score(f)
        score_time += time.perf_counter() - t0
        m = ranking_metrics(s, f, h)
        covered.append(m.pop("top_coverage"))
        for k, v in m.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        n += len(next(iter(m.values())))
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out["coverage@20"] = len(np.unique(np.concatenate(covered))) / foldin.shape[1] if covered else 0.0
    out["score_ms_per_user"] = 1000 * score_time / max(1, foldin.shape[0])
    out["n_users"] = n
    return out


@dataclass
class ModelSpec:
    """A named way to build a model; ``grid`` holds hyperparameters tried on validation users."""

    name: str
    factory: Callable[..., Recommender]
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Sequence[Any]] = field(default_factory=dict)


def _grid_points(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def select_on_validation(
    spec: ModelSpec, split: StrongSplit, *, metric: str = "ndcg@100"
) -> tuple[dict[str, Any], list[dict]]:
    """Try every grid point on the validation users; return the best params and all trials."""
    points = _grid_points(spec.grid)
    if len(points) == 1:
        return {**spec.params, **points[0]}, []
    trials = []
    for p in points:
        params = {**spec.params, **p}
        model = spec.factory(**params).fit(split.train, validation=(split.val_foldin, split.val_holdout))
        res = evaluate_on_users(model, split.val_foldin, split.val_holdout)
        trials.append({**p, metric: res[metric]})
        logger.info("validation %s %s: %s=%.4f", spec.name, p, metric, res[metric])
    best = max(trials, key=lambda t: t[metric])
    return {**spec.params, **{k: best[k] for k in spec.grid}}, trials


def run_protocol(
    dataset: Dataset,
    specs: Iterable[ModelSpec],
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    *,
    n_heldout_users: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Strong-generalization protocol over seeds; one row per (model, seed).

    Hyperparameters are selected on each seed's validation users, then the model is refit with
    them on the training users and scored on the test users.
    """
    specs = list(specs)
    rows = []
    for seed in seeds:
        split = strong_generalization_split(dataset, seed, n_heldout_users)
        for spec in specs:
            if progress:
                progress(f"seed {seed}: {spec.name}")
            params, trials = select_on_validation(spec, split)
            model = spec.factory(**params)
            t0 = time.perf_counter()
            model.fit(split.train, validation=(split.val_foldin, split.val_holdout))
            fit_s = time.perf_counter() - t0
            res = evaluate_on_users(model, split.test_foldin, split.test_holdout)
            rows.append(
                {
                    "model": spec.name,
                    "seed": seed,
                    **{k: res[k] for k in METRIC_COLUMNS},
                    "fit_s": fit_s,
                    "score_ms_per_user": res["score_ms_per_user"],
                    "params": params,
                    "validation_trials": trials,
                }
            )
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std per model over seeds, keeping the models' order of appearance."""
    cols = [*METRIC_COLUMNS, "fit_s", "score_ms_per_user"]
    g = results.groupby("model", sort=False)[cols]
    mean, std = g.mean(), g.std(ddof=0).fillna(0.0)
    out = pd.DataFrame(index=mean.index)
    for c in cols:
        out[c] = mean[c]
        out[c + "_std"] = std[c]
    out["seeds"] = results.groupby("model", sort=False)["seed"].count()
    return out


def format_table(summary: pd.DataFrame) -> str:
    """Markdown table of mean +- std (metrics with 4 decimals, times with 2)."""
    head = "| model | Recall@20 | Recall@50 | NDCG@100 | coverage@20 | fit s | score ms/user | seeds |"
    lines = [head, "|" + "---|" * 8]
    for name, r in summary.iterrows():
        cells = [f"{r[c]:.4f} ± {r[c + '_std']:.4f}" for c in METRIC_COLUMNS]
        cells += [
            f"{r['fit_s']:.2f} ± {r['fit_s_std']:.2f}",
            f"{r['score_ms_per_user']:.3f}",
            str(int(r["seeds"])),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
