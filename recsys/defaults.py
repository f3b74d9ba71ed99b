"""The default registry: the models the demo app starts with, built on the embedded synthetic data.

``build_default_registry`` generates the synthetic catalogue, makes the strong-generalization split
(seed 0), fits every default model on the training users, scores it on the test users and saves it
with its metrics and how it was made. Models already present and intact are skipped, so the demo
builds the registry once and later starts in seconds.

The list of models is data: :data:`DEFAULT_MODELS`. A family whose module is not there yet (other
families are being added) is skipped with a warning instead of failing the whole build.

Command line (``python -m recsys.defaults`` or the CLI's ``registry build-defaults``, which calls
:func:`main`)::

    python -m recsys.defaults [--registry DIR] [--force] [--families ease,svd] [--quiet]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .data.dataset import Dataset
from .data.splits import StrongSplit, strong_generalization_split
from .data.synthetic import generate_synthetic
from .evaluate import evaluate_on_users
from .model_extras import compute_extras
from .models import get_model_class
from .models.base import Recommender
from .registry import Registry, RegistryError
from .steering.calibration import StepRule
from .threads import positive_int_from_env, training_torch_threads

logger = logging.getLogger("recsys")

#: Environment variable: worker processes of the demo's first build (see :func:`build_jobs`).
BUILD_JOBS_ENV = "RECSYS_BUILD_JOBS"

#: Seed of the strong-generalization split every default model is trained and scored on.
SPLIT_SEED = 0

#: ``progress(done, total, message)``: ``done`` of ``total`` models finished; ``message`` says what
#: is happening now (which model is training, its latest epoch).
BuildProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class DefaultModel:
    """One default model: its registry id, family and constructor keywords."""

    model_id: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    #: tune+post's step rule (``StepRule.to_json()``), chosen offline on the demo's data by
    #: ``python benchmarks/demo_step_rules.py`` (the demo's first start skips choosing it). None:
    #: chosen on validation users while building (about 20-45 s a latent model on 2 cores).
    step_rule: dict[str, float] | None = None
    #: Id of a default "mlp" model whose network stands in for this MLP+flow's first stage (the same
    #: training, see :meth:`MLPFlowRecommender.reuse_mlp`), when it is already in the registry.
    mlp_from: str | None = None


#: tune+post's step rules of the demo's latent models (``StepRule`` base/scale/offset), chosen on
#: validation users of the demo's data by ``python benchmarks/demo_step_rules.py``
#: (benchmarks/results/steering/demo_step_rules.md).
def _rule(base: float) -> dict[str, float]:
    return {"base": base, "scale": 4.0, "offset": 0.3}


#: Torch families train with ``epochs`` as a cap and stop 5 epochs after their best validation NDCG@100.
_EARLY = {"epochs": 100, "patience": 5}

#: The demo's models, in build order (cheap first, so the app has something to show early). Each
#: uses the point of its family's grid (``recsys/tuning.py``) that the demo's own data chose on its
#: validation users in ``benchmarks/accuracy_zoo.py --dataset synthetic``
#: (``benchmarks/results/accuracy_zoo_synthetic.md``): rerun that and update these after changing a grid.
DEFAULT_MODELS: list[DefaultModel] = [
    DefaultModel("popularity-synthetic", "popularity"),
    DefaultModel("ease-synthetic", "ease", {"l2": 50.0}),
    DefaultModel(
        "dlae-synthetic", "dlae", {"latent_dim": 1024, "dropout": 0.67, "l2": 50.0, "emphasis": True}, _rule(0.0)
    ),
    DefaultModel("svd-synthetic", "svd", {"n_factors": 128}, _rule(0.1)),
    DefaultModel("mlp-synthetic", "mlp", {**_EARLY, "latent_dim": 64, "hidden_dim": 256, "dropout": 0.5}, _rule(0.0)),
    DefaultModel(
        "multvae-synthetic", "multvae", {**_EARLY, "beta_max": 0.1, "dropout": 0.5, "batch_size": 500}, _rule(0.2)
    ),
    DefaultModel("flow-synthetic", "flow", {**_EARLY, "embedding_dim": 128}, _rule(0.2)),
    DefaultModel(
        "mlp_flow-synthetic",
        "mlp_flow",
        {**_EARLY, "latent_dim": 64, "hidden_dim": 256, "dropout": 0.5},
        _rule(0.1),
        mlp_from="mlp-synthetic",
    ),
]


def default_dataset() -> Dataset:
    """The demo's data: the full embedded synthetic catalogue (3000 users, 5000 songs)."""
    return generate_synthetic()


