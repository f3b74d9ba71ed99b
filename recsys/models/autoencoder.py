"""AutoEncoder (seed 001): two encoder and two decoder layers, sigmoid output, MSE loss, Adam.

Network (``AENet``)::

    x (n_items, 0/1) -> [dropout] -> Linear(n_items, hidden_dim1) -> tanh
      -> Linear(hidden_dim1, hidden_dim2) -> tanh                       = the code z (latent space)
      -> Linear(hidden_dim2, hidden_dim1) -> tanh -> Linear(hidden_dim1, n_items) -> sigmoid

The seed's defaults are kept (hidden 128 and 64, Adam lr 2e-3, batch 64, MSE on sigmoid outputs)
with two additions that it needs on sparse listening data: the user's own items weigh
``pos_weight=50`` times the others in the MSE (unweighted, it stays at the popularity solution:
NDCG@100 0.10 on the default synthetic data, as Popularity), and input dropout 0.5 (denoising,
0.274 -> 0.283). Scores are the pre-sigmoid logits (same ranking; ``score_kind="sigmoid"`` tells
the postfilter how to turn them into probabilities). The seed printed a train and a validation
error per epoch; here every ``training_log_`` row has ``train_loss``, ``val_loss`` (the same loss
of reconstructing the validation users' whole histories (fold-in + held-out) from their fold-in
part) and ``val_ndcg@100``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .base import register
from .torch_utils import TorchLatentRecommender, csr_to_torch_batch, train_epochs


class AENet(nn.Module):
    """Plain (optionally denoising) autoencoder with a tanh code of ``hidden_dim2`` units."""

    def __init__(self, n_items: int, hidden_dim1: int, hidden_dim2: int, dropout: float):
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(
            nn.Linear(n_items, hidden_dim1), nn.Tanh(), nn.Linear(hidden_dim1, hidden_dim2), nn.Tanh()
        )
        self.decoder = nn.Sequential(nn.Linear(hidden_dim2, hidden_dim1), nn.Tanh(), nn.Linear(hidden_dim1, n_items))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.input_dropout(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Item logits; ``torch.sigmoid`` of them is the seed's output layer."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@register("autoencoder")
class AutoEncoderRecommender(TorchLatentRecommender):
    """The seed 001 autoencoder behind the common interface.

    Parameters
    ----------
    hidden_dim1 : int
        Units of the outer hidden layers (128).
    hidden_dim2 : int
        Units of the code, the latent space (64).
    dropout : float
        Input dropout during training (0 = the seed's plain autoencoder).
    loss : {"mse", "bce", "multinomial", "focal"}
        "mse" on sigmoid outputs is the seed's; sets ``score_kind``.
    focal_gamma : float
        gamma of the focal loss.
    pos_weight : float
        Weight of the user's own items in the sigmoid losses (bce, focal, mse); unused by multinomial.
    epochs, batch_size, lr, weight_decay : training schedule (Adam; the seed's lr 2e-3, batch 64).
    patience : int or None
        Early stopping on validation NDCG@100.
    seed, device, show_progress : see :class:`~recsys.models.mlp.MLPRecommender`.

    Attributes
    ----------
    module_ : AENet
    training_log_ : list of dict
        Per epoch: epoch, train_loss, val_loss, val_ndcg@100, seconds.
    """

    allowed_losses = ("mse", "bce", "multinomial", "focal")

    def __init__(
        self,
        *,
        hidden_dim1: int = 128,
        hidden_dim2: int = 64,
        dropout: float = 0.5,
        loss: str = "mse",
        focal_gamma: float = 2.0,
        pos_weight: float = 50.0,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.hidden_dim1 = hidden_dim1
        self.hidden_dim2 = hidden_dim2
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
        return int(self.hidden_dim2)

    def _check_params(self) -> None:
        super()._check_params()
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("hidden_dim1", "hidden_dim2"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _build_module(self) -> AENet:
        return AENet(self.n_items_, int(self.hidden_dim1), int(self.hidden_dim2), float(self.dropout))

    def _train(self, x, validation, progress) -> None:
        loss_fn = self._loss_fn()
        net = self.module_
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        extra = None
        if validation is not None:
            foldin = self._binary(validation[0])
            full = self._binary(sp.csr_matrix(validation[0] + validation[1]))

            def extra() -> dict[str, float]:
                total = 0.0
                for lo in range(0, foldin.shape[0], self.inference_batch_size):
                    rows = np.arange(lo, min(lo + self.inference_batch_size, foldin.shape[0]))
                    logits = net(csr_to_torch_batch(foldin, self.device_, rows))
                    total += float(loss_fn(logits, csr_to_torch_batch(full, self.device_, rows))) * len(rows)
                return {"val_loss": total / max(foldin.shape[0], 1)}

        train_epochs(
            self,
            net,
            x,
            lambda batch: loss_fn(net(batch), batch),
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=self.seed,
            device=self.device_,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            extra_metrics=extra,
        )
