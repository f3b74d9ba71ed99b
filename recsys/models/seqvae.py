"""Sequential VAE (seed 004, ESAPR-style): Mult-VAE trained to predict the next window of items.

ESAPR turns Mult-VAE^PR (Liang et al. 2018) into a sequential recommender by changing what goes in
and what comes out, not the network:

* **input** = a prefix of the user's history, each item weighted by **recency**: with
  ``recency="exponential"`` the item ``a`` steps before the end of the prefix weighs
  ``0.5 ** (a / recency_halflife)`` (``"linear"``: position / length; ``"constant"``: 1, i.e. the
  original Mult-VAE input). The network L2-normalises the weighted vector, as Mult-VAE does.
* **target** = the next ``window`` items after the prefix, the k-th of them (from 0) weighted
  ``target_decay ** k``; the loss is the weighted multinomial log-likelihood
  ``-sum_i t_i log softmax(logits)_i`` + beta KL (annealed to ``beta_max`` as in Mult-VAE).
* every epoch draws ``samples_per_user`` random cut points per user (a prefix of at least one item
  and a non-empty window), so a user with n items gives up to n - 1 different training pairs.

At scoring time the whole history is the prefix: the output ranks what comes next. The network is
:class:`~recsys.models.multvae.VAENet` unchanged; training goes through the shared loop
(:func:`~recsys.models.torch_utils.train_epochs`, early stopping on validation NDCG@100). ESAPR's
"transfer training" (pre-training on plain reconstruction) is not implemented.

Order: training reads the Dataset's timestamps; ``score(csr)`` and ``encode(csr)`` read a CSR in
the fallback order of :mod:`recsys.models.sequential` (stored value = order key, larger = later).
It is also a :class:`~recsys.models.base.LatentRecommender`, so the steering code can tune it:
``encode`` is the posterior mean of the recency-weighted history.

References
----------
ESAPR: https://github.com/1207koo/ESAPR (VAE_tw: transfer + weighted input and CE).
Liang, D. et al. "Variational Autoencoders for Collaborative Filtering." WWW 2018.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from ..data.sequences import OrderedHistories
from .base import LatentRecommender, register
from .losses import kl_normal
from .multvae import VAENet
from .sequential import SequentialRecommender, load_device
from .torch_utils import (
    import_torch,
    load_numpy_state,
    predict_in_batches,
    resolve_device,
    seed_everything,
    state_dict_to_numpy,
    train_epochs,
)

RECENCY_KINDS = ("exponential", "linear", "constant")


def recency_weights(lengths: np.ndarray, kind: str, halflife: float) -> np.ndarray:
    """Flat weights (sum(lengths),) for sequences of these lengths, oldest first: 1 for the latest item."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = np.repeat(lengths, lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # 0 = oldest
    age = n - 1 - pos
    if kind == "exponential":
        return np.power(0.5, age / float(halflife)).astype(np.float32)
    if kind == "linear":
        return ((pos + 1) / np.maximum(n, 1)).astype(np.float32)
    if kind == "constant":
        return np.ones(len(age), dtype=np.float32)
    raise ValueError(f"recency must be one of {RECENCY_KINDS}, got {kind!r}")


