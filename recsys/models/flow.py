"""Flow: pooled item embeddings, Gaussianised by a Glow (seed 000's "flow").

A user is the mean of the embeddings of the items they listened to, ``u = mean_{i in x} E_i``
(shape (d,)); item scores are ``u @ E^T + b`` (a low-rank linear recommender, tied input/output
embeddings). A Glow ``f`` (ActNorm -> invertible 1x1 -> affine coupling, K steps) maps ``u`` to
``z = f(u)``, trained by maximum likelihood so that ``z ~ N(0, I)`` on training users::

    encode(x) = f(pool(x)) = z        decode(z) = f^-1(z) @ E^T + b        score(x) = decode(encode(x))

The latent space is therefore a standard normal: steering moves in ``z`` keep users in a region the
data fills, and distances are comparable across dimensions.

Training (one loop, Adam, early stopping on validation NDCG@100) minimises per batch of users::

    rec(logits(pool(dropout(x))), x)  +  flow_weight * NLL(u) / d

``rec`` is the multinomial (or BCE/focal) likelihood of *all* the user's items given the pooled
embedding of a random subset (each item kept with probability ``1 - dropout``; the mean is over the
kept items): the pooled mean must predict items it did not see. ``NLL(u)/d`` is the Glow's negative
log-likelihood of the full-history ``u`` in nats per dimension. The NLL reaches the embeddings only
through the flow, and a density of ``u`` grows without bound as the embedding cloud shrinks, so
``embedding_nll_grad=False`` (default) detaches ``u`` in that term: the flow then models the
embedding distribution that the recommendation loss chose, instead of pulling it towards zero.
Because the embeddings keep moving while the flow trains, a final ``flow_epochs`` of flow-only
maximum likelihood on the frozen embeddings (those of the best validation epoch) fits the flow to
the ``u`` that is kept, early-stopped on the validation users' NLL. That stage pools a fresh random
subset of each training history every epoch (each user keeps a share drawn from
U(``flow_subsample``, 1) of their items): on the default synthetic data the flow otherwise overfits
the 2,400 fixed training vectors (held-out NLL rises after ~10 epochs and held-out ``z`` get
per-dimension stds up to 1.6), while fold-in users, whose ``u`` pools only part of their history,
are what the model encodes in use.

Scores are computed straight from ``u`` (``logits(pool(x))``, the same function as
``decode(encode(x))`` up to float rounding of the flow's round trip) so standard recommendations
never depend on the flow's numerics.

References
----------
Kingma, D. P. and Dhariwal, P. "Glow: Generative Flow with Invertible 1x1 Convolutions." NeurIPS 2018.
Liang, D. et al. "Variational Autoencoders for Collaborative Filtering." WWW 2018 (multinomial loss).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .base import ModelFitError, ProgressCallback, Validation, as_csr, register
from .flow_layers import Glow, gaussianity
from .torch_utils import TorchLatentRecommender, csr_to_torch_batch, train_epochs

POOLINGS = ("mean", "sqrt")


class FlowNet(nn.Module):
    """Item embeddings + item bias + a Glow on the pooled user vector.

    ``pool(x)``: (batch, n_items) 0/1 -> (batch, d), the mean (``"mean"``) or the sum divided by
    sqrt(count) (``"sqrt"``) of the item embeddings; ``logits(u)`` -> (batch, n_items);
    ``encode(x) = flow(pool(x))``; ``decode(z) = logits(flow^-1(z))``; ``score(x) = logits(pool(x))``.
    """

    def __init__(self, n_items: int, dim: int, n_steps: int, hidden: int, *, pooling: str = "mean", seed: int = 0):
        super().__init__()
        self.pooling = pooling
        self.embeddings = nn.Parameter(torch.randn(n_items, dim) * dim**-0.5)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.flow = Glow(dim, n_steps, hidden, seed=seed)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        count = x.sum(dim=1, keepdim=True).clamp_min(1.0)
        norm = count if self.pooling == "mean" else count.sqrt()
        return (x @ self.embeddings) / norm

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        return u @ self.embeddings.T + self.item_bias

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow(self.pool(x))[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits(self.flow.inverse(z))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.pool(x))


def flow_nll_per_dim(flow: Glow, u: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of rows of ``u`` under the flow, in nats per dimension."""
    return -flow.log_prob(u).mean() / u.shape[1]


