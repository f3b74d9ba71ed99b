"""Reconstruction losses of the neural families, all ``loss(logits, target) -> scalar tensor``.

Every loss sums over items and averages over the users of the batch (the per-user likelihood of
Liang et al. 2018), so losses of different batch sizes compare and the KL term of the VAE has the
right weight against them.

* ``bce``: independent Bernoulli per item (sigmoid cross-entropy on logits). Scores are sigmoid logits.
* ``multinomial``: ``-sum_i x_i log softmax(logits)_i`` (Mult-VAE/Mult-DAE). Scores are softmax logits.
* ``focal``: Lin et al. 2017 focal loss on sigmoid logits, ``-(1 - p_t)^gamma log p_t``, which
  down-weights the many easy negatives; ``gamma = 0`` is BCE. Scores are sigmoid logits.
* ``mse``: squared error of ``sigmoid(logits)`` against the target (the seed 001 AutoEncoder).

The sigmoid losses take ``pos_weight``, a weight on the user's own items (the negatives keep 1):
on implicit data with ~1 % positives they otherwise stay for many epochs at the popularity
solution (every user gets the same scores).
* :func:`kl_normal`: KL(N(mu, sigma^2) || N(0, I)) per user, averaged, for the VAE.
* ``sampled_softmax`` (:func:`sampled_softmax_loss`): the multinomial loss with the partition
  function estimated from the user's own items plus a shared set of sampled negatives, each
  corrected by ``log(n_negatives * q_j)`` (log-Q), so a step costs O(interactions + batch x
  negatives) rather than O(batch x items). It takes the last hidden layer and the output weights
  instead of full logits; scores are softmax logits, as for ``multinomial``.

``get_loss(name, **kw)`` returns the callable; ``score_kind_for(name)`` says how scores turn into
probabilities ("sigmoid" or "softmax"), which the postfilter needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Score kinds in a fixed order, so a model can store its kind as an integer array.
SCORE_KINDS = ("sigmoid", "softmax", "similarity")


def _positive_weights(target: torch.Tensor, pos_weight: float) -> torch.Tensor | float:
    return 1.0 if pos_weight == 1.0 else 1.0 + (pos_weight - 1.0) * target


def bce_loss(logits: torch.Tensor, target: torch.Tensor, *, pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy with logits, summed over items, mean over users."""
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (_positive_weights(target, pos_weight) * ce).sum(-1).mean()


