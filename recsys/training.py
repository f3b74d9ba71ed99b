"""Train a model from a YAML template with command-line overrides (seed 004 style), evaluate it on
held-out users, and register it.

A template (``configs/<name>.yaml``)::

    family: multvae          # a registered model family
    dataset: synthetic       # a data set name (recsys.data.DATASETS) or csv:INTERACTIONS,ITEMS
    model_id: multvae-synthetic
    seed: 0                  # split seed (strong generalization) and model seed unless params say
    params: {latent_dim: 200, epochs: 50}

Overrides are ``key=value`` strings; values are parsed as YAML (``epochs=3``, ``loss=focal``,
``hidden=[600,200]``). A key names a top-level field (``dataset=lastfm-2k``) or a model parameter,
with or without the ``params.`` prefix. Unknown keys are an error that lists the valid ones.

**Several processes** (``train_distributed``, ``python -m recsys train ... --ddp N``): N processes
(``torch.multiprocessing`` spawn; gloo on the CPU, nccl with ``device=cuda``) each load the data and
make the same split, then train one model together: every rank holds its shard of the training
users (rows ``rank::N``), takes ``batch_size // N`` of them per step, and the gradients are averaged
with ``torch.distributed.all_reduce`` before each step (``recsys.models.torch_utils.train_epochs``),
so it is the single-process model with its batches spread over the processes. Rank 0 validates,
evaluates and registers. Under ``torchrun`` (its ``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` variables)
``--ddp env`` joins the group torchrun made instead of spawning, which is how it runs across
machines (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .data.dataset import Dataset
from .data.splits import strong_generalization_split
from .evaluate import evaluate_on_users
from .model_extras import compute_extras
from .models import get_model_class
from .models.base import ProgressCallback
from .registry import Registry, check_model_id
from .threads import training_torch_threads

logger = logging.getLogger("recsys")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
TOP_LEVEL_KEYS = ("family", "dataset", "model_id", "seed", "params", "n_heldout_users", "description", "protocol")
#: ``protocol``: "strong" (default: strong generalization, Recall/NDCG) or "next_item" (temporal
#: leave-last-out, HR@10/NDCG@10; recsys.next_item) for the sequential families.
PROTOCOLS = ("strong", "next_item")
#: Above this many items registering a model keeps tune+post's default step rule instead of choosing it
#: on validation users (recsys.steering.protocols.choose_step_rule steers 200 users x 4 conditions x every
#: step of the grid: hours at 100k songs on 2 cores).
STEP_RULE_MAX_ITEMS = 10_000


class ConfigError(ValueError):
    """A template or override is malformed; the message says which key and what is allowed."""


def list_templates() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_template(name_or_path: str | Path) -> dict[str, Any]:
    """Read a template by name (``configs/<name>.yaml``) or path; validate its keys."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"no template {str(name_or_path)!r} (looked for {path}); available: {', '.join(list_templates())}"
        )
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a template is a mapping of keys, got {type(cfg).__name__}")
    unknown = set(cfg) - set(TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; allowed: {list(TOP_LEVEL_KEYS)}")
    if "family" not in cfg:
        raise ConfigError(f"{path}: a template needs a 'family'")
    cfg.setdefault("params", {})
    cfg.setdefault("dataset", "synthetic")
    cfg.setdefault("seed", 0)
    return cfg


def model_param_names(family: str) -> list[str]:
    cls = get_model_class(family)
    sig = inspect.signature(cls.__init__)
    return [n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def default_param(family: str, name: str) -> Any:
    """The default of the family's constructor parameter ``name`` (None where it has none)."""
    p = inspect.signature(get_model_class(family).__init__).parameters.get(name)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


def max_epochs(family: str, params: dict[str, Any]) -> int | None:
    """The most epochs a fit of ``family`` with ``params`` can run (progress bars count them): ``epochs``,
    plus ``flow_epochs`` for the flow families, which train their flow for up to that many more."""
    epochs = params.get("epochs") or default_param(family, "epochs")
    flow_epochs = params.get("flow_epochs", default_param(family, "flow_epochs"))
    if epochs and flow_epochs:
        epochs = int(epochs) + int(flow_epochs)
    return int(epochs) if epochs else None


def apply_overrides(cfg: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``key=value`` overrides applied (values parsed as YAML)."""
    out = {**cfg, "params": dict(cfg.get("params") or {})}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if key.startswith("params."):
            key = key[len("params.") :]
            target = "params"
        elif key in TOP_LEVEL_KEYS and key != "params":
            target = "top"
        else:
            target = "params"
        if target == "top":
            out[key] = value
            continue
        valid = model_param_names(out["family"])
        if key not in valid:
            raise ConfigError(
                f"{out['family']} has no parameter {key!r}; parameters: {', '.join(valid)}; "
                f"top-level keys: {', '.join(k for k in TOP_LEVEL_KEYS if k != 'params')}"
            )
        out["params"][key] = value
    return out


def source_dataset_info(dataset: Dataset) -> dict[str, Any]:
    """What a model's manifest records about the data it was trained on (``info.source_dataset``): name and
    content fingerprint, and for CSV data sets the files' paths, sizes and sha256 (``csv``), so every command
    finds the data again from the model id (:func:`recsys.data.load_csv_source`)."""
    info: dict[str, Any] = {"name": dataset.name, "fingerprint": dataset.fingerprint}
    if dataset.source is not None:
        info["csv"] = dataset.source
    return info


def train_from_config(
    cfg: dict[str, Any],
    *,
    dataset: Dataset | None = None,
    registry: Registry | None = None,
    progress: ProgressCallback | None = None,
    load: Callable[[str], Dataset] | None = None,
    overwrite: bool = True,
) -> tuple[str, dict[str, float]]:
    """Fit the configured model on a strong-generalization split, evaluate, register.

    Returns the model id and its test metrics. ``dataset`` skips loading by name (tests, the demo).
    Torch trains with :func:`recsys.threads.training_threads` threads.
    """
    with training_torch_threads():
        return _train_from_config(
            cfg, dataset=dataset, registry=registry, progress=progress, load=load, overwrite=overwrite
        )


def _train_from_config(
    cfg: dict[str, Any],
    *,
    dataset: Dataset | None,
    registry: Registry | None,
    progress: ProgressCallback | None,
    load: Callable[[str], Dataset] | None,
    overwrite: bool,
    on_fitted: Callable[[Any], None] | None = None,
) -> tuple[str, dict[str, float]]:
    family = cfg["family"]
    cls = get_model_class(family)
    params = dict(cfg.get("params") or {})
    valid = model_param_names(family)
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ConfigError(f"{family} has no parameters {bad}; parameters: {', '.join(valid)}")
    if cfg.get("model_id"):
        check_model_id(cfg["model_id"])  # before loading and fitting, not after
    if dataset is None:
        if load is None:
            from .data import load_dataset as load
        dataset = load(cfg.get("dataset", "synthetic"))
    cfg = {**cfg, "model_id": check_model_id(cfg.get("model_id") or f"{family}-{dataset.name}")}
    seed = int(cfg.get("seed", 0))
    if "seed" in valid and "seed" not in params:
        params["seed"] = seed
    protocol = cfg.get("protocol") or "strong"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; use one of {list(PROTOCOLS)}")
    if protocol == "next_item":
        from .next_item import train_next_item_from_config

        return train_next_item_from_config(
            cfg, cls(**params), dataset, registry=registry or Registry(), progress=progress, overwrite=overwrite
        )
    split = strong_generalization_split(dataset, seed, cfg.get("n_heldout_users"))
    model = cls(**params)
    t0 = time.perf_counter()
    model.fit(split.train, validation=(split.val_foldin, split.val_holdout), progress=progress)
    fit_s = time.perf_counter() - t0
    if on_fitted is not None:
        on_fitted(model)
    if _distributed_rank() > 0:  # rank 0 evaluates and registers the (identical) model
        return cfg["model_id"], {"fit_s": fit_s}
    metrics = evaluate_on_users(model, split.test_foldin, split.test_holdout)
    metrics["fit_s"] = fit_s
    validation = (split.val_foldin, split.val_holdout)
    if split.train.n_items > STEP_RULE_MAX_ITEMS:
        logger.warning(
            "tune+post keeps the default step rule: choosing it on validation users steers 200 users over every "
            "step and condition, too slow above %d items (this catalogue: %d)",
            STEP_RULE_MAX_ITEMS,
            split.train.n_items,
        )
        validation = None
    extras, extra_info = compute_extras(
        model, split.train, split.test_foldin, split.test_holdout, validation=validation
    )
    registry = registry or Registry()
    model_id = registry.save(
        model,
        dataset=split.train,
        model_id=cfg["model_id"],
        metrics=metrics,
        extras=extras,
        info={
            **extra_info,
            "split": split.describe(),
            "config": cfg,
            "source_dataset": source_dataset_info(dataset),
        },
        overwrite=overwrite,
    )
    logger.info("registered %s: ndcg@100=%.4f", model_id, metrics["ndcg@100"])
    return model_id, metrics


# ---------------------------------------------------------------------------------------------
# several processes: torch.distributed (DDP-style gradient averaging)
# ---------------------------------------------------------------------------------------------
#: Families whose training loop shards users and averages gradients over processes.
DISTRIBUTED_FAMILIES = ("multvae",)


def _distributed_rank() -> int:
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0
    return torch.distributed.get_rank()


def _check_distributed(cfg: dict[str, Any]) -> None:
    if cfg["family"] not in DISTRIBUTED_FAMILIES:
        raise ConfigError(
            f"--ddp trains {', '.join(DISTRIBUTED_FAMILIES)} only, not {cfg['family']!r} (its training loop "
            "does not shard users)"
        )
    if (cfg.get("protocol") or "strong") != "strong":
        raise ConfigError("--ddp supports the strong-generalization protocol only")


def _backend(cfg: dict[str, Any]) -> str:
    device = str((cfg.get("params") or {}).get("device") or "cpu")
    return "nccl" if device.startswith("cuda") else "gloo"


def _rank_config(cfg: dict[str, Any], local_rank: int) -> dict[str, Any]:
    """With ``device=cuda`` each process takes its own GPU (``cuda:<local rank>``)."""
    params = dict(cfg.get("params") or {})
    if str(params.get("device") or "cpu").startswith("cuda"):
        params["device"] = f"cuda:{local_rank}"
    return {**cfg, "params": params}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_worker(
    rank: int,
    world_size: int,
    port: int,
    cfg: dict[str, Any],
    dataset: Dataset | None,
    registry_root: str | None,
    overwrite: bool,
    result_path: str,
    threads: int,
) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group(_backend(cfg), init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    digest: dict[str, str] = {}
    try:
        with training_torch_threads(threads):
            model_id, metrics = _train_from_config(
                _rank_config(cfg, rank),
                dataset=dataset,
                registry=Registry(registry_root) if registry_root else None,
                progress=None,
                load=None,
                overwrite=overwrite,
                on_fitted=lambda m: digest.update(sha256=weights_digest(m)),
            )
        out = {"model_id": model_id, "metrics": metrics, "weights_sha256": digest.get("sha256")}
        Path(f"{result_path}.{rank}").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def weights_digest(model: Any) -> str:
    """sha256 over a fitted model's learned arrays (names and bytes): equal digests, equal weights."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for name, arr in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def train_distributed(
    cfg: dict[str, Any],
    world_size: int,
    *,
    dataset: Dataset | None = None,
    registry: Registry | None = None,
    overwrite: bool = True,
    threads: int = 1,
) -> tuple[str, dict[str, float]]:
    """:func:`train_from_config` on ``world_size`` local processes (torch.multiprocessing spawn).

    Every process loads ``cfg["dataset"]`` (or gets ``dataset``, sent to it once at start) and trains
    its shard of the users with ``threads`` torch threads; rank 0 evaluates and registers. Returns
    rank 0's model id and test metrics, plus ``rank_weights_sha256`` (each rank's
    :func:`weights_digest` after fitting: all equal when the ranks stayed in step).
    ``world_size=1`` is :func:`train_from_config`.
    """
    world_size = int(world_size)
    if world_size < 1:
        raise ConfigError(f"--ddp needs a process count >= 1, got {world_size}")
    if world_size == 1:
        return train_from_config(cfg, dataset=dataset, registry=registry, overwrite=overwrite)
    _check_distributed(cfg)
    import torch.multiprocessing as mp

    root = str(registry.root) if registry is not None else None
    with tempfile.TemporaryDirectory(prefix="recsys-ddp-") as tmp:
        result = os.path.join(tmp, "result.json")
        mp.start_processes(
            _distributed_worker,
            args=(world_size, _free_port(), cfg, dataset, root, overwrite, result, int(threads)),
            nprocs=world_size,
            start_method="spawn",
        )
        ranks = [json.loads(Path(f"{result}.{r}").read_text()) for r in range(world_size)]
    metrics = {**ranks[0]["metrics"], "rank_weights_sha256": [r["weights_sha256"] for r in ranks]}
    return ranks[0]["model_id"], metrics


def train_under_torchrun(
    cfg: dict[str, Any],
    *,
    dataset: Dataset | None = None,
    registry: Registry | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = True,
) -> tuple[str, dict[str, float]]:
    """Join the process group ``torchrun`` describes (``env://``: RANK, WORLD_SIZE, MASTER_ADDR/PORT)
    and train; rank 0 registers and returns the metrics, the other ranks return ``{"fit_s": ...}``."""
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ConfigError(
            f"--ddp env runs under torchrun, which sets {', '.join(missing)}; launch with "
            "`torchrun --nnodes M --nproc-per-node N ... -m recsys train ... --ddp env`, or use --ddp N"
        )
    _check_distributed(cfg)
    import torch.distributed as dist

    dist.init_process_group(_backend(cfg), init_method="env://")
    try:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        rank0 = dist.get_rank() == 0
        return train_from_config(
            _rank_config(cfg, local_rank),
            dataset=dataset,
            registry=registry,
            progress=progress if rank0 else None,
            overwrite=overwrite,
        )
    finally:
        dist.destroy_process_group()