@register("seqvae")
class SequentialVAE(SequentialRecommender, LatentRecommender):
    """Mult-VAE over recency-weighted histories, trained on next-window targets (ESAPR-style).

    Parameters
    ----------
    latent_dim, hidden_dim, hidden_layers, dropout, beta_max, total_anneal_steps :
        As :class:`~recsys.models.multvae.MultVAE` (200, 600, 1, 0.5, 0.2, whole run).
    window : int
        Items after the cut point that form the target (ESAPR's ``train_window``).
    target_decay : float
        Weight of the k-th target item is ``target_decay ** k`` (1 = uniform window).
    recency : {"exponential", "linear", "constant"}
        Input weighting; "constant" is the plain Mult-VAE input.
    recency_halflife : float
        Items after which an input item's weight halves (exponential recency).
    samples_per_user : int
        Random cut points per user and epoch.
    epochs, batch_size, lr, weight_decay, patience, seed, device, show_progress :
        Training schedule (Adam), early stopping on validation NDCG@100, as the other torch families.

    Attributes
    ----------
    module_ : VAENet
    training_log_ : list of dict
        Per epoch: epoch, train_loss, val_ndcg@100, seconds, beta, kl.
    """

    latent_dim = None  # a parameter here (shadows the base-class property)
    score_kind = "softmax"
    inference_batch_size = 1000

    def __init__(
        self,
        *,
        latent_dim: int = 200,
        hidden_dim: int = 600,
        hidden_layers: int = 1,
        dropout: float = 0.5,
        beta_max: float = 0.2,
        total_anneal_steps: int | None = None,
        window: int = 10,
        target_decay: float = 0.8,
        recency: str = "exponential",
        recency_halflife: float = 20.0,
        samples_per_user: int = 4,
        epochs: int = 30,
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
        self.beta_max = beta_max
        self.total_anneal_steps = total_anneal_steps
        self.window = window
        self.target_decay = target_decay
        self.recency = recency
        self.recency_halflife = recency_halflife
        self.samples_per_user = samples_per_user
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    # ---- helpers ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.recency not in RECENCY_KINDS:
            raise ValueError(f"recency must be one of {RECENCY_KINDS}, got {self.recency!r}")
        if not self.recency_halflife > 0:
            raise ValueError(f"recency_halflife must be > 0, got {self.recency_halflife}")
        if int(self.window) < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if not 0 < self.target_decay <= 1:
            raise ValueError(f"target_decay must be in (0, 1], got {self.target_decay}")
        if int(self.samples_per_user) < 1:
            raise ValueError(f"samples_per_user must be >= 1, got {self.samples_per_user}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def _build_module(self) -> VAENet:
        hidden = (int(self.hidden_dim),) * int(self.hidden_layers)
        return VAENet(self.n_items_, int(self.latent_dim), hidden, float(self.dropout))

    def _weighted_input(self, seqs: OrderedHistories) -> sp.csr_matrix:
        """(n, n_items) CSR of recency weights (a repeated item keeps its most recent weight)."""
        w = recency_weights(seqs.lengths, self.recency, self.recency_halflife)
        rows = np.repeat(np.arange(seqs.n_users), seqs.lengths)
        x = sp.csr_matrix((w, (rows, seqs.items)), shape=(seqs.n_users, self.n_items_))
        x.sum_duplicates()
        return x

    # ---- fitting ----------------------------------------------------------------------------
    def _fit(self, train, validation, progress) -> None:
        import_torch()
        self._check_params()
        self.device_ = resolve_device(self.device)
        seed_everything(self.seed)
        seqs = OrderedHistories.from_dataset(train)
        users = np.flatnonzero(seqs.lengths >= 2)
        if len(users) == 0:
            raise ValueError("a sequential VAE needs users with at least 2 items")
        self.module_ = self._build_module().to(self.device_)
        net = self.module_
        rows = np.repeat(users, int(self.samples_per_user)).astype(np.float32)[:, None]
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        anneal = self.total_anneal_steps or int(self.epochs) * math.ceil(len(rows) / int(self.batch_size))
        rng = np.random.default_rng(self.seed)
        state = {"step": 0, "beta": 0.0, "kl_sum": 0.0, "rows": 0}
        window, decay = int(self.window), float(self.target_decay)

        def make_batch(u: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            n = seqs.lengths[u]
            cut = 1 + (rng.random(len(u)) * (n - 1)).astype(np.int64)  # prefix length in [1, n-1]
            starts = seqs.indptr[u]
            prefix = OrderedHistories(
                np.concatenate([[0], np.cumsum(cut)]),
                seqs.items[np.repeat(starts, cut) + np.arange(cut.sum()) - np.repeat(np.cumsum(cut) - cut, cut)],
                self.n_items_,
            )
            x = torch.from_numpy(self._weighted_input(prefix).toarray())
            t_len = np.minimum(window, n - cut)
            t_off = np.arange(t_len.sum()) - np.repeat(np.cumsum(t_len) - t_len, t_len)
            t_items = seqs.items[np.repeat(starts + cut, t_len) + t_off]
            target = torch.zeros((len(u), self.n_items_))
            t_rows = torch.from_numpy(np.repeat(np.arange(len(u)), t_len))
            target.index_put_(
                (t_rows, torch.from_numpy(t_items)),
                torch.from_numpy(np.power(decay, t_off).astype(np.float32)),
                accumulate=True,
            )
            return x.to(self.device_), target.to(self.device_)

        def step(batch: torch.Tensor) -> torch.Tensor:
            x, target = make_batch(batch[:, 0].long().cpu().numpy())
            beta = min(self.beta_max, self.beta_max * state["step"] / anneal)
            logits, mu, logvar = net(x)
            kl = kl_normal(mu, logvar)
            state.update(step=state["step"] + 1, beta=beta)
            state["kl_sum"] += float(kl.detach()) * len(x)
            state["rows"] += len(x)
            recon = -(torch.log_softmax(logits, dim=-1) * target).sum(-1).mean()
            return recon + beta * kl

        def epoch_stats() -> dict[str, float]:
            out = {"beta": state["beta"], "kl": state["kl_sum"] / max(state["rows"], 1)}
            state.update(kl_sum=0.0, rows=0)
            return out

        train_epochs(
            self,
            net,
            rows,
            step,
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=self.seed,
            device=None,
            validation=validation,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            extra_metrics=epoch_stats,
        )
        net.eval()

    # ---- inference --------------------------------------------------------------------------
    def _predict(self, fn, x) -> np.ndarray:
        return predict_in_batches(fn, x, self.device_, batch_size=self.inference_batch_size, module=self.module_)

    def _score_sequences(self, seqs, profiles, tags) -> np.ndarray:
        net = self.module_
        return self._predict(lambda b: net.decode(net.encode(b)), self._weighted_input(seqs))

    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        return self._predict(self.module_.encode, self._weighted_input(OrderedHistories.from_csr(x)))

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return self._predict(self.module_.decode, z)

    # ---- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return state_dict_to_numpy(self.module_, "net.")

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        import_torch()
        self.device_ = load_device(self.device)
        module = self._build_module()
        load_numpy_state(module, arrays, "net.")
        self.module_ = module.to(self.device_).eval()
