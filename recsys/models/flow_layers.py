"""Glow building blocks on vectors (Kingma & Dhariwal 2018), in torch.

Every layer maps ``x -> (y, logdet)`` with ``forward`` and back with ``inverse``; ``logdet`` is
``log|det dy/dx|`` per sample, shape (batch,). A :class:`Glow` stacks K steps of
[:class:`ActNorm` -> :class:`InvertibleLinear` -> :class:`AffineCoupling`] and scores points under a
standard-normal prior, so ``-Glow.log_prob(x).mean()`` is the maximum-likelihood loss.

This module imports torch at the top: import it lazily (inside ``fit``) from model modules.

References
----------
Kingma, D. P. and Dhariwal, P. "Glow: Generative Flow with Invertible 1x1 Convolutions." NeurIPS 2018.
Dinh, L., Sohl-Dickstein, J. and Bengio, S. "Density estimation using Real NVP." ICLR 2017.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

_LOG_2PI = math.log(2.0 * math.pi)


class ActNorm(nn.Module):
    """Per-dimension affine ``y = (x + bias) * exp(log_scale)``, initialised from data.

    On the first ``forward`` in training mode (or an explicit :meth:`initialize`) the bias and scale
    are set so that the batch comes out with zero mean and unit variance per dimension; this keeps
    the first steps of training well conditioned whatever the scale of the input. The
    ``initialized`` buffer is part of the state dict, so a loaded model never re-initialises.

    Parameters
    ----------
    dim : int
        Vector size d.
    eps : float
        Added to the batch standard deviation at initialisation (constant dimensions).

    Attributes
    ----------
    bias, log_scale : Parameter, shape (d,)
    initialized : buffer, shape (1,), uint8 (0 or 1); 1-D because 0-d arrays do not survive every storage format
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.zeros(1, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set bias = -mean(x), scale = 1 / std(x) per dimension (x: (batch, d)).

        A single row has no spread: then only the bias is set and the scale stays 1.
        """
        self.bias.copy_(-x.mean(dim=0))
        if x.shape[0] > 1:
            self.log_scale.copy_(-torch.log(x.std(dim=0, unbiased=False) + self.eps))
        self.initialized.fill_(1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        return y, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvertibleLinear(nn.Module):
    """Glow's invertible 1x1 convolution on vectors, LU-parametrised: ``y = x W^T``.

    ``W = P L (U + diag(sign_s * exp(log_s)))`` with P a fixed permutation, L unit lower triangular
    and U strictly upper triangular; ``log|det W| = sum(log_s)`` costs O(d) instead of O(d^3), and
    W stays invertible whatever values the optimiser gives L, U and log_s.

    Parameters
    ----------
    dim : int
        Vector size d.
    generator : torch.Generator, optional
        Seeds the random rotation W is initialised to (and hence P).

    Attributes
    ----------
    lower, upper, log_s : Parameter, shape (d, d), (d, d), (d,)
        Only the strictly lower / strictly upper parts of ``lower`` / ``upper`` are used.
    perm, sign_s : buffer, shape (d, d), (d,)
        Fixed permutation matrix and the signs of the diagonal of U.
    """

    def __init__(self, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), diagonal=-1))
        self.register_buffer("eye", torch.eye(dim))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, diagonal=1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def _factors(self) -> tuple[Tensor, Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def weight(self) -> Tensor:
        """The (d, d) matrix W."""
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        # x^T = U^-1 L^-1 P^T y^T: two triangular solves, better conditioned than inv(W)
        lower, upper = self._factors()
        t = (y @ self.perm).T  # P^T y^T
        t = torch.linalg.solve_triangular(lower, t, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, t, upper=True).T


class AffineCoupling(nn.Module):
    """Real NVP / Glow affine coupling: one half of x conditions a scale and shift of the other.

    ``y_a = x_a``; ``y_b = x_b * exp(log_s) + t`` with ``(log_s_raw, t) = net(x_a)`` and
    ``log_s = scale_bound * tanh(log_s_raw / scale_bound)``: bounded, so no step can blow up or
    collapse a dimension, and ~identity-shaped near zero. The last layer of ``net`` starts at zero so
    the coupling starts as the identity. ``flip`` swaps which half is transformed; alternate it
    between steps so every dimension gets transformed.

    Parameters
    ----------
    dim : int
        Vector size d (>= 2).
    hidden : int
        Width of the two hidden layers of the conditioning MLP.
    flip : bool
        Transform the first half conditioned on the second instead of the reverse.
    scale_bound : float
        Bound on |log_s| per dimension and step.
    """

    def __init__(self, dim: int, hidden: int, *, flip: bool = False, scale_bound: float = 2.0):
        super().__init__()
        if dim < 2:
            raise ValueError(f"AffineCoupling needs dim >= 2 to split in halves, got {dim}")
        self.flip = flip
        self.scale_bound = scale_bound
        half = dim // 2
        # (conditioning size, transformed size); the first `half` dims are part "1"
        self.n_cond, self.n_trans = (dim - half, half) if flip else (half, dim - half)
        self.net = nn.Sequential(
            nn.Linear(self.n_cond, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * self.n_trans),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(conditioning part, transformed part)."""
        if self.flip:
            return x[:, self.n_trans :], x[:, : self.n_trans]
        return x[:, : self.n_cond], x[:, self.n_cond :]

    def _join(self, cond: Tensor, trans: Tensor) -> Tensor:
        return torch.cat([trans, cond] if self.flip else [cond, trans], dim=1)

    def _scale_shift(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(cond).chunk(2, dim=1)
        return self.scale_bound * torch.tanh(raw_s / self.scale_bound), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        cond, trans = self._split(x)
        log_s, t = self._scale_shift(cond)
        return self._join(cond, trans * torch.exp(log_s) + t), log_s.sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        cond, trans = self._split(y)
        log_s, t = self._scale_shift(cond)
        return self._join(cond, (trans - t) * torch.exp(-log_s))


class Glow(nn.Module):
    """K flow steps of [ActNorm -> InvertibleLinear -> AffineCoupling], standard-normal prior.

    Parameters
    ----------
    dim : int
        Vector size d (>= 2).
    n_steps : int
        K, the number of steps (>= 1).
    hidden : int
        Hidden width of each coupling's MLP.
    seed : int
        Seeds the initial rotations of the invertible linear layers.

    Examples
    --------
    >>> flow = Glow(8, n_steps=2, hidden=16)
    >>> z, logdet = flow(torch.randn(5, 8))
    >>> nll = -flow.log_prob(torch.randn(5, 8)).mean()
    """

    def __init__(self, dim: int, n_steps: int = 4, hidden: int = 128, *, seed: int = 0):
        super().__init__()
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        gen = torch.Generator().manual_seed(int(seed))
        layers: list[nn.Module] = []
        for k in range(n_steps):
            layers += [
                ActNorm(dim),
                InvertibleLinear(dim, generator=gen),
                AffineCoupling(dim, hidden, flip=bool(k % 2)),
            ]
        self.dim = dim
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x) and log|det df/dx| per sample."""
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor) -> Tensor:
        """x = f^-1(z)."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = log N(f(x); 0, I) + log|det df/dx|, shape (batch,), in nats."""
        z, logdet = self(x)
        return standard_normal_log_prob(z) + logdet

    @property
    def is_initialized(self) -> bool:
        return all(bool(m.initialized) for m in self.layers if isinstance(m, ActNorm))


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) per row, shape (batch,)."""
    return -0.5 * (z.pow(2).sum(dim=1) + z.shape[1] * _LOG_2PI)


def gaussianity(z: np.ndarray) -> dict[str, float]:
    """How close latent points (n, d) are to N(0, I): per-dimension moments, summarised.

    Returns the mean |mean|, the min and max per-dimension std, the mean |skewness|, the mean
    |excess kurtosis| and the largest |off-diagonal correlation|; for N(0, I) and large n all
    are ~0 except the stds (~1).
    """
    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(axis=0)
    std = z.std(axis=0)
    c = (z - mean) / np.where(std > 0, std, 1.0)
    corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
    off = np.abs(corr - np.diag(np.diag(corr)))
    return {
        "mean_abs_mean": float(np.abs(mean).mean()),
        "min_std": float(std.min()),
        "max_std": float(std.max()),
        "mean_abs_skew": float(np.abs((c**3).mean(axis=0)).mean()),
        "mean_abs_excess_kurtosis": float(np.abs((c**4).mean(axis=0) - 3.0).mean()),
        "max_abs_corr": float(np.nanmax(off)) if z.shape[1] > 1 else 0.0,
    }