def fit_flow_ml(
    flow: Glow,
    histories: sp.csr_matrix,
    encoder: Callable[[torch.Tensor], torch.Tensor],
    *,
    subsample: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
    validation_codes: np.ndarray | None = None,
    patience: int | None = None,
    progress: ProgressCallback | None = None,
    epoch_offset: int = 0,
) -> list[dict]:
    """Maximum-likelihood training of ``flow`` alone on codes ``encoder(histories)`` (frozen encoder).

    With ``subsample < 1``, every epoch each history keeps a fresh random subset of its items (a
    share drawn per user from U(subsample, 1)) before it is encoded: the flow then also fits the
    codes of partial histories, the kind the model sees at fold-in (80 % of a held-out user's
    items, or a person's few picks), and with a new subset per epoch it overfits the training users
    less than on their fixed full-history codes.

    With ``validation_codes`` (n_val, d) the NLL of those codes is logged every epoch as
    ``val_flow_nll``; the flow of the best epoch is kept and, with ``patience``, training stops after
    that many epochs without improvement. Returns one dict per epoch (``epoch`` counts from
    ``epoch_offset + 1``; ``train_loss`` = ``flow_nll`` = mean NLL in nats per dimension).
    Raises :class:`ModelFitError` on a NaN/inf loss.
    """
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    val = None if validation_codes is None else torch.as_tensor(validation_codes, dtype=torch.float32, device=device)
    log: list[dict] = []
    best, best_state, stale = math.inf, None, 0
    start = time.perf_counter()
    for epoch in range(epoch_offset + 1, epoch_offset + epochs + 1):
        t0 = time.perf_counter()
        flow.train()
        total = 0.0
        order = rng.permutation(histories.shape[0])
        for lo in range(0, len(order), batch_size):
            batch = csr_to_torch_batch(histories, device, np.sort(order[lo : lo + batch_size]))
            with torch.no_grad():
                codes = encoder(_random_subsets(batch, subsample) if subsample < 1 else batch)
            loss = flow_nll_per_dim(flow, codes)
            if not torch.isfinite(loss):
                raise ModelFitError(
                    f"flow training diverged: NLL is {float(loss)} at epoch {epoch}; lower lr and refit"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * batch.shape[0]
        flow.eval()
        row = {"epoch": epoch, "stage": "flow", "train_loss": total / max(len(order), 1)}
        row["flow_nll"] = row["train_loss"]
        if val is not None:
            with torch.no_grad():
                row["val_flow_nll"] = float(flow_nll_per_dim(flow, val))
        row["seconds"] = time.perf_counter() - t0
        log.append(row)
        if progress is not None:
            progress(epoch, time.perf_counter() - start, {k: v for k, v in row.items() if k not in ("epoch", "stage")})
        if val is None:
            continue
        if row["val_flow_nll"] < best:
            best, best_state, stale = row["val_flow_nll"], copy.deepcopy(flow.state_dict()), 0
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    if best_state is not None:
        flow.load_state_dict(best_state)
    flow.eval()
    return log


def _random_subsets(batch: torch.Tensor, min_share: float) -> torch.Tensor:
    """Each row keeps each of its items with a probability drawn per row from U(min_share, 1)."""
    share = min_share + (1.0 - min_share) * torch.rand(batch.shape[0], 1, device=batch.device)
    return batch * (torch.rand_like(batch) < share)


def offset_progress(progress: ProgressCallback | None, offset: int) -> ProgressCallback | None:
    """A progress callback that numbers epochs after ``offset`` (a later training stage)."""
    if progress is None or offset == 0:
        return progress
    return lambda epoch, elapsed, info: progress(epoch + offset, elapsed, info)


@register("flow")
class FlowRecommender(TorchLatentRecommender):
    """Pooled item embeddings with a Glow latent space (seed 000's flow).

    Parameters
    ----------
    embedding_dim : int
        d, the size of item embeddings, of ``u`` and of the latent ``z`` (>= 2).
    n_flow_steps : int
        K, Glow steps [ActNorm -> invertible 1x1 -> affine coupling].
    coupling_hidden : int
        Hidden width of the coupling MLPs.
    flow_weight : float
        lambda, weight of the flow's NLL (nats per dimension) against the recommendation loss.
    embedding_nll_grad : bool
        Let the NLL term train the embeddings too (False: it trains only the flow; see module doc).
    flow_epochs : int
        Epochs of flow-only maximum likelihood on frozen embeddings after the joint training
        (early-stopped on the validation users' NLL when ``fit`` gets a validation pair).
    flow_lr : float
        Adam learning rate of the flow-only stage.
    flow_subsample : float
        In the flow-only stage each history keeps a random share in [flow_subsample, 1] of its items
        (fresh per epoch) before pooling; < 1 fits the flow to partial histories like fold-in users'.
    pooling : {"mean", "sqrt"}
        How item embeddings are pooled into ``u``: mean, or sum / sqrt(count).
    dropout : float
        Share of a user's items hidden from the pooled input during training (0 <= dropout < 1).
    loss : {"multinomial", "bce", "focal"}
        Recommendation loss; "multinomial" gives ``score_kind`` "softmax", the others "sigmoid".
    focal_gamma : float
        gamma of the focal loss.
    pos_weight : float
        Weight of the user's own items in the sigmoid losses (bce, focal); unused by multinomial.
    epochs, batch_size, lr, weight_decay : training schedule (Adam; weight decay on the embeddings).
    patience : int or None
        Early stopping on validation NDCG@100 when ``fit`` gets a validation pair.
    seed : int
        Seeds initialisation, dropout masks and batch order.
    device : str
        "cpu" or "cuda".
    show_progress : bool
        tqdm bar over epochs.

    Attributes
    ----------
    module_ : FlowNet
        ``embeddings`` (n_items, d), ``item_bias`` (n_items,), ``flow`` (Glow).
    training_log_ : list of dict
        Per epoch: epoch, stage ("joint" or "flow"), train_loss, val_ndcg@100, seconds; joint rows
        also carry rec_loss and flow_nll (nats per dimension).
    latent_stats_ : dict
        :func:`~recsys.models.flow_layers.gaussianity` of ``z`` on the training users.

    Examples
    --------
    >>> from recsys.data.synthetic import generate_synthetic
    >>> ds = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    >>> model = FlowRecommender(embedding_dim=16, epochs=5).fit(ds)
    >>> z = model.encode(ds.interactions)          # (300, 16), ~ N(0, I)
    >>> scores = model.decode(z)                   # == model.score(ds.interactions)
    """

    allowed_losses = ("multinomial", "bce", "focal")

    def __init__(
        self,
        *,
        embedding_dim: int = 64,
        n_flow_steps: int = 4,
        coupling_hidden: int = 128,
        flow_weight: float = 0.1,
        embedding_nll_grad: bool = False,
        flow_epochs: int = 40,
        flow_lr: float = 1e-3,
        flow_subsample: float = 0.8,
        pooling: str = "mean",
        dropout: float = 0.5,
        loss: str = "multinomial",
        focal_gamma: float = 2.0,
        pos_weight: float = 50.0,
        epochs: int = 40,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.embedding_dim = embedding_dim
        self.n_flow_steps = n_flow_steps
        self.coupling_hidden = coupling_hidden
        self.flow_weight = flow_weight
        self.embedding_nll_grad = embedding_nll_grad
        self.flow_epochs = flow_epochs
        self.flow_lr = flow_lr
        self.flow_subsample = flow_subsample
        self.pooling = pooling
        self.dropout = dropout
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.pos_weight = pos_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    @property
    def latent_dim(self) -> int:
        return int(self.embedding_dim)

    def _check_params(self) -> None:
        super()._check_params()
        if int(self.embedding_dim) < 2:
            raise ValueError(f"embedding_dim must be >= 2 (the coupling splits it in halves), got {self.embedding_dim}")
        for name in ("n_flow_steps", "coupling_hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.flow_epochs) < 0:
            raise ValueError(f"flow_epochs must be >= 0, got {self.flow_epochs}")
        if not 0 < self.flow_subsample <= 1:
            raise ValueError(f"flow_subsample must be in (0, 1], got {self.flow_subsample}")
        if not self.flow_weight >= 0:
            raise ValueError(f"flow_weight must be >= 0, got {self.flow_weight}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {self.pooling!r}")

    def _build_module(self) -> FlowNet:
        return FlowNet(
            self.n_items_,
            int(self.embedding_dim),
            int(self.n_flow_steps),
            int(self.coupling_hidden),
            pooling=self.pooling,
            seed=int(self.seed),
        )

    # ---- training ------------------------------------------------------------------------
    def _train(self, x: sp.csr_matrix, validation: Validation | None, progress: ProgressCallback | None) -> None:
        net = self.module_
        rec_loss = self._loss_fn()
        keep = 1.0 - float(self.dropout)
        parts: dict[str, float] = {"rec": 0.0, "nll": 0.0, "rows": 0}

        def step(batch: torch.Tensor) -> torch.Tensor:
            corrupted = batch * (torch.rand_like(batch) < keep) if self.dropout > 0 else batch
            rec = rec_loss(net.logits(net.pool(corrupted)), batch)
            u = net.pool(batch)
            nll = flow_nll_per_dim(net.flow, u if self.embedding_nll_grad else u.detach())
            n = batch.shape[0]
            parts["rec"] += float(rec.detach()) * n
            parts["nll"] += float(nll.detach()) * n
            parts["rows"] += n
            return rec + float(self.flow_weight) * nll

        def epoch_parts() -> dict[str, float]:
            rows = max(parts["rows"], 1)
            out = {"rec_loss": parts["rec"] / rows, "flow_nll": parts["nll"] / rows}
            parts.update(rec=0.0, nll=0.0, rows=0)
            return out

        opt = torch.optim.Adam(
            [
                {"params": [net.embeddings], "weight_decay": float(self.weight_decay)},
                {"params": [net.item_bias, *net.flow.parameters()], "weight_decay": 0.0},
            ],
            lr=float(self.lr),
        )
        log = train_epochs(
            self,
            net,
            x,
            step,
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=int(self.seed),
            device=self.device_,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            extra_metrics=epoch_parts,
        )
        best_epoch = self.best_epoch_
        for row in log:
            row["stage"] = "joint"
        log.extend(self._polish_flow(x, validation, len(log), progress))
        self.training_log_, self.best_epoch_ = log, best_epoch
        self.latent_stats_ = gaussianity(self._encode(x))

    def _polish_flow(
        self, x: sp.csr_matrix, validation: Validation | None, offset: int, progress: ProgressCallback | None
    ) -> list[dict]:
        """Flow-only maximum likelihood on the pooled vectors of the kept embeddings."""
        if int(self.flow_epochs) == 0:
            return []
        net = self.module_
        val_codes = None if validation is None else self._predict(net.pool, self._binary(validation[0]))
        return fit_flow_ml(
            net.flow,
            x,
            net.pool,
            subsample=float(self.flow_subsample),
            epochs=int(self.flow_epochs),
            batch_size=int(self.batch_size),
            lr=float(self.flow_lr),
            seed=int(self.seed) + 1,
            device=self.device_,
            validation_codes=val_codes,
            patience=self.patience,
            progress=progress,
            epoch_offset=offset,
        )

    # ---- inference -----------------------------------------------------------------------
    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return self._predict(self.module_.score, self._binary(x))

    def user_vectors(self, histories: sp.csr_matrix) -> np.ndarray:
        """The pooled embeddings ``u`` (n_users, d), before the flow."""
        self._check_fitted()
        return self._predict(self.module_.pool, self._binary(as_csr(histories, self.n_items_)))
