"""Shared torch plumbing for the neural families (MLP, Multi-VAE, AutoEncoder, Flow, MLP+Flow).

Import this module only from torch-based families: it imports torch at module level, and
``import recsys`` must stay torch-free. API (kept stable; other families build on it):

``import_torch() -> module``
    torch itself, with an error that says how to install it when it is missing.
``resolve_device(device: str | None) -> torch.device``
    ``None``/``"cpu"`` -> CPU; ``"cuda"``/``"cuda:N"`` only when CUDA is available (else a
    ValueError that says so); anything else is refused with the accepted values.
``seed_everything(seed: int) -> None``
    Seeds torch (CPU and CUDA) and Python's ``random``; numpy randomness in the library goes through
    explicit ``np.random.default_rng(seed)`` generators instead of the global state.
``torch_threads(n)`` (context manager)
    Runs the block with ``torch.set_num_threads(n)`` and restores the previous count. On a small
    shared machine one thread is often fastest: these models run many small ops per batch, and a
    second thread that the OS has given to another process makes every op wait (measured on the
    2-core dev box under load: MLP default fit 12 s with 1 thread, 39 s with 2).
``csr_to_torch_batch(x, device, rows=None) -> Tensor``
    Dense float32 tensor of ``x[rows]`` (or all of ``x``); ``x`` is a CSR matrix or a dense numpy
    array. Only the batch is densified, never the whole matrix.
``SparseBatch`` / ``csr_to_sparse_batch(x, device, rows=None) -> SparseBatch``
    The rows of a CSR matrix as a torch sparse COO tensor plus its (row, item, value) triplets and
    the scipy rows: for first layers that read only the non-zeros (``torch.sparse.mm``), so memory
    and time scale with interactions, not batch x items.
``rows_per_batch(n_columns, cap=1000) -> int``
    Rows of an inference batch so that one dense batch of scores stays near 16M floats (64 MB):
    1000 rows up to 16k items, 40 rows at 400k.
``distributed_world() -> (rank, world_size)``
    (0, 1) unless ``torch.distributed`` is initialised (``--ddp``): then ``train_epochs`` trains
    on this rank's shard of users (rows ``rank::world``) with ``batch_size // world`` rows per
    step and averages gradients over the ranks (``all_reduce``) before every optimizer step, so N
    processes take the same steps as one process with the full batch; validation runs on rank 0 and
    its value is broadcast, so every rank stops at the same epoch with the same weights.
``predict_in_batches(fn, x, device, batch_size=1000) -> ndarray``
    Runs ``fn(batch_tensor) -> tensor`` in eval mode under ``torch.no_grad`` over row batches of ``x``
    and stacks the results as a float32 numpy array (the hot path of ``_encode``/``_score``).
``train_epochs(model, module, train_x, step, optimizer, *, epochs, batch_size, seed, device, ...)``
    The training loop every torch family uses; see its docstring. Fills ``model.training_log_``
    (one dict per epoch: ``epoch``, ``train_loss``, ``val_ndcg@100`` (None without validation),
    ``seconds``, plus whatever ``extra_metrics`` returns) and sets ``model.best_epoch_``.
``state_dict_to_numpy(module, prefix="") -> dict[str, ndarray]``
    The module's parameters and buffers as contiguous CPU numpy arrays keyed ``prefix + name``.
``load_numpy_state(module, arrays, prefix="") -> None``
    The inverse: loads the ``prefix``-ed entries of ``arrays`` into ``module`` (strict: missing or
    unexpected keys and shape mismatches raise ValueError naming them).
``tanh_stack(dims, out_activation=False) -> list[nn.Module]``
    ``Linear`` layers through ``dims`` with tanh between them (and after the last if asked).
``TorchLatentRecommender(LatentRecommender)``
    Base class of the torch families: subclasses give ``allowed_losses``, ``_build_module()`` (a
    module with ``encode``/``decode``) and ``_train(x_binary_csr, validation, progress)``; the base
    does device/seed/score_kind in ``_fit``, batched ``_encode``/``_decode``/``_score`` on binarised
    histories, and ``_state``/``_set_state`` (weights under ``"net."`` + ``"score_kind"``).
    Subclasses need the params ``loss``, ``seed`` and ``device``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import LatentRecommender, ModelFitError, ProgressCallback, Validation
from .losses import check_loss, get_loss, score_kind_array, score_kind_for, score_kind_from_array

try:  # torch is an optional, heavy dependency: only torch families import this module
    import torch
except ImportError:  # pragma: no cover - exercised only where torch is absent
    torch = None  # type: ignore[assignment]

logger = logging.getLogger("recsys")

#: Metric used for validation and early stopping (a key of ``recsys.evaluate.evaluate_on_users``).
VAL_METRIC = "ndcg@100"
#: Key of the validation metric in ``training_log_`` rows and progress dicts.
VAL_KEY = "val_ndcg@100"


def import_torch() -> Any:
    """Return the torch module, or raise ImportError that says how to get it."""
    if torch is None:
        raise ImportError(
            "this model family needs PyTorch; install it with `pip install torch` "
            "(CPU wheels: --index-url https://download.pytorch.org/whl/cpu)"
        )
    return torch


def resolve_device(device: str | None) -> torch.device:
    """A torch device from a user string: ``None``/"cpu" (default) or "cuda[:N]" when available."""
    import_torch()
    name = "cpu" if device is None else str(device).strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use device='cpu'"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return dev
    raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' (or 'cuda:N')")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA) and ``random`` so weight init and dropout repeat for a seed."""
    import_torch()
    seed = int(seed)
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is); restores the old count."""
    import_torch()
    if n is None:
        yield
        return
    if int(n) < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def csr_to_torch_batch(
    x: sp.csr_matrix | np.ndarray, device: torch.device | str | None, rows: np.ndarray | None = None
) -> torch.Tensor:
    """Dense float32 tensor of ``x[rows]`` on ``device``; densifies only the selected rows."""
    part = x if rows is None else x[rows]
    dense = part.toarray() if sp.issparse(part) else np.asarray(part)
    t = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))
    return t.to(device) if device is not None else t


class SparseBatch:
    """Rows of a CSR matrix for a sparse first layer.

    Attributes: ``tensor`` (torch sparse COO, (batch, n_items), coalesced), ``rows``/``cols``
    (int64 tensors, the non-zeros' batch row and item), ``values`` (float32 tensor), ``csr`` (the
    scipy rows). ``shape[0]`` is the batch size, so training loops can count rows as for a tensor.
    """

    def __init__(self, csr: sp.csr_matrix, device: torch.device | str | None):
        csr = sp.csr_matrix(csr, dtype=np.float32)
        csr.sort_indices()
        self.csr = csr
        rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        self.rows = torch.from_numpy(rows)
        self.cols = torch.from_numpy(csr.indices.astype(np.int64))
        self.values = torch.from_numpy(np.ascontiguousarray(csr.data, dtype=np.float32))
        if device is not None:
            self.rows, self.cols, self.values = (t.to(device) for t in (self.rows, self.cols, self.values))
        self.tensor = torch.sparse_coo_tensor(
            torch.stack([self.rows, self.cols]), self.values, csr.shape, is_coalesced=True, check_invariants=False
        )
        self.shape = csr.shape

    def with_values(self, values: torch.Tensor) -> torch.Tensor:
        """The same sparsity pattern with other values (normalised, dropped out)."""
        return torch.sparse_coo_tensor(
            self.tensor.indices(), values, self.shape, is_coalesced=True, check_invariants=False
        )

    def dense(self) -> torch.Tensor:
        return self.tensor.to_dense()


def csr_to_sparse_batch(
    x: sp.csr_matrix, device: torch.device | str | None, rows: np.ndarray | None = None
) -> SparseBatch:
    """``x[rows]`` (or all of ``x``) as a :class:`SparseBatch`."""
    return SparseBatch(x if rows is None else x[rows], device)


def rows_per_batch(n_columns: int, cap: int = 1000) -> int:
    """Rows per inference batch: ``cap``, fewer for wide outputs (about 16M floats per batch)."""
    return int(max(8, min(cap, (1 << 24) // max(int(n_columns), 1))))


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of an initialised ``torch.distributed`` group, else (0, 1)."""
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _average_gradients(module: torch.nn.Module, world: int) -> None:
    """All-reduce the gradients of ``module`` over the process group, divided by ``world``."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _broadcast_float(value: float | None, device: torch.device | str | None) -> float:
    """Rank 0's ``value`` on every rank."""
    backend = torch.distributed.get_backend()
    dev = device if backend == "nccl" else "cpu"
    t = torch.tensor([0.0 if value is None else value], dtype=torch.float64, device=dev)
    torch.distributed.broadcast(t, src=0)
    return float(t.item())


