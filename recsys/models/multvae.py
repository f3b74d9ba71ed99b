"""Mult-VAE^PR (Liang et al. 2018): a variational autoencoder with a multinomial likelihood.

Network (``VAENet``)::

    x (n_items, 0/1) -> L2-normalise -> dropout (training only)
      -> [Linear -> tanh] per hidden dim -> Linear -> (mu, logvar) of q(z | x)   (latent_dim each)
      z = mu + eps * exp(logvar / 2) while training, z = mu at inference
      -> [Linear -> tanh] per hidden dim (mirrored) -> Linear -> item logits (n_items)

Loss per user: ``reconstruction(logits, x) + beta * KL(q(z | x) || N(0, I))`` with beta annealed
linearly from 0 to ``beta_max`` over ``total_anneal_steps`` optimizer steps (the "partial
regularisation" of the paper's VAE^PR). The paper's defaults are kept: 600-unit hidden layer,
200-d latent, dropout 0.5, Adam lr 1e-3, beta_max 0.2, multinomial likelihood. Two changes fit
small data: batches of 128 rather than 500 (a few thousand users give too few steps per epoch), and
``total_anneal_steps=None`` anneals over the planned run (epochs x batches) rather than a fixed
200k steps; the best epoch on validation NDCG@100 is kept. ``epochs=20`` keeps the demo's fit on
the synthetic data near 20 s on one core; Last.fm 2K wants ~50 (set ``epochs=100``: early stopping
ends it).

``encode`` returns the posterior mean mu (the latent space steering moves through); ``decode``
returns item logits.

**Large catalogues.** ``loss="sampled_softmax"`` trains the same network with the multinomial
likelihood's partition function estimated from the user's own items plus ``n_negatives`` items per
batch drawn from the training popularity q (``q_j`` proportional to ``count_j ** sample_power``),
log-Q corrected (:func:`~recsys.models.losses.sampled_softmax_loss`); the output layer is then
evaluated for batch x (n_negatives) + interactions logits, not batch x items. ``sparse_input``
(default: on with the sampled loss or from 20k items) feeds the encoder's first layer the batch's
non-zeros only (``torch.sparse.mm``; normalisation and dropout act on the stored values, which is
what they do to a dense row), in training and in ``encode``/``score``. Both leave the network, its
weights' names and the registry files unchanged: a sampled model loads, encodes and decodes like
any other. Scores are softmax logits either way.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .base import register
from .losses import kl_normal, sampled_softmax_loss
from .torch_utils import SparseBatch, TorchLatentRecommender, csr_to_sparse_batch, tanh_stack, train_epochs

#: From this many items the encoder reads sparse batches by default (``sparse_input=None``).
SPARSE_INPUT_FROM_ITEMS = 20_000


class VAENet(nn.Module):
    """Encoder to (mu, logvar), decoder from z to item logits; tanh hidden layers."""

    def __init__(self, n_items: int, latent_dim: int, hidden_dims: tuple[int, ...], dropout: float):
        super().__init__()
        self.latent_dim = latent_dim
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(*tanh_stack([n_items, *hidden_dims, 2 * latent_dim]))
        self.decoder = nn.Sequential(*tanh_stack([latent_dim, *reversed(hidden_dims), n_items]))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=0.001)

    def posterior(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each (batch, latent_dim); ``x`` dense or a :class:`SparseBatch`."""
        if isinstance(x, SparseBatch):
            h = self.encoder[1:](self._sparse_first_layer(x))
        else:
            h = self.encoder(self.input_dropout(nn.functional.normalize(x, dim=-1)))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def _sparse_first_layer(
        self, x: SparseBatch, columns: torch.Tensor | None = None, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The first encoder layer on the non-zeros: L2 row norm and dropout on the values, sparse mm.

        ``columns``/``weight`` (training with row updates): the batch's items renumbered 0..m-1 and
        the first layer's weight columns of those m items, so the gradient is (hidden, m), not
        (hidden, n_items).
        """
        sq = torch.zeros(x.shape[0], dtype=x.values.dtype, device=x.values.device).index_add(0, x.rows, x.values**2)
        values = self.input_dropout(x.values / sq.sqrt().clamp_min(1e-12)[x.rows])
        first = self.encoder[0]
        if weight is None:
            return torch.sparse.mm(x.with_values(values), first.weight.T) + first.bias
        xs = torch.sparse_coo_tensor(
            torch.stack([x.rows, columns]), values, (x.shape[0], weight.shape[1]), check_invariants=False
        )
        return torch.sparse.mm(xs, weight.T) + first.bias

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean mu (batch, latent_dim): the latent point of a history."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def sample_z(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, mu, logvar); z is sampled in training mode, z = mu in eval mode."""
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return z, mu, logvar

    def forward(self, x: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar); z is sampled in training mode, z = mu in eval mode."""
        z, mu, logvar = self.sample_z(x)
        return self.decoder(z), mu, logvar


@register("multvae")
class MultVAE(TorchLatentRecommender):
    """Variational autoencoder for collaborative filtering (Mult-VAE^PR).

    Parameters
    ----------
    latent_dim : int
        Size of z (200 in the paper).
    hidden_dim : int
        Units of the hidden layer on each side (600 in the paper).
    hidden_layers : int
        Hidden layers per side (1 in the paper).
    dropout : float
        Input dropout during training (0.5).
    loss : {"multinomial", "bce", "focal", "sampled_softmax"}
        Likelihood; sets ``score_kind`` ("softmax" for the multinomial ones, else "sigmoid").
        "sampled_softmax" is the multinomial likelihood with ``n_negatives`` popularity-sampled,
        log-Q corrected negatives per batch (for catalogues too large for a full softmax).
    n_negatives : int
        Negatives per batch of the sampled softmax (shared by the batch's users). With at least as
        many as there are items, every item is used once and the loss is the full softmax.
    sample_power : float
        q_j proportional to (training count of j) ** sample_power (1 = popularity, 0 = uniform).
    sparse_input : bool or None
        Feed the encoder the non-zeros only (``torch.sparse.mm``); None = on for the sampled
        softmax or from 20k items.
    row_updates : bool or None
        With the sampled softmax: the two item-wide matrices (the encoder's first layer, the output
        layer) get gradients and Adam updates only in the rows of the batch's items and negatives
        ("lazy" Adam: an untouched row keeps its weights and moments), so a step costs O(touched
        items x hidden) instead of O(n_items x hidden); the other layers use Adam as usual. None =
        on for the sampled softmax from 20k items, on one process (``--ddp`` averages full gradients).
    focal_gamma : float
        gamma of the focal loss.
    pos_weight : float
        Weight of the user's own items in the sigmoid losses (bce, focal, mse); unused by multinomial.
    beta_max : float
        Cap of the KL weight (0.2).
    total_anneal_steps : int or None
        Optimizer steps over which beta rises from 0 to ``beta_max``; None = the whole planned run.
    epochs, batch_size, lr, weight_decay : training schedule (Adam).
    patience : int or None
        Early stopping on validation NDCG@100 (best epoch restored).
    seed, device, show_progress : see :class:`~recsys.models.mlp.MLPRecommender`.

    Attributes
    ----------
    module_ : VAENet
    training_log_ : list of dict
        Per epoch: epoch, train_loss (reconstruction + beta KL), val_ndcg@100, seconds, beta, kl.

    References
    ----------
    Liang, D., Krishnan, R. G., Hoffman, M. D., Jebara, T. "Variational Autoencoders for
    Collaborative Filtering." WWW 2018.
    """

    allowed_losses = ("multinomial", "bce", "focal", "sampled_softmax")
    latent_dim = None  # a parameter here (shadows the base-class property)

    def __init__(
        self,
        *,
        latent_dim: int = 200,
        hidden_dim: int = 600,
        hidden_layers: int = 1,
        dropout: float = 0.5,
        loss: str = "multinomial",
        n_negatives: int = 2000,
        sample_power: float = 1.0,
        sparse_input: bool | None = None,
        row_updates: bool | None = None,
        focal_gamma: float = 2.0,
        pos_weight: float = 50.0,
        beta_max: float = 0.2,
        total_anneal_steps: int | None = None,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.loss = loss
        self.n_negatives = n_negatives
        self.sample_power = sample_power
        self.sparse_input = sparse_input
        self.row_updates = row_updates
        self.focal_gamma = focal_gamma
        self.pos_weight = pos_weight
        self.beta_max = beta_max
        self.total_anneal_steps = total_anneal_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    def _check_params(self) -> None:
        super()._check_params()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.beta_max >= 0:
            raise ValueError(f"beta_max must be >= 0, got {self.beta_max}")
        if int(self.hidden_layers) < 0:
            raise ValueError(f"hidden_layers must be >= 0, got {self.hidden_layers}")
        if self.total_anneal_steps is not None and int(self.total_anneal_steps) < 1:
            raise ValueError(f"total_anneal_steps must be >= 1 or None, got {self.total_anneal_steps}")
        if int(self.n_negatives) < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives}")
        if not self.sample_power >= 0:
            raise ValueError(f"sample_power must be >= 0, got {self.sample_power}")

    def _use_row_updates(self) -> bool:
        from .torch_utils import distributed_world

        if self.loss != "sampled_softmax" or distributed_world()[1] > 1:
            return False
        if self.row_updates is not None:
            return bool(self.row_updates)
        return int(self.n_items_) >= SPARSE_INPUT_FROM_ITEMS

    def _use_sparse_input(self) -> bool:
        if self.sparse_input is not None:
            return bool(self.sparse_input)
        return self.loss == "sampled_softmax" or int(self.n_items_) >= SPARSE_INPUT_FROM_ITEMS

    def _loss_fn(self):
        if self.loss == "sampled_softmax":
            return None  # computed in _train from the last hidden layer (sampled_softmax_loss)
        return super()._loss_fn()

    # ---- inference: sparse batches for wide catalogues ----------------------------------------
    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        if not self._use_sparse_input():
            return super()._encode(x)
        return self._predict_sparse(self.module_.encode, x)

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        if not self._use_sparse_input():
            return super()._score(x)
        return self._predict_sparse(lambda b: self.module_.decode(self.module_.encode(b)), x)

    def _predict_sparse(self, fn, x: sp.csr_matrix) -> np.ndarray:
        """``fn`` over :class:`SparseBatch` row batches of the binarised ``x``, eval mode, no grad."""
        from .torch_utils import rows_per_batch

        x = self._binary(x)
        rows = rows_per_batch(self.n_items_, self.inference_batch_size)
        net = self.module_
        was_training = net.training
        net.eval()
        outs = []
        try:
            with torch.no_grad():
                for lo in range(0, x.shape[0], rows):
                    out = fn(csr_to_sparse_batch(x[lo : lo + rows], self.device_))
                    outs.append(out.detach().to("cpu", torch.float32).numpy())
        finally:
            if was_training:
                net.train()
        if not outs:
            raise ValueError("no rows to predict: got an empty batch of histories")
        return np.concatenate(outs, axis=0)

    def _build_module(self) -> VAENet:
        hidden = (int(self.hidden_dim),) * int(self.hidden_layers)
        return VAENet(self.n_items_, int(self.latent_dim), hidden, float(self.dropout))

    def _negative_sampler(self, x: sp.csr_matrix):
        """``draw(batch) -> (negatives, log_expected, accidental)`` for the sampled softmax.

        q_j ~ count_j ** sample_power over the training rows (+1 so every item can be drawn); with
        ``n_negatives >= n_items`` every item is taken once and the correction is 0 (full softmax).
        """
        from .torch_utils import distributed_world

        n_items = x.shape[1]
        k = int(self.n_negatives)
        rng = np.random.default_rng([int(self.seed), 1 + distributed_world()[0]])
        if k >= n_items:
            all_items = torch.arange(n_items, device=self.device_)
            zeros = torch.zeros(n_items, device=self.device_)
        else:
            counts = np.asarray(x.getnnz(axis=0), dtype=np.float64) + 1.0
            q = counts ** float(self.sample_power)
            q /= q.sum()
            cdf = np.cumsum(q)
            log_expected_all = np.log(k * q).astype(np.float32)

        def draw(batch: SparseBatch):
            if k >= n_items:
                neg_np, negs, log_exp = np.arange(n_items), all_items, zeros
            else:
                neg_np = np.minimum(np.searchsorted(cdf, rng.random(k) * cdf[-1]), n_items - 1)
                negs = torch.from_numpy(neg_np).to(self.device_)
                log_exp = torch.from_numpy(log_expected_all[neg_np]).to(self.device_)
            # accidental hits: (row, negative) pairs that are one of the row's own items
            csr = batch.csr
            keys = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr)) * n_items + csr.indices
            query = (np.arange(csr.shape[0], dtype=np.int64)[:, None] * n_items + neg_np[None, :]).ravel()
            pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
            hit = (keys[pos] == query) if len(keys) else np.zeros(len(query), bool)
            accidental = torch.from_numpy(hit.reshape(csr.shape[0], len(neg_np))).to(self.device_)
            return negs, log_exp, accidental

        return draw

    def _train(self, x, validation, progress) -> None:
        recon = self._loss_fn()
        sparse = self._use_sparse_input()
        sampled = self.loss == "sampled_softmax"
        draw = self._negative_sampler(x) if sampled else None
        net = self.module_
        rowwise = sampled and self._use_row_updates()
        if rowwise:
            opt = _RowAdam(net, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        anneal = self.total_anneal_steps
        if anneal is None:
            anneal = int(self.epochs) * math.ceil(x.shape[0] / int(self.batch_size))
        state = {"step": 0, "beta": 0.0, "kl_sum": 0.0, "rows": 0}

        def reconstruction(batch: torch.Tensor | SparseBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if not sampled:
                logits, mu, logvar = net(batch)
                return recon(logits, batch.dense() if sparse else batch), mu, logvar
            negs, log_exp, accidental = draw(batch)
            if rowwise:
                return opt.sampled_loss(batch, negs, log_exp, accidental)
            z, mu, logvar = net.sample_z(batch)
            hidden = net.decoder[:-1](z)
            out = net.decoder[-1]
            loss = sampled_softmax_loss(
                hidden, out.weight, out.bias, batch.rows, batch.cols, batch.values, negs, log_exp, accidental
            )
            return loss, mu, logvar

        def step(batch: torch.Tensor | SparseBatch) -> torch.Tensor:
            beta = min(self.beta_max, self.beta_max * state["step"] / anneal)
            rec, mu, logvar = reconstruction(batch)
            kl = kl_normal(mu, logvar)
            state.update(step=state["step"] + 1, beta=beta)
            state["kl_sum"] += float(kl.detach()) * batch.shape[0]
            state["rows"] += batch.shape[0]
            return rec + beta * kl

        def epoch_stats() -> dict[str, float]:
            out = {"beta": state["beta"], "kl": state["kl_sum"] / max(state["rows"], 1)}
            state.update(kl_sum=0.0, rows=0)
            return out

        train_epochs(
            self,
            net,
            x,
            step,
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=self.seed,
            device=self.device_,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            extra_metrics=epoch_stats,
            make_batch=(lambda m, rows: csr_to_sparse_batch(m, self.device_, rows)) if sparse else None,
        )


class _RowAdam:
    """Adam for a VAENet whose item-wide matrices are updated only in the rows a step touches.

    ``sampled_loss(batch, negatives, ...)`` runs the forward pass on leaf copies of the touched
    columns of ``encoder[0].weight`` (the batch's items) and rows of ``decoder[-1]`` (items and
    negatives) and keeps them; ``step()`` applies Adam to those rows with per-row moments (bias
    correction by the global step, as TensorFlow's LazyAdam) and plain ``torch.optim.Adam`` to every
    other parameter. Same interface as an optimizer for :func:`train_epochs` (``zero_grad``, ``step``).
    """

    def __init__(self, net: VAENet, *, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.net = net
        self.enc_w, self.dec_w, self.dec_b = net.encoder[0].weight, net.decoder[-1].weight, net.decoder[-1].bias
        big = {id(self.enc_w), id(self.dec_w), id(self.dec_b)}
        self.dense = torch.optim.Adam(
            [p for p in net.parameters() if id(p) not in big], lr=lr, weight_decay=weight_decay
        )
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), betas, eps
        self.moments = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for p in (self.enc_w, self.dec_w, self.dec_b)}
        self.t = 0
        self.touched: list[tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]] = []

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none=set_to_none)
        self.touched = []

    def sampled_loss(self, batch: SparseBatch, negatives, log_expected, accidental):
        """(sampled softmax, mu, logvar) through leaf copies of the touched item rows."""
        net = self.net
        enc_items, enc_cols = torch.unique(batch.cols, return_inverse=True)
        enc_sub = self.enc_w.detach().index_select(1, enc_items).requires_grad_()
        h = net.encoder[1:](net._sparse_first_layer(batch, enc_cols, enc_sub))
        mu, logvar = h[:, : net.latent_dim], h[:, net.latent_dim :]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        hidden = net.decoder[:-1](z)
        dec_items, where = torch.unique(torch.cat([batch.cols, negatives]), return_inverse=True)
        w_sub = self.dec_w.detach().index_select(0, dec_items).requires_grad_()
        b_sub = self.dec_b.detach().index_select(0, dec_items).requires_grad_()
        nnz = batch.cols.shape[0]
        loss = sampled_softmax_loss(
            hidden, w_sub, b_sub, batch.rows, where[:nnz], batch.values, where[nnz:], log_expected, accidental
        )
        self.touched = [
            (self.enc_w, 1, enc_items, enc_sub),
            (self.dec_w, 0, dec_items, w_sub),
            (self.dec_b, 0, dec_items, b_sub),
        ]
        return loss, mu, logvar

    @torch.no_grad()
    def step(self) -> None:
        self.dense.step()
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for param, dim, idx, leaf in self.touched:
            if leaf.grad is None:
                continue
            g = leaf.grad
            if self.weight_decay:
                g = g + self.weight_decay * leaf.detach()
            m_all, v_all = self.moments[id(param)]
            m = m_all.index_select(dim, idx).mul_(b1).add_(g, alpha=1 - b1)
            v = v_all.index_select(dim, idx).mul_(b2).addcmul_(g, g, value=1 - b2)
            m_all.index_copy_(dim, idx, m)
            v_all.index_copy_(dim, idx, v)
            update = (m / c1) / ((v / c2).sqrt_().add_(self.eps))
            param.index_copy_(dim, idx, leaf.detach() - self.lr * update)
        self.touched = []