def available_models(
    models: Iterable[DefaultModel] | None = None, families: Sequence[str] | None = None
) -> list[tuple[DefaultModel, type[Recommender]]]:
    """The default models whose family can be imported, each with its class.

    ``families`` restricts the list (unknown names raise, so typos do not silently build nothing).
    """
    models = list(DEFAULT_MODELS if models is None else models)
    if families is not None:
        known = {m.family for m in models}
        unknown = sorted(set(families) - known)
        if unknown:
            raise ValueError(f"no default model of family {unknown}; default families: {sorted(known)}")
        models = [m for m in models if m.family in set(families)]
    out = []
    for spec in models:
        try:
            out.append((spec, get_model_class(spec.family)))
        except (KeyError, ImportError) as e:
            logger.warning("skipping default model %s: family %r is not available (%s)", spec.model_id, spec.family, e)
    return out


def _needs_build(registry: Registry, model_id: str, force: bool) -> bool:
    if force or model_id not in registry.ids():
        return True
    problems = registry.verify(model_id)
    if problems:
        logger.warning("default model %s fails verification, rebuilding it: %s", model_id, "; ".join(problems))
    return bool(problems)


def _fit_and_save(
    spec: DefaultModel,
    cls: type[Recommender],
    split: StrongSplit,
    registry: Registry,
    on_epoch: Callable[[int, float, dict], None] | None,
    reducer_factory: Callable[..., Any] | None = None,
    on_map: Callable[[int, float, dict], None] | None = None,
) -> str:
    model = cls(**spec.params)
    if spec.mlp_from is not None:
        _reuse_stored_mlp(model, spec.mlp_from, split, registry)
    t0 = time.perf_counter()
    model.fit(split.train, validation=(split.val_foldin, split.val_holdout), progress=on_epoch)
    fit_seconds = time.perf_counter() - t0
    metrics = evaluate_on_users(model, split.test_foldin, split.test_holdout)
    extras, extra_info = compute_extras(
        model,
        split.train,
        split.test_foldin,
        split.test_holdout,
        reducer_factory=reducer_factory,
        map_progress=on_map,
        validation=None if spec.step_rule is not None else (split.val_foldin, split.val_holdout),
        step_rule=None if spec.step_rule is None else StepRule.from_json(spec.step_rule),
    )
    info = {
        **extra_info,
        "built_by": "recsys.defaults.build_default_registry",
        "split": {"kind": "strong_generalization", **split.describe()},
        "split_seed": split.seed,
        "evaluated_on": "test users of the split (fold-in 80 %, held-out 20 % of each history)",
        "fit_seconds": fit_seconds,
    }
    registry.save(
        model, dataset=split.train, model_id=spec.model_id, metrics=metrics, extras=extras, info=info, overwrite=True
    )
    logger.info("saved %s: ndcg@100=%.4f recall@20=%.4f", spec.model_id, metrics["ndcg@100"], metrics["recall@20"])
    return spec.model_id


def _reuse_stored_mlp(model: Recommender, model_id: str, split: StrongSplit, registry: Registry) -> bool:
    """Let an MLP+flow take its first stage from the stored ``model_id``, if that was trained on this
    split's training users with the same stage-1 settings; otherwise it trains the stage itself."""
    try:
        stored = registry.load(model_id)
    except RegistryError as e:  # not built yet (or by another worker still), damaged, ...
        logger.info("%s: training its MLP stage itself (%s)", model_id, e)
        return False
    if stored.manifest["dataset"]["fingerprint"] != split.train.fingerprint:
        logger.info("%s was trained on other data: training the MLP stage itself", model_id)
        return False
    try:
        model.reuse_mlp(stored.model)
    except (AttributeError, ValueError) as e:
        logger.info("cannot reuse %s: %s", model_id, e)
        return False
    return True


