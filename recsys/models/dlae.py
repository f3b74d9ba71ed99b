"""Low-rank DLAE (Steck 2020): a linear autoencoder with a dropout penalty, fitted in closed form.

A denoising linear autoencoder ``B = E D`` (``E``: n_items x k encoder, ``D``: k x n_items decoder)
trained with input dropout ``p`` has, in expectation, the objective (Steck 2020, eq. 5)::

    ||X - X B||^2 + ||Lambda^(1/2) B||^2,   Lambda = p / (1 - p) diag(X^T X) + l2 I

so an item that many users share is held back from predicting itself (the "overfitting towards the
identity" that plain low-rank autoencoders suffer from). With ``G = X^T X`` and ``A = G + Lambda``
the best rank-k ``B`` is ``U_k U_k^T G``, where ``U_k`` are the generalised eigenvectors of
``G u = mu A u`` with the k largest eigenvalues, normalised so that ``U^T A U = I``. (Completing
the square gives ``||A^(1/2) B - A^(-1/2) G||^2`` + const, whose best rank-k ``A^(1/2) B`` is the
top-k part of ``A^(-1/2) G``: Eckart-Young; its left singular vectors are the eigenvectors of
``A^(-1/2) G A^(-1/2)``, which are ``A^(1/2) U``.) One generalised symmetric eigenproblem,
no training loop, no learning rate.

Emphasis on dropped items (``emphasis=True``, after Steck's EDLAE with full emphasis): an item
dropped from the input cannot predict itself, so the loss that counts is the one in which B's
diagonal plays no part. With the encoder ``U_k`` above kept, each decoder column is refitted with
item j's own row of ``U_k`` left out (``b_j = (I - e_j e_j^T) U_k v_j``)::

    v_j = argmin  b_j^T A b_j - 2 b_j^T g_j  =  (U_(-j)^T A U_(-j))^(-1) U_(-j)^T g_j

``U_(-j)^T A U_(-j)`` is ``U^T A U = I`` plus a rank-2 change, so every column is a 2 x 2 solve
(Woodbury) after two k x n products: the cost of the eigenproblem's output, not a training loop.
B's diagonal (an item predicting itself) is then never fitted; it only scores items already in
the history, which ranking leaves out. The paper fits the low-rank EDLAE by alternating both
factors; refitting the decoder alone is the cheap half of that.

The latent space: ``z = x U_k`` (k numbers per history, uncorrelated over the training users with
variances ``mu``), decoded by ``z (U_k^T G)``. Steering moves ``z`` like any other latent model.
Scores are linear similarities (``score_kind = "similarity"``). Cost: O(n_items^3) time and a few
dense n_items x n_items matrices at fit time, like EASE; fine up to ~20k items.

Why a linear latent model here: on data with many small clusters of items (artists on the synthetic
catalogue, long-tail music), a neural VAE with a 200-d bottleneck cannot keep the clusters apart
and falls far behind EASE (`benchmarks/results/accuracy_zoo_*.md`); a linear code with a few
hundred dimensions can, and is still a space to steer in.

Reference: Steck, H. "Autoencoders that don't overfit towards the Identity." NeurIPS 2020.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import LatentRecommender, register


@register("dlae")
class LowRankDLAE(LatentRecommender):
    """Low-rank denoising linear autoencoder (closed form).

    Parameters
    ----------
    latent_dim : int
        Rank k of ``B`` (the size of the latent space); capped at n_items.
    dropout : float
        Input dropout p in [0, 1) that the penalty stands for; the per-item weight is p / (1 - p).
    l2 : float
        Extra L2 on ``B`` (>= 0), added to every item's penalty.
    emphasis : bool
        Refit the decoder with full emphasis on dropped items (B's diagonal left out of the fit,
        see the module docstring); the encoder is the same.

    Attributes
    ----------
    encoder_ : ndarray (n_items, k), float32
        ``U_k``: ``encode(x) = x @ encoder_`` (0/1 histories).
    decoder_ : ndarray (k, n_items), float32
        ``U_k^T G``: ``decode(z) = z @ decoder_``.
    eigenvalues_ : ndarray (k,)
        The generalised eigenvalues mu (in (0, 1)), largest first: how much of the data each
        latent direction reconstructs.
    """

    latent_dim = None  # a parameter here (shadows the base-class property)

    def __init__(self, *, latent_dim: int = 512, dropout: float = 0.5, l2: float = 10.0, emphasis: bool = False):
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.l2 = l2
        self.emphasis = emphasis

    def _check_params(self) -> None:
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.dropout == 0 and self.l2 == 0:
            raise ValueError("dropout and l2 are both 0: the penalty matrix would be singular; raise either")

    def _fit(self, train: Dataset, validation, progress) -> None:
        self._check_params()
        x = train.binary().astype(np.float64)
        gram = (x.T @ x).toarray()
        n = gram.shape[0]
        k = min(int(self.latent_dim), n)
        penalty = self.dropout / (1.0 - self.dropout) * np.diag(gram) + self.l2
        # items nobody in the training users has: give them a unit penalty so A stays positive definite
        penalty = np.where(penalty > 0, penalty, 1.0)
        # float32 for the eigensolver: ~1.6x faster than float64 on the demo's 5,000 songs with the
        # same validation NDCG@100 to 4 decimals (measured on the synthetic data, k = 1024)
        g32 = gram.astype(np.float32)
        a = g32 + np.diag(penalty.astype(np.float32))
        mu, u = scipy.linalg.eigh(g32, a, subset_by_index=[n - k, n - 1], check_finite=False)
        order = np.argsort(-mu)
        mu, u = mu[order], u[:, order]
        self.encoder_ = np.ascontiguousarray(u, dtype=np.float32)
        decoder = u.T @ g32  # U_k^T G
        if self.emphasis:
            decoder = _emphasis_decoder(u, decoder, np.diag(gram), penalty)
        self.decoder_ = np.ascontiguousarray(decoder, dtype=np.float32)
        self.eigenvalues_ = mu.astype(np.float32)

    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        x = sp.csr_matrix(x, dtype=np.float32, copy=True)
        x.data[:] = 1.0
        return np.asarray(x @ self.encoder_)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float32) @ self.decoder_

    def _state(self) -> dict[str, np.ndarray]:
        return {"encoder": self.encoder_, "decoder": self.decoder_, "eigenvalues": self.eigenvalues_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.encoder_ = arrays["encoder"]
        self.decoder_ = arrays["decoder"]
        self.eigenvalues_ = arrays["eigenvalues"]


def _emphasis_decoder(u: np.ndarray, ut_g: np.ndarray, g_diag: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Decoder columns ``v_j`` fitted without item j's own row of ``u`` (B's diagonal left out).

    ``u``: n x k encoder with ``u^T A u = I`` (``A = G + diag(penalty)``); ``ut_g = u^T G``. For
    column j with ``u_j`` (row j of u), ``w_j = u^T A e_j`` and ``r_j = u^T g_j - u_j G_jj``:
    ``U_(-j)^T A U_(-j) = I + C S C^T`` with ``C = [u_j, w_j]``, ``S = [[A_jj, -1], [-1, 0]]``, so
    ``v_j = r_j - C (S^-1 + C^T C)^-1 C^T r_j`` (Woodbury; ``S^-1 = [[0, -1], [-1, -A_jj]]``).
    A column whose 2 x 2 system is singular keeps DLAE's ``u^T g_j``.
    """
    ut = u.T.astype(np.float64)
    utg = ut_g.astype(np.float64)
    w = utg + ut * penalty[None, :]  # u^T A
    r = utg - ut * g_diag[None, :]
    a_jj = g_diag + penalty
    uu, uw, ww = (ut * ut).sum(0), (ut * w).sum(0), (w * w).sum(0)
    ur, wr = (ut * r).sum(0), (w * r).sum(0)
    t11, t12, t22 = uu, uw - 1.0, ww - a_jj
    det = t11 * t22 - t12 * t12
    ok = np.abs(det) > 1e-9 * np.maximum(1.0, np.abs(t11 * t22))
    safe = np.where(ok, det, 1.0)
    c1 = (t22 * ur - t12 * wr) / safe
    c2 = (t11 * wr - t12 * ur) / safe
    v = r - ut * c1[None, :] - w * c2[None, :]
    return np.where(ok[None, :], v, utg)