def predict_in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: sp.csr_matrix | np.ndarray,
    device: torch.device | str | None,
    *,
    batch_size: int = 1000,
    module: torch.nn.Module | None = None,
) -> np.ndarray:
    """``fn`` over row batches of ``x`` in inference mode; stacked float32 numpy output.

    ``module`` (if given) is put in eval mode for the call and restored to its mode afterwards.
    """
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    outs = []
    try:
        with torch.no_grad():
            for lo in range(0, x.shape[0], batch_size):
                rows = np.arange(lo, min(lo + batch_size, x.shape[0]))
                out = fn(csr_to_torch_batch(x, device, rows))
                outs.append(out.detach().to("cpu", torch.float32).numpy())
    finally:
        if module is not None and was_training:
            module.train()
    if not outs:
        raise ValueError("no rows to predict: got an empty batch of histories")
    return np.concatenate(outs, axis=0)


def _validation_ndcg(model: Any, module: torch.nn.Module, validation: Validation) -> float:
    from ..evaluate import evaluate_on_users  # lazy: evaluate imports the models package

    module.eval()
    try:
        return float(evaluate_on_users(model, validation[0], validation[1])[VAL_METRIC])
    finally:
        module.train()


def _progress_bar(epochs: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc="epochs", unit="epoch", leave=False)