def build_default_registry(
    registry: Registry | None = None,
    *,
    progress: BuildProgress | None = None,
    force: bool = False,
    families: Sequence[str] | None = None,
    dataset: Dataset | None = None,
    models: Iterable[DefaultModel] | None = None,
    split_seed: int = SPLIT_SEED,
    n_heldout_users: int | None = None,
    reducer_factory: Callable[..., Any] | None = None,
) -> list[str]:
    """Fit, score and save the default models that are missing; returns the ids written now.

    A model whose fit fails is logged as an error and left out; the others are still built.

    Parameters
    ----------
    registry : Registry, optional
        Where to save (default: ``Registry()``, i.e. ``$RECSYS_MODELS_DIR`` or ``models_store/``).
    progress : callable, optional
        ``progress(done, total, message)`` before each model, on each of its epochs and at the end.
    force : bool
        Refit and overwrite models that are already present.
    families : sequence of str, optional
        Only the default models of these families.
    dataset : Dataset, optional
        Data to train on instead of the full synthetic catalogue (tests pass a small one; the ids
        stay those of :data:`DEFAULT_MODELS`).
    models : iterable of DefaultModel, optional
        Replaces :data:`DEFAULT_MODELS`.
    split_seed, n_heldout_users
        The strong-generalization split the models are trained and scored on.
    reducer_factory : callable, optional
        Replaces UMAP for the latent maps (tests pass :func:`recsys.projection.pca_reducer`).
    """
    return _build(registry, progress, force, families, dataset, models, split_seed, n_heldout_users, reducer_factory)[0]


def _build(
    registry: Registry | None,
    progress: BuildProgress | None,
    force: bool,
    families: Sequence[str] | None,
    dataset: Dataset | None,
    models: Iterable[DefaultModel] | None,
    split_seed: int,
    n_heldout_users: int | None,
    reducer_factory: Callable[..., Any] | None = None,
    jobs: int | None = 1,
) -> tuple[list[str], list[str]]:
    """:func:`build_default_registry`, also returning the ids whose fit failed."""
    registry = registry if registry is not None else Registry()
    registry.clean()
    todo = [
        (spec, cls) for spec, cls in available_models(models, families) if _needs_build(registry, spec.model_id, force)
    ]
    if not todo:
        logger.info("all default models are present in %s", registry.root)
        return [], []
    ds = dataset if dataset is not None else default_dataset()
    split = strong_generalization_split(ds, split_seed, n_heldout_users)
    jobs = max(1, min(build_jobs() if jobs is None else int(jobs), len(todo)))
    if jobs > 1:
        built, failed = _build_parallel(todo, split, registry, progress, reducer_factory, jobs)
    else:
        with training_torch_threads():
            built, failed = _build_all(todo, split, registry, progress, reducer_factory)
    if progress:
        progress(len(todo), len(todo), f"saved {len(built)} of {len(todo)} models to {registry.root}")
    return built, failed


def _build_all(
    todo: list[tuple[DefaultModel, type[Recommender]]],
    split: StrongSplit,
    registry: Registry,
    progress: BuildProgress | None,
    reducer_factory: Callable[..., Any] | None,
) -> tuple[list[str], list[str]]:
    """Fit, score and save each model in turn; a failing family is logged and skipped."""
    built, failed = [], []
    for i, (spec, cls) in enumerate(todo):
        if progress:
            progress(i, len(todo), f"training {spec.model_id} ({spec.family})")

        def on_epoch(epoch: int, elapsed: float, info: dict, _i: int = i, _id: str = spec.model_id) -> None:
            if progress:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in info.items() if isinstance(v, int | float))
                progress(_i, len(todo), f"training {_id}: epoch {epoch} ({elapsed:.0f} s) {shown}".rstrip())

        try:

            def on_map(step: int, elapsed: float, info: dict, _i: int = i, _id: str = spec.model_id) -> None:
                if progress:
                    progress(_i, len(todo), f"mapping {_id}'s latent space: {info.get('stage', step)} done")

            built.append(_fit_and_save(spec, cls, split, registry, on_epoch, reducer_factory, on_map))
        except Exception as e:  # one family failing must not cost the demo the others
            logger.error("could not build default model %s: %s: %s", spec.model_id, type(e).__name__, e)
            failed.append(spec.model_id)
    return built, failed


def build_jobs() -> int:
    """Worker processes for the demo's first build: ``$RECSYS_BUILD_JOBS``, else 2 on machines with 2+ cores.

    Each worker trains one model at a time on one thread (:mod:`recsys.threads`), so two workers use
    both cores of the 2-core machines the demo targets; more would only share those cores.
    """
    n = positive_int_from_env(BUILD_JOBS_ENV)
    if n is not None:
        return n
    return 2 if (os.cpu_count() or 1) >= 2 else 1


