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
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import register
from .losses import kl_normal
from .torch_utils import TorchLatentRecommender, tanh_stack, train_epochs


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

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each (batch, latent_dim)."""
        h = self.encoder(self.input_dropout(nn.functional.normalize(x, dim=-1)))
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean mu (batch, latent_dim): the latent point of a history."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, mu, logvar); z is sampled in training mode, z = mu in eval mode."""
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
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
    loss : {"multinomial", "bce", "focal"}
        Likelihood; sets ``score_kind`` ("softmax" for multinomial, else "sigmoid").
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

    allowed_losses = ("multinomial", "bce", "focal")
    latent_dim = None  # a parameter here (shadows the base-class property)

    def __init__(
        self,
        *,
        latent_dim: int = 200,
        hidden_dim: int = 600,
        hidden_layers: int = 1,
        dropout: float = 0.5,
        loss: str = "multinomial",
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

    def _build_module(self) -> VAENet:
        hidden = (int(self.hidden_dim),) * int(self.hidden_layers)
        return VAENet(self.n_items_, int(self.latent_dim), hidden, float(self.dropout))

    def _train(self, x, validation, progress) -> None:
        recon = self._loss_fn()
        net = self.module_
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        anneal = self.total_anneal_steps
        if anneal is None:
            anneal = int(self.epochs) * math.ceil(x.shape[0] / int(self.batch_size))
        state = {"step": 0, "beta": 0.0, "kl_sum": 0.0, "rows": 0}

        def step(batch: torch.Tensor) -> torch.Tensor:
            beta = min(self.beta_max, self.beta_max * state["step"] / anneal)
            logits, mu, logvar = net(batch)
            kl = kl_normal(mu, logvar)
            state.update(step=state["step"] + 1, beta=beta)
            state["kl_sum"] += float(kl.detach()) * batch.shape[0]
            state["rows"] += batch.shape[0]
            return recon(logits, batch) + beta * kl

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
        )
