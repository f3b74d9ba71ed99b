"""RecVAE (Shenbin et al. 2020): Mult-VAE with a stronger encoder, a composite prior and alternating training.

Network (``RecVAENet``)::

    x (n_items, 0/1) -> L2-normalise -> dropout (encoder phase only)
      -> 5 dense blocks h_i = LayerNorm(swish(W_i h_{i-1} + sum_{j<i} h_j))   (hidden_dim each)
      -> Linear -> (mu, logvar) of q(z | x)                                     (latent_dim each)
      z = mu + eps * exp(logvar / 2) while training, z = mu at inference
      -> one Linear layer -> item logits (n_items)

What differs from Mult-VAE, and why it helps (the paper's ablation on ML-20M):

* **Composite prior** ``p(z | x) = w_0 N(0, I) + w_1 q_old(z | x) + w_2 N(0, e^10 I)``, where
  ``q_old`` is the encoder as it was after the previous training cycle (frozen). The KL term pulls the
  posterior towards its own recent past instead of only towards N(0, I): updates stay stable with a
  stronger KL weight. The prior exists only while training; the registry stores the encoder and the
  decoder, nothing more.
* **KL weight scaled by history length**: ``gamma * |x_u|`` per user (``gamma`` 0.005), so a long
  history is regularised more than a short one, instead of one annealed beta for everyone. Setting
  ``gamma=None`` uses a fixed ``beta`` instead.
* **Alternating updates**: each training cycle runs ``encoder_epochs`` passes that update the encoder
  only (input dropout on), refreshes ``q_old``, then ``decoder_epochs`` passes that update the decoder
  only (no dropout: the decoder learns from the encoder it will meet at inference). One cycle is one
  "epoch" in ``training_log_``; validation and early stopping run once per cycle.

Defaults are the paper's (hidden 600, latent 200, gamma 0.005, dropout 0.5, Adam lr 5e-4, batch 500,
3 encoder passes per decoder pass, mixture weights 3/20, 3/4, 1/10), with early stopping on
validation NDCG@100 instead of a fixed 50 cycles. ``encode`` returns the posterior mean (the latent
space steering moves through); ``decode`` returns item logits (softmax scores).

Reference: Shenbin, I., Alekseev, A., Tutubalina, E., Malykh, V., Nikolenko, S. I. "RecVAE: a New
Variational Autoencoder for Top-N Recommendations with Implicit Feedback." WSDM 2020.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import register
from .torch_utils import TorchLatentRecommender, run_epoch, train_epochs

#: log(2 pi), for the Gaussian log densities.
_LOG_2PI = math.log(2 * math.pi)
#: log-variance of the prior's wide component (the paper's "uniform-like" Gaussian).
WIDE_LOGVAR = 10.0


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (same shape as z)."""
    return -0.5 * (logvar + _LOG_2PI + (z - mu).pow(2) / logvar.exp())


class RecVAEEncoder(nn.Module):
    """Densely connected swish/LayerNorm blocks to (mu, logvar); input L2-normalised, optional dropout."""

    def __init__(self, n_items: int, hidden_dim: int, latent_dim: int, blocks: int = 5, ln_eps: float = 0.1):
        super().__init__()
        dims = [n_items, *([hidden_dim] * (blocks - 1))]
        self.layers = nn.ModuleList(nn.Linear(d, hidden_dim) for d in dims)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_dim, eps=ln_eps) for _ in range(blocks))
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x: torch.Tensor, dropout: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.normalize(x, dim=-1)
        if dropout > 0:
            h = F.dropout(h, p=dropout, training=True)
        skip: torch.Tensor | int = 0
        for layer, norm in zip(self.layers, self.norms, strict=True):
            h = norm(F.silu(layer(h) + skip))
            skip = skip + h
        return self.mu(h), self.logvar(h)


class RecVAENet(nn.Module):
    """Encoder (posterior) and a linear decoder; ``encode``/``decode`` for the latent-space API."""

    def __init__(self, n_items: int, hidden_dim: int, latent_dim: int):
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, hidden_dim, latent_dim)
        self.decoder = nn.Linear(latent_dim, n_items)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (batch, latent_dim): the latent point of a history."""
        return self.encoder(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class CompositePrior(nn.Module):
    """``log p(z | x)`` of the mixture N(0, I), q_old(z | x) and N(0, e^WIDE_LOGVAR I), per dimension."""

    def __init__(self, encoder: RecVAEEncoder, weights: tuple[float, float, float]):
        super().__init__()
        self.old = copy.deepcopy(encoder).requires_grad_(False)
        self.register_buffer("log_weights", torch.log(torch.tensor(weights, dtype=torch.float32)))

    def refresh(self, encoder: RecVAEEncoder) -> None:
        """Make q_old the encoder's current state (end of an encoder phase)."""
        self.old.load_state_dict(encoder.state_dict())

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            old_mu, old_logvar = self.old(x)
        zeros = torch.zeros_like(z)
        parts = torch.stack(
            [
                log_normal(z, zeros, zeros),
                log_normal(z, old_mu, old_logvar),
                log_normal(z, zeros, torch.full_like(z, WIDE_LOGVAR)),
            ],
            dim=-1,
        )
        return torch.logsumexp(parts + self.log_weights, dim=-1)