def multinomial_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multinomial log-likelihood (negated): ``-sum_i x_i log softmax(logits)_i``, mean over users."""
    return -(F.log_softmax(logits, dim=-1) * target).sum(-1).mean()


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    pos_weight: float = 1.0,
) -> torch.Tensor:
    """Focal loss on sigmoid logits, summed over items, mean over users.

    ``alpha`` (optional) weighs positives by alpha and negatives by 1 - alpha.
    """
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    loss = (1 - p_t).pow(gamma) * ce
    if alpha is not None:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return (_positive_weights(target, pos_weight) * loss).sum(-1).mean()


def mse_loss(logits: torch.Tensor, target: torch.Tensor, *, pos_weight: float = 1.0) -> torch.Tensor:
    """Squared error of ``sigmoid(logits)``, summed over items, mean over users."""
    se = (torch.sigmoid(logits) - target).pow(2)
    return (_positive_weights(target, pos_weight) * se).sum(-1).mean()


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dims, mean over users."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(-1).mean()


def sampled_softmax_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
    negatives: torch.Tensor,
    log_expected: torch.Tensor,
    accidental: torch.Tensor,
) -> torch.Tensor:
    """Multinomial loss with a sampled partition function (log-Q corrected), mean over users.

    For user u with items P_u (weights x_ui) and output logits o_uj = h_u . w_j + b_j::

        loss_u = -sum_{i in P_u} x_ui o_ui + (sum_i x_ui) log Z_u
        Z_u    = sum_{i in P_u} exp(o_ui) + sum_{n in N, n not in P_u} exp(o_un - log(|N| q_n))

    N (``negatives``, drawn with replacement from q) is shared by the batch; ``log_expected`` is
    log(|N| q_n), the expected number of draws of n, so the second sum is an unbiased estimate of
    the sum over all of u's non-items. ``accidental`` (batch, |N>, bool) marks negatives that are
    one of the row's own items; they are left out (they are already in the first sum). With N = every
    item once and ``log_expected`` = 0 (uniform q: |N| q_n = 1), Z_u is the full softmax's partition function
    and the loss equals :func:`multinomial_loss` exactly.

    Parameters
    ----------
    hidden : (batch, h) the decoder's last hidden layer. weight : (n_items, h), bias : (n_items,)
        the output layer. rows, cols, values : (nnz,) the batch's items (row in the batch, item,
        weight). negatives : (n_neg,) item indices. log_expected : (n_neg,). accidental : (batch, n_neg).
    """
    pos = (hidden[rows] * weight[cols]).sum(-1) + bias[cols]
    neg = hidden @ weight[negatives].T + bias[negatives] - log_expected
    neg = neg.masked_fill(accidental, -math.inf)
    n = hidden.shape[0]
    with torch.no_grad():  # a per-row shift for a stable log-sum-exp; its value does not change the loss
        shift = neg.max(dim=1).values
        shift = shift.scatter_reduce(0, rows, pos, reduce="amax", include_self=True)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    total = torch.exp(neg - shift[:, None]).sum(1)
    total = total.index_add(0, rows, torch.exp(pos - shift[rows]))
    log_z = shift + torch.log(total)
    mass = torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    fit = torch.zeros(n, dtype=pos.dtype, device=pos.device).index_add(0, rows, values * pos)
    return (mass * log_z - fit).mean()


_LOSSES: dict[str, LossFn] = {
    "bce": bce_loss,
    "multinomial": multinomial_loss,
    "focal": focal_loss,
    "mse": mse_loss,
}
#: Losses that need more than (logits, target): the family computes them itself (no get_loss).
SAMPLED_LOSSES = ("sampled_softmax",)
_SCORE_KIND = {
    "bce": "sigmoid",
    "multinomial": "softmax",
    "focal": "sigmoid",
    "mse": "sigmoid",
    "sampled_softmax": "softmax",
}


def check_loss(name: str, allowed: tuple[str, ...] = ("bce", "multinomial", "focal")) -> str:
    """Validate a loss name against the ones a family accepts; returns it."""
    if name not in allowed:
        raise ValueError(f"unknown loss {name!r}: use one of {list(allowed)}")
    return name


_LOSS_PARAMS = {
    "bce": ("pos_weight",),
    "multinomial": (),
    "focal": ("gamma", "alpha", "pos_weight"),
    "mse": ("pos_weight",),
}


def get_loss(name: str, **params: float) -> LossFn:
    """The loss callable for ``name`` ("bce", "multinomial", "focal", "mse") with its parameters.

    ``pos_weight`` (bce, focal, mse) multiplies the loss of the user's items: with ~1 % positives
    the unweighted sigmoid losses sit on the popularity solution for many epochs.
    ``gamma`` and ``alpha`` are the focal loss's.
    """
    check_loss(name, tuple(_LOSSES))
    bad = sorted(set(params) - set(_LOSS_PARAMS[name]))
    if bad:
        raise ValueError(f"loss {name!r} takes no parameters {bad}; it takes {list(_LOSS_PARAMS[name])}")
    if not params.get("gamma", 0.0) >= 0:
        raise ValueError(f"focal loss gamma must be >= 0, got {params['gamma']}")
    if not params.get("pos_weight", 1.0) > 0:
        raise ValueError(f"pos_weight must be > 0, got {params['pos_weight']}")
    return partial(_LOSSES[name], **params) if params else _LOSSES[name]


def score_kind_for(name: str) -> str:
    """ "softmax" for the multinomial losses (full or sampled), "sigmoid" for the others."""
    check_loss(name, tuple(_SCORE_KIND))
    return _SCORE_KIND[name]


def score_kind_array(kind: str) -> np.ndarray:
    """A score kind as a one-element int array (registry state holds only arrays)."""
    return np.asarray([SCORE_KINDS.index(kind)], dtype=np.int64)


def score_kind_from_array(arr: np.ndarray) -> str:
    """Inverse of :func:`score_kind_array`."""
    code = int(np.asarray(arr).ravel()[0])
    if not 0 <= code < len(SCORE_KINDS):
        raise ValueError(f"stored score kind code {code} is not one of {list(range(len(SCORE_KINDS)))}")
    return SCORE_KINDS[code]
