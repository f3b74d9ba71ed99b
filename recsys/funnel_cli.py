"""``python -m recsys funnel train|recommend``: the seed-002 workflow around :mod:`recsys.models.funnel`.

* ``funnel train`` fits the funnel from a template (``configs/funnel.yaml``) on a strong-generalization
  split, reusing the stages cached in ``--cache-dir`` (default ``$RECSYS_CACHE_DIR/funnel`` or
  ``~/.cache/recsys/funnel``) unless asked to refit them: ``--runsvd`` (the biased SVD, the seed's
  flag), ``--judge`` (the logistic-regression ranker, the seed's flag), ``--refit STAGE``. It evaluates
  the test users (Recall@20/50, NDCG@100, coverage@20 and the candidate stage's recall@100/200/500)
  and registers the model with its steering data, as ``train`` does.
* ``funnel recommend`` rebuilds the registered model's split and writes a CSV with the top 20 artists
  (item) of every test user with their scores, best first.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import Dataset
from .models.base import ProgressCallback
from .registry import LoadedModel, Registry

logger = logging.getLogger("recsys")

#: K of the candidate stage's recall reported by ``funnel train`` and the benchmark.
CANDIDATE_KS = (100, 200, 500)


def default_cache_dir() -> Path:
    """``$RECSYS_CACHE_DIR/funnel`` or ``~/.cache/recsys/funnel``."""
    root = os.environ.get("RECSYS_CACHE_DIR", "").strip()
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "recsys") / "funnel"


def train_funnel(
    cfg: dict[str, Any],
    dataset: Dataset,
    registry: Registry,
    *,
    refit: Collection[str] = (),
    progress: ProgressCallback | None = None,
) -> tuple[str, dict[str, float], Any]:
    """Fit (stages from the cache where allowed), evaluate the test users, register. Returns (id, metrics, model)."""
    from .data.splits import strong_generalization_split
    from .evaluate import evaluate_on_users
    from .model_extras import compute_extras
    from .models import get_model_class

    params = dict(cfg.get("params") or {})
    params.setdefault("seed", int(cfg.get("seed", 0)))
    split = strong_generalization_split(dataset, int(cfg.get("seed", 0)), cfg.get("n_heldout_users"))
    model = get_model_class("funnel")(**params)
    t0 = time.perf_counter()
    model.fit(split.train, validation=(split.val_foldin, split.val_holdout), progress=progress, refit=refit)
    fit_s = time.perf_counter() - t0
    metrics = evaluate_on_users(model, split.test_foldin, split.test_holdout)
    metrics["fit_s"] = fit_s
    metrics.update(model.candidate_recall(split.test_foldin, split.test_holdout, ks=CANDIDATE_KS))
    extras, extra_info = compute_extras(model, split.train, split.test_foldin, split.test_holdout)
    model_id = registry.save(
        model,
        dataset=split.train,
        model_id=cfg.get("model_id") or f"funnel-{dataset.name}",
        metrics=metrics,
        extras=extras,
        info={
            **extra_info,
            "split": split.describe(),
            "config": cfg,
            "source_dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint},
            "stages": dict(model.stage_sources_),
            "freshness": bool(model.has_freshness_),
        },
        overwrite=True,
    )
    return model_id, metrics, model


def split_test_users(loaded: LoadedModel, load: Callable[[str], Dataset]) -> tuple[sp.csr_matrix, np.ndarray]:
    """(fold-in histories, user ids) of the test users of the split a registered model was trained on."""
    from .data.splits import strong_generalization_split

    info = loaded.manifest.get("info") or {}
    cfg = info.get("config") or {}
    name = cfg.get("dataset") or (info.get("source_dataset") or {}).get("name") or loaded.manifest["dataset"]["name"]
    seed = int((info.get("split") or {}).get("seed", cfg.get("seed", 0)))
    split = strong_generalization_split(load(name), seed, cfg.get("n_heldout_users"))
    if split.train.fingerprint != loaded.manifest["dataset"]["fingerprint"]:
        raise ValueError(
            f"data set {name!r} (split seed {seed}) is not the one model {loaded.model_id!r} was trained on "
            "(its fingerprint differs); retrain the model with `python -m recsys funnel train`"
        )
    return split.test_foldin, split.test_user_ids


def recommendations_frame(
    loaded: LoadedModel, histories: sp.csr_matrix, user_ids: np.ndarray, k: int = 20
) -> pd.DataFrame:
    """One row per (user, rank): user, rank, item_id, title, artist, score; scores descending per user."""
    idx, scores = loaded.model.recommend(histories, k=k)
    items = loaded.items
    n, kk = idx.shape
    flat = idx.ravel()
    return pd.DataFrame(
        {
            "user": np.repeat(np.asarray(user_ids), kk),
            "rank": np.tile(np.arange(1, kk + 1), n),
            "item_id": items["item_id"].to_numpy()[flat],
            "title": items["title"].to_numpy()[flat],
            "artist": items["artist"].to_numpy()[flat],
            "score": scores.ravel().astype(np.float64),
        }
    )


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
def cmd_funnel_train(args: argparse.Namespace) -> None:
    from . import cli
    from .models.funnel import STAGES
    from .training import apply_overrides, load_template

    cfg = load_template(args.template)
    if cfg["family"] != "funnel":
        raise cli.CliError(f"template {args.template!r} is for family {cfg['family']!r}, not funnel")
    if args.dataset:
        cfg["dataset"] = args.dataset
        if not args.model_id and cfg.get("model_id") == "funnel-synthetic":
            cfg["model_id"] = None  # -> funnel-<data set>
    if args.model_id:
        cfg["model_id"] = args.model_id
    cfg = apply_overrides(cfg, list(args.set or []))
    if args.cache_dir or not cfg["params"].get("cache_dir"):
        cfg["params"]["cache_dir"] = str(args.cache_dir or default_cache_dir())
    refit = set(args.refit or [])
    refit |= {"svd"} if args.runsvd else set()
    refit |= {"ranker"} if args.judge else set()
    ds = cli._load_dataset(cfg["dataset"], args.data_dir)
    print(
        f"training funnel on {ds.name} ({ds.n_users} users, {ds.n_items} {ds.item_noun}s); "
        f"stage cache {cfg['params']['cache_dir']}" + (f", refitting {sorted(refit)}" if refit else ""),
        file=sys.stderr,
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=len(STAGES), desc="funnel", unit="stage", file=sys.stderr)

    def progress(step: int, elapsed: float, info: dict) -> None:
        bar.update(step - bar.n)

    try:
        model_id, metrics, model = train_funnel(cfg, ds, cli._registry(args), refit=refit, progress=progress)
    finally:
        bar.close()
    print(f"registered {model_id}")
    print("stages: " + ", ".join(f"{s} {model.stage_sources_[s]}" for s in STAGES))
    if not model.has_freshness_:
        print(f"no dated items in {ds.name}: candidates from tags and popularity only (no freshness)")
    names = ["recall@20", "recall@50", "ndcg@100", "coverage@20", "fit_s"]
    names += [f"candidate_recall@{k}" for k in CANDIDATE_KS]
    for k in names:
        print(f"{k:>20}: {metrics[k]:.4f}")


def cmd_funnel_recommend(args: argparse.Namespace) -> None:
    from . import cli
    from .io import atomic_write_text

    registry = cli._registry(args)
    model_id = args.model or _latest_funnel(registry)
    loaded = registry.load(model_id)
    if loaded.manifest["family"] != "funnel":
        raise cli.CliError(f"model {model_id!r} is a {loaded.manifest['family']} model, not a funnel")
    if args.top < 1:
        raise cli.CliError(f"--top must be >= 1, got {args.top}")
    histories, users = split_test_users(loaded, lambda name: cli._load_dataset(args.dataset or name, args.data_dir))
    df = recommendations_frame(loaded, histories, users, k=args.top)
    atomic_write_text(args.out, df.to_csv(index=False))
    print(f"{len(df)} rows ({args.top} per test user, {len(users)} users) written to {args.out}")


def _latest_funnel(registry: Registry) -> str:
    from . import cli

    entries = [e for e in registry.list() if e.ok and e.manifest and e.manifest.get("family") == "funnel"]
    if not entries:
        raise cli.CliError(f"no funnel model in {registry.root}: train one with `python -m recsys funnel train`")
    latest = max(entries, key=lambda e: e.manifest.get("created", ""))
    print(f"using model {latest.model_id} (the most recent funnel; --model ID picks another)", file=sys.stderr)
    return latest.model_id


def add_parser(sub: Any, add_common: Callable[..., None]) -> None:
    """The ``funnel`` command with its ``train`` and ``recommend`` actions."""
    from .models.funnel import STAGES

    f = sub.add_parser("funnel", help="two-stage funnel (seed 002): train with cached stages, top-20 CSV")
    fsub = f.add_subparsers(dest="funnel_command", required=True, metavar="ACTION")
    t = fsub.add_parser("train", help="fit (cached stages reused), evaluate test users, register")
    t.add_argument("--template", default="funnel", help="YAML template name in configs/ or a path (default funnel)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a template value (repeatable)")
    t.add_argument("--dataset", help="data set to train on (overrides the template)")
    t.add_argument("--model-id", help="registry id (default: funnel-DATASET)")
    t.add_argument("--cache-dir", help="stage cache (default $RECSYS_CACHE_DIR/funnel or ~/.cache/recsys/funnel)")
    t.add_argument("--runsvd", action="store_true", help="refit the biased SVD even if cached (seed's --runsvd)")
    t.add_argument("--judge", action="store_true", help="refit the logistic-regression ranker even if cached")
    t.add_argument("--refit", action="append", choices=[*STAGES, "all"], help="refit this stage (repeatable)")
    add_common(t, registry=True)
    t.set_defaults(func=cmd_funnel_train)
    r = fsub.add_parser("recommend", help="CSV of the top artists and scores of every test user")
    r.add_argument("--model", help="registry id of a funnel model (default: the most recent one)")
    r.add_argument("--out", default="funnel_recommendations.csv", help="CSV to write (default %(default)s)")
    r.add_argument("--top", type=int, default=20, help="items per user (default 20)")
    r.add_argument("--dataset", help="data set to rebuild the test users from (default: the model's)")
    add_common(r, registry=True)
    r.set_defaults(func=cmd_funnel_recommend)
