"""Run the accuracy protocol: fit on a split's training users, score fold-in histories, average.

``evaluate_on_users`` scores users in batches and computes every metric from one top-k per batch.
``select_on_validation`` picks hyperparameters on validation users only. ``run_protocol`` chooses
them once, on the first seed's validation users, repeats over seeds with that choice and returns a
tidy table (one row per model and seed) that ``summarize`` turns into mean +- std and
``format_tuning`` into a note of what was tried and chosen.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import Dataset
from .data.splits import StrongSplit, strong_generalization_split
from .metrics import ranking_metrics
from .models.base import ProgressCallback, Recommender
from .threads import training_torch_threads

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

    Also reports ``score_ms_per_user``: wall time of ``model.score`` per user. Users are scored
    ``batch_size`` at a time, fewer for wide catalogues (about 16M scores per batch: 40 users at
    400k items), so no users x items matrix is ever held.
    """
    batch_size = int(max(8, min(batch_size, (1 << 24) // max(foldin.shape[1], 1))))
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
    """A named way to build a model.

    ``params`` are fixed for every fit. ``grid`` holds what is tried on validation users: either a
    mapping name -> values (every combination) or a sequence of points (dicts, tried as given).
    """

    name: str
    factory: Callable[..., Recommender]
    params: dict[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] | Sequence[dict[str, Any]] = field(default_factory=dict)


#: ``fit_context(stage, spec, seed, params)`` wraps every fit and its scoring ("validation": a grid
#: point on the tuning split's validation users; "test": a seed's test run) and yields that fit's
#: per-epoch progress callback or None (the CLI draws its progress bars with it).
FitContext = Callable[[str, ModelSpec, int | None, dict[str, Any]], AbstractContextManager[ProgressCallback | None]]


def _grid_points(grid: Mapping[str, Sequence[Any]] | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping):
        return [dict(p) for p in grid] or [{}]
    points: list[dict[str, Any]] = [{}]
    for key, values in grid.items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def _seeded(spec: ModelSpec, params: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """``params`` plus ``seed`` when the factory takes one and neither the spec nor the point fixes it."""
    if seed is None or "seed" in params:
        return params
    try:
        accepted = inspect.signature(spec.factory).parameters
    except (TypeError, ValueError):  # a builtin or other callable without a signature
        return params
    return {**params, "seed": int(seed)} if "seed" in accepted else params


def _fit_and_score(
    spec: ModelSpec,
    params: dict[str, Any],
    split: StrongSplit,
    users: tuple[sp.csr_matrix, sp.csr_matrix],
    progress: ProgressCallback | None,
) -> tuple[Recommender, float, dict[str, float]]:
    model = spec.factory(**params)
    t0 = time.perf_counter()
    model.fit(split.train, validation=(split.val_foldin, split.val_holdout), progress=progress)
    fit_s = time.perf_counter() - t0
    return model, fit_s, evaluate_on_users(model, *users)


def _stopping(model: Recommender) -> dict[str, int]:
    """Best epoch and epochs run of a family that trains in epochs (empty for the others)."""
    out = {}
    if getattr(model, "best_epoch_", None) is not None:
        out["best_epoch"] = int(model.best_epoch_)
    log = getattr(model, "training_log_", None)
    if log:
        out["epochs_run"] = len(log)
    return out


def select_on_validation(
    spec: ModelSpec,
    split: StrongSplit,
    *,
    metric: str = "ndcg@100",
    seed: int | None = None,
    fit_context: FitContext | None = None,
) -> tuple[dict[str, Any], list[dict]]:
    """Try every grid point on the validation users; return the best params and all trials.

    A trial is ``{"point": ..., metric: ..., "fit_s": ...}`` plus ``best_epoch``/``epochs_run`` for
    families that train in epochs. With one point nothing is fitted and the trials are empty.
    ``seed`` seeds each model (when its factory takes ``seed``); it is not part of the returned params.
    """
    points = _grid_points(spec.grid)
    if len(points) == 1:
        return {**spec.params, **points[0]}, []
    trials = []
    for p in points:
        params = {**spec.params, **p}
        with fit_context("validation", spec, seed, params) if fit_context else nullcontext() as progress:
            model, fit_s, res = _fit_and_score(
                spec, _seeded(spec, params, seed), split, (split.val_foldin, split.val_holdout), progress
            )
        trials.append({"point": p, metric: res[metric], "fit_s": fit_s, **_stopping(model)})
        logger.info("validation %s %s: %s=%.4f", spec.name, p, metric, res[metric])
    best = max(trials, key=lambda t: t[metric])
    return {**spec.params, **best["point"]}, trials


@dataclass(frozen=True)
class _FitTask:
    """One fit and its scoring: a grid point on the first seed's validation users, or a seed's test run."""

    stage: str  # "validation" or "test"
    spec_index: int
    seed: int
    params: dict[str, Any]  # fixed parameters + the point (before seeding)
    point: dict[str, Any] = field(default_factory=dict)  # the grid point (validation)
    point_index: int = 0


class _FitRunner:
    """Runs :class:`_FitTask` s on one data set; each seed's split is drawn once."""

    def __init__(self, dataset: Dataset, specs: list[ModelSpec], n_heldout_users: int | None):
        self.dataset, self.specs, self.n_heldout_users = dataset, specs, n_heldout_users
        self._splits: dict[int, StrongSplit] = {}

    def split(self, seed: int) -> StrongSplit:
        if seed not in self._splits:
            self._splits[seed] = strong_generalization_split(self.dataset, seed, self.n_heldout_users)
        return self._splits[seed]

    def run(self, task: _FitTask, progress: ProgressCallback | None) -> dict[str, Any]:
        split, spec = self.split(task.seed), self.specs[task.spec_index]
        if task.stage == "validation":
            users = (split.val_foldin, split.val_holdout)
        else:
            users = (split.test_foldin, split.test_holdout)
        model, fit_s, res = _fit_and_score(spec, _seeded(spec, task.params, task.seed), split, users, progress)
        return {"metrics": res, "fit_s": fit_s, "stops": _stopping(model)}


def run_protocol(
    dataset: Dataset,
    specs: Iterable[ModelSpec],
    seeds: Iterable[int] = (0, 1, 2, 3, 4),
    *,
    n_heldout_users: int | None = None,
    metric: str = "ndcg@100",
    fit_context: FitContext | None = None,
    threads: int | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """Strong-generalization protocol over seeds; one row per (model, seed).

    Hyperparameters are chosen once, on the validation users of the first seed's split, and that
    point is used for every seed: each seed refits it on its training users (torch families stop
    early on that split's validation users) and scores its test users. Models that take a ``seed``
    are seeded with the split's seed. Every fit runs under
    :func:`recsys.threads.training_torch_threads` (``threads``: its thread count; default one
    thread on machines with at most 2 cores).

    ``jobs > 1`` runs the fits in that many spawned worker processes (each fit is seeded and
    single-threaded, so the rows are the same as with ``jobs=1``); a family's test runs start as
    soon as its own grid is done. Specs that cannot be sent to a process (a lambda factory) run here.

    Rows hold the metrics, ``fit_s``, ``score_ms_per_user``, the chosen ``params`` (the same in
    every row of a model), ``validation_trials`` and ``tuned_on_seed``, plus ``best_epoch`` and
    ``epochs_run`` for families that train in epochs.
    """
    specs, seeds = list(specs), [int(s) for s in seeds]
    specs = _without_oversized_ease(specs, dataset.n_items)
    if not seeds:
        raise ValueError("run_protocol needs at least one seed")
    points = [_grid_points(spec.grid) for spec in specs]
    trials: list[list[dict | None]] = [[None] * len(p) if len(p) > 1 else [] for p in points]
    chosen: list[dict[str, Any] | None] = [None] * len(specs)
    results: list[tuple[_FitTask, dict[str, Any]]] = []

    def ready_after_grid(i: int) -> list[_FitTask]:
        """Spec ``i``'s test tasks once its grid is done (recording the choice)."""
        if trials[i]:
            best = max(range(len(trials[i])), key=lambda j: trials[i][j][metric])
            chosen[i] = {**specs[i].params, **points[i][best]}
        else:
            chosen[i] = {**specs[i].params, **points[i][0]}
        return [_FitTask("test", i, seed, chosen[i]) for seed in seeds]

    tasks = [
        _FitTask("validation", i, seeds[0], {**spec.params, **p}, p, j)
        for i, spec in enumerate(specs)
        if len(points[i]) > 1
        for j, p in enumerate(points[i])
    ]
    for i in range(len(specs)):
        if not trials[i]:
            tasks += ready_after_grid(i)

    def finished(task: _FitTask, out: dict[str, Any]) -> list[_FitTask]:
        if task.stage == "test":
            results.append((task, out))
            return []
        i = task.spec_index
        score = out["metrics"][metric]
        trials[i][task.point_index] = {"point": task.point, metric: score, "fit_s": out["fit_s"], **out["stops"]}
        logger.info("validation %s %s: %s=%.4f", specs[i].name, task.point, metric, score)
        return ready_after_grid(i) if all(t is not None for t in trials[i]) else []

    with training_torch_threads(threads) as n_threads:
        runner = _FitRunner(dataset, specs, n_heldout_users)
        parallel = jobs > 1 and len(tasks) > 1
        if parallel and not _sendable(specs):
            logger.warning("these model specs cannot be sent to worker processes; fitting them one by one")
            parallel = False
        if parallel:
            _run_in_processes(runner, tasks, finished, fit_context, n_threads, jobs)
        else:
            _run_here(runner, tasks, finished, fit_context)
    order = {(seed, i): n for n, (seed, i) in enumerate((s, i) for s in seeds for i in range(len(specs)))}
    results.sort(key=lambda r: order[(r[0].seed, r[0].spec_index)])
    rows = []
    for task, out in results:
        i = task.spec_index
        rows.append(
            {
                "model": specs[i].name,
                "seed": task.seed,
                **{k: out["metrics"][k] for k in METRIC_COLUMNS},
                "fit_s": out["fit_s"],
                "score_ms_per_user": out["metrics"]["score_ms_per_user"],
                "params": chosen[i],
                "validation_trials": trials[i],
                "tuned_on_seed": seeds[0],
                "threads": n_threads,
                **out["stops"],
            }
        )
    return pd.DataFrame(rows)


def _context(fit_context: FitContext | None, runner: _FitRunner, task: _FitTask) -> AbstractContextManager:
    if fit_context is None:
        return nullcontext()
    return fit_context(task.stage, runner.specs[task.spec_index], task.seed, task.params)


def _run_here(
    runner: _FitRunner,
    tasks: list[_FitTask],
    finished: Callable[[_FitTask, dict[str, Any]], list[_FitTask]],
    fit_context: FitContext | None,
) -> None:
    """Every task in this process, in order (tasks a finished one makes ready go to the end)."""
    queue = deque(tasks)
    while queue:
        task = queue.popleft()
        with _context(fit_context, runner, task) as progress:
            out = runner.run(task, progress)
        queue.extend(finished(task, out))


def _sendable(specs: list[ModelSpec]) -> bool:
    import pickle

    try:
        pickle.dumps(specs)
    except Exception:  # a local class or lambda factory: this process only
        return False
    return True


_worker_runner: _FitRunner | None = None
_worker_events: Any = None
_worker_threads = ExitStack()


def _init_fit_worker(runner: _FitRunner, events: Any, threads: int) -> None:
    """A worker holds the data set and its splits for every task, and keeps the parent's thread limit."""
    global _worker_runner, _worker_events
    _worker_runner, _worker_events = runner, events
    _worker_threads.enter_context(training_torch_threads(threads))


def _fit_in_worker(task_id: int, task: _FitTask, report: bool) -> dict[str, Any]:
    """Run one task; its start and each epoch are sent to the parent's progress queue."""
    assert _worker_runner is not None
    events = _worker_events

    def progress(epoch: int, elapsed: float, info: dict) -> None:
        events.put((task_id, "epoch", (epoch, elapsed, {k: v for k, v in info.items() if isinstance(v, int | float)})))

    if report:
        events.put((task_id, "start", None))
    return _worker_runner.run(task, progress if report else None)


def _run_in_processes(
    runner: _FitRunner,
    tasks: list[_FitTask],
    finished: Callable[[_FitTask, dict[str, Any]], list[_FitTask]],
    fit_context: FitContext | None,
    threads: int,
    jobs: int,
) -> None:
    """The tasks over ``jobs`` spawned processes (no torch or OpenMP state crosses a fork).

    Families that train in epochs go first, the longest fits. The parent opens a task's
    ``fit_context`` when the worker says it started and feeds it the worker's epochs, so each running
    fit has its own bar; a task whose start message comes after its result is opened and closed at once.
    """
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from .tuning import stops_early

    def cost(task: _FitTask) -> int:
        factory = runner.specs[task.spec_index].factory
        return 0 if isinstance(factory, type) and stops_early(factory) else 1

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    report = fit_context is not None
    opened: dict[int, tuple[ExitStack, ProgressCallback | None]] = {}
    by_id: dict[int, _FitTask] = {}

    def open_task(task_id: int) -> tuple[ExitStack, ProgressCallback | None]:
        if task_id not in opened:
            stack = ExitStack()
            opened[task_id] = (stack, stack.enter_context(_context(fit_context, runner, by_id[task_id])))
        return opened[task_id]

    def drain() -> None:
        while True:
            try:
                task_id, kind, payload = events.get_nowait()
            except queue_module.Empty:
                return
            if task_id not in by_id:  # its result came first and its bar is closed
                continue
            _, progress = open_task(task_id)
            if kind == "epoch" and progress is not None:
                progress(*payload)

    try:
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_init_fit_worker, initargs=(runner, events, threads)
        ) as pool:
            futures: dict[Any, int] = {}
            ids = itertools.count()

            def submit(new: list[_FitTask]) -> None:
                for task in sorted(new, key=cost):
                    task_id = next(ids)
                    by_id[task_id] = task
                    futures[pool.submit(_fit_in_worker, task_id, task, report)] = task_id

            submit(tasks)
            pending = set(futures)
            try:
                while pending:
                    complete, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    drain()
                    for future in complete:
                        task_id = futures.pop(future)
                        out = future.result()
                        stack, _ = open_task(task_id)
                        stack.close()
                        task = by_id.pop(task_id)
                        before = set(futures)
                        submit(finished(task, out))
                        pending |= set(futures) - before
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    except BrokenProcessPool as e:
        raise RuntimeError(
            "an evaluate worker process died (out of memory?); rerun with fewer --jobs (1 runs every fit here)"
        ) from e
    finally:
        for stack, _ in opened.values():
            stack.close()


def _without_oversized_ease(specs: list[ModelSpec], n_items: int) -> list[ModelSpec]:
    """``specs`` less EASE on catalogues above its limit (a warning says why and what to use instead)."""
    from .models.ease import EASE, MAX_ITEMS, too_many_items_message

    if n_items <= MAX_ITEMS:
        return specs
    keep = [s for s in specs if s.factory is not EASE]
    if len(keep) < len(specs):
        logger.warning(too_many_items_message(n_items))
    return keep


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


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items()) or "class defaults"


def format_tuning(results: pd.DataFrame, *, metric: str = "ndcg@100") -> str:
    """What each model was tried with on validation users, what was chosen, and where torch stopped."""
    if results.empty:
        return ""
    seed = results["tuned_on_seed"].iloc[0] if "tuned_on_seed" in results else results["seed"].iloc[0]
    lines = [
        f"Hyperparameters chosen once, on the validation users of seed {seed}'s split ({metric}), "
        "and used for every seed:",
        "",
    ]
    for name, rows in results.groupby("model", sort=False):
        first = rows.iloc[0]
        trials = first["validation_trials"] or []
        tried = "; ".join(
            f"{_point_text(t['point'])}: {t[metric]:.4f}"
            + (f" (best epoch {t['best_epoch']})" if "best_epoch" in t else "")
            for t in trials
        )
        line = f"- {name}: `{first['params'] or {}}`" + (f"; tried {tried}" if tried else " (no grid)")
        if "best_epoch" in rows and rows["best_epoch"].notna().any():
            stops = ", ".join(
                f"s{int(r['seed'])} {int(r['best_epoch'])}/{int(r['epochs_run'])}"
                for _, r in rows.iterrows()
                if pd.notna(r.get("best_epoch")) and pd.notna(r.get("epochs_run"))
            )
            line += f"; best epoch / epochs run: {stops}"
        lines.append(line)
    return "\n".join(lines)
