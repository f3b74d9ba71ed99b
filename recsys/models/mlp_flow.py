"""MLP+Flow: a Glow on the bottleneck of the MLP autoencoder (seed 000's "recommender flow").

::

    encode(x) = f(MLP.encoder(x)) = z ~ N(0, I)        decode(z) = MLP.decoder(f^-1(z))

The MLP (:class:`~recsys.models.mlp.MLPNet`, the same network as the "mlp" family) does the
recommending; the flow ``f`` only re-parametrises its bottleneck so that the latent space steering
moves through is a standard normal instead of whatever shape the autoencoder's codes took.

Training is two-stage, on purpose:

1. the MLP alone, exactly as the "mlp" family trains it (denoising, early stopping on validation
   NDCG@100);
2. the flow alone, by maximum likelihood on the frozen bottleneck codes of the training users
   (each epoch encodes a fresh random ``flow_subsample`` share of every history, early-stopped on the
   validation users' NLL; see :func:`recsys.models.flow.fit_flow_ml`).

Why not jointly: the flow is a bijection, so it cannot improve the recommendations, only the shape
of the latent space; a joint NLL term would reach back into the encoder, where the cheapest way to
raise the density of the codes is to shrink them (the NLL falls without bound as the code cloud
contracts), fighting the reconstruction loss for nothing. Two stages keep the MLP's accuracy
exactly (``score`` is the MLP's ``decode(encode(x))``), let the flow fit the codes that are
actually kept (not a moving target), and cost one cheap extra stage on (n_users, latent_dim) data.

References
----------
Kingma, D. P. and Dhariwal, P. "Glow: Generative Flow with Invertible 1x1 Convolutions." NeurIPS 2018.
Liang, D. et al. "Variational Autoencoders for Collaborative Filtering." WWW 2018 (Mult-DAE).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .base import ProgressCallback, Recommender, Validation, as_csr, register
from .flow import fit_flow_ml
from .flow_layers import Glow, gaussianity
from .mlp import MLPNet
from .torch_utils import VAL_KEY, TorchLatentRecommender, train_epochs


class MLPFlowNet(nn.Module):
    """An :class:`MLPNet` and a :class:`Glow` on its bottleneck.

    ``encode(x) = flow(mlp.encode(x))``, ``decode(z) = mlp.decode(flow^-1(z))``,
    ``score(x) = mlp(x)`` (the same function without the flow's round trip).
    """

    def __init__(self, mlp: MLPNet, flow: Glow):
        super().__init__()
        self.mlp = mlp
        self.flow = flow

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow(self.mlp.encode(x))[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp.decode(self.flow.inverse(z))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


@register("mlp_flow")
class MLPFlowRecommender(TorchLatentRecommender):
    """The MLP autoencoder with a Glow that Gaussianises its bottleneck (seed 000's MLP+flow).

    Parameters
    ----------
    latent_dim : int
        Size of the MLP bottleneck and of the latent ``z`` (>= 2: the coupling splits it).
    hidden_dim, hidden_layers, dropout, latent_activation :
        The MLP's network, as in :class:`~recsys.models.mlp.MLPRecommender`.
    loss : {"multinomial", "bce", "focal"}
        The MLP's reconstruction loss; sets ``score_kind``.
    focal_gamma : float
        gamma of the focal loss.
    pos_weight : float
        Weight of the user's own items in the sigmoid losses (bce, focal); unused by multinomial.
    epochs, batch_size, lr, weight_decay : the MLP's training schedule (Adam).
    patience : int or None
        Early stopping: on validation NDCG@100 for the MLP, on validation NLL for the flow.
    n_flow_steps : int
        K, Glow steps [ActNorm -> invertible 1x1 -> affine coupling].
    coupling_hidden : int
        Hidden width of the coupling MLPs.
    flow_epochs : int
        Maximum epochs of the flow's maximum-likelihood stage.
    flow_lr : float
        Adam learning rate of the flow stage.
    flow_subsample : float
        Each history keeps a random share in [flow_subsample, 1] of its items (fresh per epoch) when
        encoded for the flow; 1 = full histories. The MLP's normalised input makes its codes barely
        move under subsampling, so on the synthetic data < 1 only loosened the fit on training users.
    seed : int
        Seeds initialisation, dropout, subsets and batch order.
    device : str
        "cpu" or "cuda".
    show_progress : bool
        tqdm bar over the MLP's epochs.

    Attributes
    ----------
    module_ : MLPFlowNet
        ``mlp`` (MLPNet) and ``flow`` (Glow).
    training_log_ : list of dict
        Per epoch, stage "mlp" (train_loss, val_ndcg@100) then stage "flow" (flow_nll,
        val_flow_nll in nats per dimension); epochs are numbered across both stages.
    latent_stats_ : dict
        :func:`~recsys.models.flow_layers.gaussianity` of ``z`` on the training users.

    Examples
    --------
    >>> from recsys.data.synthetic import generate_synthetic
    >>> ds = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    >>> model = MLPFlowRecommender(latent_dim=16, epochs=5, flow_epochs=10).fit(ds)
    >>> z = model.encode(ds.interactions)          # (300, 16), ~ N(0, I)
    """

    allowed_losses = ("multinomial", "bce", "focal")
    latent_dim = None  # a parameter here (shadows the base-class property)

    def __init__(
        self,
        *,
        latent_dim: int = 64,
        hidden_dim: int = 256,
        hidden_layers: int = 2,
        dropout: float = 0.5,
        latent_activation: str = "none",
        loss: str = "multinomial",
        focal_gamma: float = 2.0,
        pos_weight: float = 50.0,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int | None = 5,
        n_flow_steps: int = 4,
        coupling_hidden: int = 128,
        flow_epochs: int = 60,
        flow_lr: float = 1e-3,
        flow_subsample: float = 1.0,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.latent_activation = latent_activation
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.pos_weight = pos_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.n_flow_steps = n_flow_steps
        self.coupling_hidden = coupling_hidden
        self.flow_epochs = flow_epochs
        self.flow_lr = flow_lr
        self.flow_subsample = flow_subsample
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    def _check_params(self) -> None:
        super()._check_params()
        if self.hidden_layers not in (0, 2, 4, 6):
            raise ValueError(f"hidden_layers must be 0, 2, 4 or 6 (seed 000's h0..h6), got {self.hidden_layers}")
        if self.latent_activation not in ("none", "tanh"):
            raise ValueError(f"latent_activation must be 'none' or 'tanh', got {self.latent_activation!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if int(self.latent_dim) < 2:
            raise ValueError(f"latent_dim must be >= 2 (the coupling splits it in halves), got {self.latent_dim}")
        for name in ("hidden_dim", "n_flow_steps", "coupling_hidden", "flow_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.flow_subsample <= 1:
            raise ValueError(f"flow_subsample must be in (0, 1], got {self.flow_subsample}")

    def _build_module(self) -> MLPFlowNet:
        mlp = MLPNet(
            self.n_items_,
            int(self.latent_dim),
            int(self.hidden_dim),
            int(self.hidden_layers),
            float(self.dropout),
            self.latent_activation,
        )
        # the flow draws its initial weights from its own RNG stream, so the global torch RNG that
        # drives the MLP's dropout is where the "mlp" family has it: stage 1 trains the same MLP
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed) + 1)
            flow = Glow(int(self.latent_dim), int(self.n_flow_steps), int(self.coupling_hidden), seed=int(self.seed))
        return MLPFlowNet(mlp, flow)

    #: Parameters that decide stage 1 (the MLP): a trained "mlp" model with the same values is what
    #: stage 1 would produce, so :meth:`reuse_mlp` may stand in for it.
    mlp_stage_params = (
        "latent_dim", "hidden_dim", "hidden_layers", "dropout", "latent_activation", "loss", "focal_gamma",
        "pos_weight", "epochs", "batch_size", "lr", "weight_decay", "patience", "seed",
    )  # fmt: skip

    def reuse_mlp(self, mlp: Recommender) -> MLPFlowRecommender:
        """Skip stage 1 at the next ``fit``: take the network of ``mlp``, an "mlp" model fitted on the
        same training data with the same :data:`mlp_stage_params`.

        Stage 1 is exactly how the "mlp" family trains (same network, initialisation, dropout draws and
        early stopping), so a fitted "mlp" model is what stage 1 would produce; reusing it saves the
        larger part of the fit (the demo's first build trains both). Parameters that differ raise a
        ValueError; the data is the caller's to match (``fit`` checks the number of items). Returns self.
        """
        from .mlp import MLPRecommender

        if not isinstance(mlp, MLPRecommender) or getattr(mlp, "module_", None) is None:
            raise ValueError(f"reuse_mlp needs a fitted MLPRecommender, got {type(mlp).__name__}")
        theirs = mlp.get_params()
        differ = [k for k in self.mlp_stage_params if theirs.get(k) != getattr(self, k)]
        if differ:
            shown = ", ".join(f"{k}={theirs.get(k)!r} (here {getattr(self, k)!r})" for k in differ)
            raise ValueError(f"the MLP was trained with other stage-1 parameters: {shown}")
        self._reused_mlp = mlp
        return self

    # ---- training ------------------------------------------------------------------------
    def _train(self, x: sp.csr_matrix, validation: Validation | None, progress: ProgressCallback | None) -> None:
        reused, self._reused_mlp = getattr(self, "_reused_mlp", None), None
        if reused is not None:
            log = self._take_mlp(reused)
        else:
            log = self._train_mlp(x, validation, progress)
        best_epoch = self.best_epoch_
        self.module_.eval()  # no input dropout while encoding codes; fit_flow_ml trains only the flow
        mlp = self.module_.mlp
        val_codes = None if validation is None else self._predict(mlp.encode, self._binary(validation[0]))
        log += fit_flow_ml(
            self.module_.flow,
            x,
            mlp.encode,
            subsample=float(self.flow_subsample),
            epochs=int(self.flow_epochs),
            batch_size=int(self.batch_size),
            lr=float(self.flow_lr),
            seed=int(self.seed) + 1,
            device=self.device_,
            validation_codes=val_codes,
            patience=self.patience,
            progress=progress,
            epoch_offset=len(log),
        )
        self.training_log_, self.best_epoch_ = log, best_epoch
        self.latent_stats_ = gaussianity(self._encode(x))

    def _train_mlp(
        self, x: sp.csr_matrix, validation: Validation | None, progress: ProgressCallback | None
    ) -> list[dict]:
        """Stage 1: the MLP alone, as the "mlp" family trains it."""
        loss_fn = self._loss_fn()
        mlp = self.module_.mlp
        opt = torch.optim.Adam(mlp.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        log = train_epochs(
            self,
            mlp,
            x,
            lambda batch: loss_fn(mlp(batch), batch),
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=int(self.seed),
            device=self.device_,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
        )
        for row in log:
            row["stage"] = "mlp"
        return log

    def _take_mlp(self, mlp: Recommender) -> list[dict]:
        """Stage 1 from a fitted "mlp" model: its weights, training log and best epoch."""
        if mlp.n_items_ != self.n_items_:
            raise ValueError(f"the MLP to reuse scores {mlp.n_items_} items, this data has {self.n_items_}")
        self.module_.mlp.load_state_dict(mlp.module_.state_dict())
        log = [{**row, "stage": "mlp"} for row in (mlp.training_log_ or [])]
        best = getattr(mlp, "best_epoch_", None)
        if best is None and log:  # a model loaded from the registry keeps its log, not best_epoch_
            scored = [r for r in log if r.get(VAL_KEY) is not None]
            best = max(scored, key=lambda r: r[VAL_KEY])["epoch"] if scored else log[-1]["epoch"]
        self.best_epoch_ = best
        return log

    # ---- inference -----------------------------------------------------------------------
    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return self._predict(self.module_.score, self._binary(x))

    def bottleneck(self, histories: sp.csr_matrix) -> np.ndarray:
        """The MLP's bottleneck codes (n_users, latent_dim), before the flow."""
        self._check_fitted()
        return self._predict(self.module_.mlp.encode, self._binary(as_csr(histories, self.n_items_)))