@register("recvae")
class RecVAE(TorchLatentRecommender):
    """RecVAE: composite prior, history-scaled KL weight, alternating encoder/decoder updates.

    Parameters
    ----------
    latent_dim, hidden_dim : int
        Size of z (200) and of each of the encoder's five blocks (600).
    dropout : float
        Input dropout during the encoder phase (0.5).
    gamma : float or None
        KL weight per history item (0.005): user u's KL term is weighted ``gamma * |x_u|``.
        None uses the fixed ``beta``.
    beta : float
        KL weight when ``gamma`` is None.
    prior_weights : tuple of 3 floats
        Mixture weights of N(0, I), q_old and the wide Gaussian (3/20, 3/4, 1/10).
    encoder_epochs, decoder_epochs : int
        Passes per training cycle for each phase (3 and 1).
    epochs : int
        Cap on training cycles; early stopping on validation NDCG@100 usually ends sooner.
    batch_size, lr, weight_decay : Adam schedule (500, 5e-4, 0); one optimizer per phase.
    patience : int or None
        Cycles without a better validation NDCG@100 before stopping (best cycle restored).
    seed, device, show_progress : see :class:`~recsys.models.mlp.MLPRecommender`.

    Attributes
    ----------
    module_ : RecVAENet
    training_log_ : list of dict
        Per cycle: epoch, train_loss (encoder phase: -log-likelihood + weighted KL, per user),
        val_ndcg@100, seconds, kl.
    """

    allowed_losses = ("multinomial",)
    latent_dim = None  # a parameter here (shadows the base-class property)

    def __init__(
        self,
        *,
        latent_dim: int = 200,
        hidden_dim: int = 600,
        dropout: float = 0.5,
        gamma: float | None = 0.005,
        beta: float = 0.2,
        prior_weights: tuple[float, float, float] = (0.15, 0.75, 0.1),
        encoder_epochs: int = 3,
        decoder_epochs: int = 1,
        epochs: int = 30,
        batch_size: int = 500,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        loss: str = "multinomial",
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.gamma = gamma
        self.beta = beta
        self.prior_weights = prior_weights
        self.encoder_epochs = encoder_epochs
        self.decoder_epochs = decoder_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.loss = loss
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    def _check_params(self) -> None:
        super()._check_params()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.gamma is not None and not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0 or None, got {self.gamma}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        w = np.asarray(self.prior_weights, dtype=float)
        if w.shape != (3,) or not np.all(w > 0):
            raise ValueError(f"prior_weights must be 3 positive numbers, got {self.prior_weights}")
        for name in ("encoder_epochs", "decoder_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _build_module(self) -> RecVAENet:
        return RecVAENet(self.n_items_, int(self.hidden_dim), int(self.latent_dim))

    def _train(self, x, validation, progress) -> None:
        net = self.module_
        w = np.asarray(self.prior_weights, dtype=float)
        prior = CompositePrior(net.encoder, tuple(w / w.sum())).to(self.device_)
        adam = dict(lr=self.lr, weight_decay=self.weight_decay)
        enc_opt = torch.optim.Adam(net.encoder.parameters(), **adam)
        dec_opt = torch.optim.Adam(net.decoder.parameters(), **adam)
        batch_size, dropout = int(self.batch_size), float(self.dropout)
        kl_sums = {"kl": 0.0, "rows": 0}

        def kl_weight(batch: torch.Tensor) -> torch.Tensor:
            if self.gamma is None:
                return torch.full((batch.shape[0],), float(self.beta), device=batch.device)
            return float(self.gamma) * batch.sum(dim=-1)

        def encoder_step(batch: torch.Tensor) -> torch.Tensor:
            mu, logvar = net.encoder(batch, dropout)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            nll = -(F.log_softmax(net.decoder(z), dim=-1) * batch).sum(dim=-1)
            kl = (log_normal(z, mu, logvar) - prior(batch, z)).sum(dim=-1)
            kl_sums["kl"] += float(kl.detach().sum())
            kl_sums["rows"] += batch.shape[0]
            return (nll + kl_weight(batch) * kl).mean()

        def decoder_step(batch: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():  # the encoder is fixed in this phase: no graph through it
                mu, logvar = net.encoder(batch)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return -(F.log_softmax(net.decoder(z), dim=-1) * batch).sum(dim=-1).mean()

        def cycle(rng: np.random.Generator, epoch: int) -> float:
            n = x.shape[0]
            losses = [
                run_epoch(net, x, encoder_step, enc_opt, rng.permutation(n), batch_size, self.device_, None, epoch)
                for _ in range(int(self.encoder_epochs))
            ]
            prior.refresh(net.encoder)
            for _ in range(int(self.decoder_epochs)):
                run_epoch(net, x, decoder_step, dec_opt, rng.permutation(n), batch_size, self.device_, None, epoch)
            return float(np.mean(losses))

        def epoch_stats() -> dict[str, float]:
            out = {"kl": kl_sums["kl"] / max(kl_sums["rows"], 1)}
            kl_sums.update(kl=0.0, rows=0)
            return out

        train_epochs(
            self,
            net,
            x,
            None,
            None,
            epochs=int(self.epochs),
            batch_size=batch_size,
            seed=self.seed,
            device=self.device_,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            extra_metrics=epoch_stats,
            epoch_fn=cycle,
        )