_worker_queue: Any = None


def _init_worker(queue: Any) -> None:
    global _worker_queue
    _worker_queue = queue
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _build_in_worker(
    spec: DefaultModel, split: StrongSplit, root: str, reducer_factory: Callable[..., Any] | None
) -> str:
    """One model in a worker process: fit, score, map, save; progress messages go to the parent's queue."""

    def say(text: str) -> None:
        if _worker_queue is not None:
            _worker_queue.put(text)

    def on_epoch(epoch: int, elapsed: float, info: dict) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in info.items() if isinstance(v, int | float))
        say(f"training {spec.model_id}: epoch {epoch} ({elapsed:.0f} s) {shown}".rstrip())

    def on_map(step: int, elapsed: float, info: dict) -> None:
        say(f"mapping {spec.model_id}'s latent space: {info.get('stage', step)} done")

    say(f"training {spec.model_id} ({spec.family})")
    with training_torch_threads():
        return _fit_and_save(
            spec, get_model_class(spec.family), split, Registry(root), on_epoch, reducer_factory, on_map
        )


def _build_parallel(
    todo: list[tuple[DefaultModel, type[Recommender]]],
    split: StrongSplit,
    registry: Registry,
    progress: BuildProgress | None,
    reducer_factory: Callable[..., Any] | None,
    jobs: int,
) -> tuple[list[str], list[str]]:
    """:func:`_build_all` over ``jobs`` worker processes (spawned: no torch state crosses a fork).

    Models are handed out in :data:`DEFAULT_MODELS` order, so the cheap ones are still saved first.
    The parent sends each worker the split (nothing is regenerated or read back from disk) and shows
    the workers' latest progress message.
    """
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    built, failed = [], []
    done = 0

    def drain() -> None:
        while True:
            try:
                text = messages.get_nowait()
            except queue_module.Empty:
                return
            if progress:
                progress(done, len(todo), text)

    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(messages,)) as pool:
        futures = {
            pool.submit(_build_in_worker, spec, split, str(registry.root), reducer_factory): spec for spec, _ in todo
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            drain()
            for future in finished:
                spec = futures[future]
                try:
                    built.append(future.result())
                except Exception as e:  # one family failing must not cost the demo the others
                    logger.error("could not build default model %s: %s: %s", spec.model_id, type(e).__name__, e)
                    failed.append(spec.model_id)
                done += 1
        drain()
    order = [spec.model_id for spec, _ in todo]
    return sorted(built, key=order.index), failed


class _TqdmProgress:
    """A ``BuildProgress`` that draws one tqdm bar over the models (to stderr)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, done: int, total: int, message: str) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="model", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
        self.bar.set_description(message, refresh=True)
        if done == total:
            self.bar.close()


def parser(prog: str = "python -m recsys.defaults") -> argparse.ArgumentParser:
    """Arguments of ``build-defaults`` (the CLI reuses this parser's options via :func:`add_arguments`)."""
    p = argparse.ArgumentParser(prog=prog, description="Build the default models of the demo app.")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", metavar="DIR", help="registry directory (default: $RECSYS_MODELS_DIR or models_store/)"
    )
    p.add_argument("--force", action="store_true", help="refit models that are already present")
    p.add_argument("--families", metavar="A,B", help="only these families (comma-separated)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--jobs",
        type=int,
        help=f"models trained at once, one process each (default: ${BUILD_JOBS_ENV}, else 2 on 2+ cores)",
    )


def run(args: argparse.Namespace) -> int:
    """Build with parsed arguments and print what the registry holds.

    Returns 0, 1 if a default model could not be built, or 2 for bad arguments.
    """
    registry = Registry(args.registry) if getattr(args, "registry", None) else Registry()
    families = [f.strip() for f in args.families.split(",") if f.strip()] if args.families else None
    try:
        progress = None if args.quiet else _TqdmProgress()
        jobs = getattr(args, "jobs", None)
        if jobs is not None and jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        built, failed = _build(registry, progress, args.force, families, None, None, SPLIT_SEED, None, jobs=jobs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    present = ", ".join(registry.ids()) or "none"
    print(f"built {len(built)} model(s); models in {registry.root}: {present}")
    if failed:
        print(f"error: could not build {', '.join(failed)} (see the log above)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recsys.defaults``: build the default registry with a progress bar."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