def train_epochs(
    model: Any,
    module: torch.nn.Module,
    train_x: sp.csr_matrix | np.ndarray,
    step: Callable[[torch.Tensor], torch.Tensor] | None,
    optimizer: torch.optim.Optimizer | None,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    device: torch.device | str | None,
    validation: Validation | None = None,
    patience: int | None = None,
    progress: ProgressCallback | None = None,
    show_progress: bool = False,
    extra_metrics: Callable[[], dict[str, float]] | None = None,
    grad_clip: float | None = None,
    validate: Callable[[], float] | None = None,
    epoch_fn: Callable[[np.random.Generator, int], float] | None = None,
    make_batch: Callable[[Any, np.ndarray], Any] | None = None,
) -> list[dict]:
    """Mini-batch training with validation NDCG@100, early stopping and a per-epoch log.

    Each epoch shuffles the rows of ``train_x`` (CSR or dense array) with
    ``np.random.default_rng(seed)`` (one generator for the whole run), densifies one mini-batch at a
    time, and calls ``loss = step(batch)``; the loop does ``zero_grad``/``backward``/``step``
    (``step`` only computes the loss, so it may keep its own counters, e.g. KL annealing).

    With ``validation`` (fold-in, held-out CSR of validation users) the model is scored with
    ``model.score`` after every epoch (module in eval mode) and NDCG@100 is logged; the weights of
    the best epoch are restored at the end, and with ``patience`` training stops after that many
    epochs without improvement. Without validation all ``epochs`` run and the last weights stay.
    ``validate()`` (optional, higher = better) replaces that NDCG@100 when a family must score its
    validation users with more than a CSR (e.g. their profiles); it runs with the module in eval mode
    under ``torch.no_grad`` and its value is logged under the same key.
    ``epoch_fn(rng, epoch) -> train_loss`` (optional) replaces the one-pass epoch for families that
    train in phases (RecVAE: encoder passes, then a decoder pass, each with its own optimizer); it
    draws its own permutations from ``rng`` (the run's generator, so a seed still repeats) and may
    call :func:`run_epoch`. ``step`` and ``optimizer`` are then unused (pass None).
    ``make_batch(train_x, rows)`` (optional) builds what ``step`` gets instead of the dense tensor of
    those rows (e.g. :func:`csr_to_sparse_batch`); the result needs ``shape[0]``.

    Under ``torch.distributed`` (see :func:`distributed_world`) each rank trains on rows
    ``rank::world`` of ``train_x`` with ``batch_size // world`` rows per step (every rank runs the
    same number of steps: the first ``n // world`` rows of each epoch's shuffle of its shard), and
    gradients are averaged before each step; the parameters start from rank 0's. ``epoch_fn``
    families are refused there.

    Returns (and stores as ``model.training_log_``) one dict per epoch with ``epoch`` (from 1),
    ``train_loss`` (mean per row), ``val_ndcg@100`` (None without validation), ``seconds`` (time
    of that epoch), plus ``extra_metrics()``'s entries. Sets ``model.best_epoch_``.
    ``progress(epoch, elapsed_s, info)`` gets the same numbers. A NaN/inf loss raises
    :class:`ModelFitError`. Deterministic on CPU for a given seed (seed torch first with
    :func:`seed_everything`).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    if validation is not None and validation[0].shape[0] == 0:
        validation = None  # no validation users: nothing to select on
    has_validation = validation is not None or validate is not None
    rng = np.random.default_rng(seed)
    rank, world = distributed_world()
    n = train_x.shape[0]
    if world > 1:
        if epoch_fn is not None:
            raise ValueError("distributed training (--ddp) supports the one-pass epoch loop only, not epoch_fn")
        if n < world or batch_size < world:
            raise ValueError(f"--ddp {world}: needs at least {world} training users and batch_size >= {world}")
        for t in module.state_dict().values():
            torch.distributed.broadcast(t, src=0)
        train_x = train_x[rank::world]
        n_local = n // world
        batch_size = batch_size // world
    else:
        n_local = n
    log: list[dict] = []
    model.training_log_ = log
    best_score, best_epoch, best_state, stale = -math.inf, None, None, 0
    bar = _progress_bar(epochs, show_progress)
    start = time.perf_counter()
    module.train()
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            if epoch_fn is not None:
                train_loss = float(epoch_fn(rng, epoch))
            else:
                train_loss = run_epoch(
                    module,
                    train_x,
                    step,
                    optimizer,
                    rng.permutation(train_x.shape[0])[:n_local],
                    batch_size,
                    device,
                    grad_clip,
                    epoch,
                    make_batch=make_batch,
                    world=world,
                )
            row = {"epoch": epoch, "train_loss": train_loss, VAL_KEY: None}
            if rank > 0:
                pass  # rank 0 validates; its value arrives below
            elif validate is not None:
                module.eval()
                with torch.no_grad():
                    row[VAL_KEY] = float(validate())
                module.train()
            elif validation is not None:
                row[VAL_KEY] = _validation_ndcg(model, module, validation)
            if world > 1 and has_validation:
                row[VAL_KEY] = _broadcast_float(row[VAL_KEY], device)
            if extra_metrics is not None:
                module.eval()
                with torch.no_grad():
                    row.update(extra_metrics())
                module.train()
            row["seconds"] = time.perf_counter() - t0
            log.append(row)
            logger.debug("epoch %d: %s", epoch, row)
            if progress is not None:
                progress(epoch, time.perf_counter() - start, {k: v for k, v in row.items() if k != "epoch"})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.4g}", ndcg=row[VAL_KEY])
            if not has_validation:
                continue
            if row[VAL_KEY] > best_score:
                best_score, best_epoch, stale = row[VAL_KEY], epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
                if patience is not None and stale >= patience:
                    logger.info("early stop at epoch %d (best %d: %.4f)", epoch, best_epoch, best_score)
                    break
    finally:
        if bar is not None:
            bar.close()
        module.eval()
    if best_state is not None and best_epoch != log[-1]["epoch"]:
        module.load_state_dict(best_state)
    model.best_epoch_ = best_epoch if best_epoch is not None else log[-1]["epoch"]
    return log


def run_epoch(
    module: torch.nn.Module,
    train_x: sp.csr_matrix | np.ndarray,
    step: Callable[[torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    order: np.ndarray,
    batch_size: int,
    device: torch.device | str | None,
    grad_clip: float | None,
    epoch: int,
    *,
    make_batch: Callable[[Any, np.ndarray], Any] | None = None,
    world: int = 1,
) -> float:
    """One pass over ``train_x`` in the row ``order``: mini-batches of ``step``'s loss; mean loss per row.

    ``make_batch(train_x, rows)`` replaces the dense batch; with ``world > 1`` gradients are
    averaged over the process group before each optimizer step.
    """
    total, seen = 0.0, 0
    for lo in range(0, len(order), batch_size):
        rows = np.sort(order[lo : lo + batch_size])  # sorted rows: faster CSR slicing, same batch
        batch = csr_to_torch_batch(train_x, device, rows) if make_batch is None else make_batch(train_x, rows)
        optimizer.zero_grad(set_to_none=True)
        loss = step(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ModelFitError(
                f"training diverged: loss is {value} at epoch {epoch}, batch starting at row {lo}; "
                "lower lr (or raise weight_decay) and refit"
            )
        loss.backward()
        if world > 1:
            _average_gradients(module, world)
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        optimizer.step()
        total += value * len(rows)
        seen += len(rows)
    return total / max(seen, 1)


def tanh_stack(dims: list[int], out_activation: bool = False) -> list[torch.nn.Module]:
    """``Linear`` layers through ``dims`` with tanh between them (and after the last if asked)."""
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(dims) - 2 or out_activation:
            layers.append(torch.nn.Tanh())
    return layers


def state_dict_to_numpy(module: torch.nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """Parameters and buffers of ``module`` as contiguous CPU numpy arrays, keys ``prefix + name``."""
    return {
        prefix + name: np.ascontiguousarray(t.detach().to("cpu").numpy()) for name, t in module.state_dict().items()
    }


def load_numpy_state(module: torch.nn.Module, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
    """Load the ``prefix``-ed entries of ``arrays`` into ``module`` (strict; shapes checked)."""
    own = module.state_dict()
    picked = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    missing = sorted(set(own) - set(picked))
    unexpected = sorted(set(picked) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"stored weights do not fit {type(module).__name__}: missing {missing}, unexpected "
            f"{unexpected} (prefix {prefix!r}); the model was saved with other parameters or code"
        )
    state = {}
    for name, target in own.items():
        arr = np.asarray(picked[name])
        if tuple(arr.shape) != tuple(target.shape):
            raise ValueError(
                f"stored weight {prefix + name!r} has shape {arr.shape}, the module expects {tuple(target.shape)}"
            )
        state[name] = torch.from_numpy(np.array(arr, copy=True)).to(target.dtype)
    module.load_state_dict(state)


class TorchLatentRecommender(LatentRecommender):
    """Shared body of the torch families whose network has ``encode(x) -> z`` and ``decode(z)``.

    Subclasses set ``allowed_losses`` and implement ``_build_module() -> nn.Module`` (from the
    hyperparameters and ``self.n_items_``; the module takes dense float histories and has
    ``encode``/``decode`` methods, ``forward`` may return what the family's loss needs) and
    ``_train(x, validation, progress)``. This class provides binarised input, batched
    ``_encode``/``_decode``/``_score`` under ``torch.no_grad``, ``score_kind`` from the loss, and
    registry state (``"net.*"`` weights plus ``"score_kind"``).

    Attributes set by fit / load: ``module_`` (the network, eval mode), ``device_``,
    ``score_kind_``, ``training_log_``, ``best_epoch_``.
    """

    #: Losses this family accepts (first = the usual one).
    allowed_losses: tuple[str, ...] = ("multinomial", "bce", "focal")
    #: Rows per inference batch (scoring densifies only this many rows at a time).
    inference_batch_size: int = 1000

    @property
    def score_kind(self) -> str:  # type: ignore[override]
        """ "sigmoid" or "softmax": how the postfilter turns scores into probabilities."""
        kind = getattr(self, "score_kind_", None)
        return kind if kind is not None else score_kind_for(self.loss)

    # ---- hooks ---------------------------------------------------------------------------
    def _build_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def _train(self, x: sp.csr_matrix, validation: Validation | None, progress: ProgressCallback | None) -> None:
        raise NotImplementedError

    def _check_params(self) -> None:
        """Validate hyperparameters at fit time (scikit-learn style: never in ``__init__``)."""
        check_loss(self.loss, self.allowed_losses)

    def _loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The reconstruction loss from ``loss``, ``focal_gamma`` and ``pos_weight`` (if the family has them)."""
        params: dict[str, float] = {}
        if self.loss == "focal":
            params["gamma"] = float(self.focal_gamma)
        pos_weight = float(getattr(self, "pos_weight", 1.0))
        if self.loss != "multinomial" and pos_weight != 1.0:
            params["pos_weight"] = pos_weight
        return get_loss(self.loss, **params)

    # ---- fitting -------------------------------------------------------------------------
    def _fit(self, train: Any, validation: Validation | None, progress: ProgressCallback | None) -> None:
        import_torch()
        self._check_params()
        self.device_ = resolve_device(self.device)
        seed_everything(self.seed)
        self.score_kind_ = score_kind_for(self.loss)
        self.module_ = self._build_module().to(self.device_)
        self._train(train.binary(), validation, progress)
        self.module_.eval()

    # ---- inference -----------------------------------------------------------------------
    @staticmethod
    def _binary(x: sp.csr_matrix) -> sp.csr_matrix:
        """Histories as 0/1 (models train on binarised data; play counts would shift the input)."""
        x = sp.csr_matrix(x, dtype=np.float32, copy=True)
        x.data[:] = 1.0
        return x

    def _predict(self, fn: Callable[[torch.Tensor], torch.Tensor], x: sp.csr_matrix | np.ndarray) -> np.ndarray:
        rows = rows_per_batch(max(x.shape[1], int(self.n_items_)), self.inference_batch_size)
        return predict_in_batches(fn, x, self.device_, batch_size=rows, module=self.module_)

    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        return self._predict(self.module_.encode, self._binary(x))

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return self._predict(self.module_.decode, z)

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return self._predict(lambda b: self.module_.decode(self.module_.encode(b)), self._binary(x))

    # ---- persistence ---------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {**state_dict_to_numpy(self.module_, "net."), "score_kind": score_kind_array(self.score_kind)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        import_torch()
        try:
            self.device_ = resolve_device(self.device)
        except ValueError as e:
            logger.warning("%s; loading on the CPU instead", e)
            self.device_ = torch.device("cpu")
        self.score_kind_ = score_kind_from_array(arrays["score_kind"]) if "score_kind" in arrays else None
        module = self._build_module()
        load_numpy_state(module, {k: v for k, v in arrays.items() if k != "score_kind"}, "net.")
        self.module_ = module.to(self.device_).eval()
