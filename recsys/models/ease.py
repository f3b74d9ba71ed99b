"""EASE (Steck 2019): a closed-form item-item model, the strong linear yardstick.

    B = argmin ||X - X B||^2 + lambda ||B||^2  s.t. diag(B) = 0
    P = (X^T X + lambda I)^-1,  B = -P / diag(P),  diag(B) = 0

Memory and time grow with items squared (a dense n_items x n_items matrix): fine up to ~20k items.
Above ``MAX_ITEMS`` (30k: a 7 GB float64 Gram matrix plus its inverse) ``fit`` refuses with
:class:`TooManyItemsError`, and ``run_protocol`` skips EASE with a warning; the yardsticks there
are the low-rank DLAE (``dlae``) and SVD.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import ModelFitError, Recommender, register

#: Largest catalogue EASE fits (dense n_items^2 float64 Gram matrix and inverse: 14 GB at 30k).
MAX_ITEMS = 30_000


class TooManyItemsError(ModelFitError):
    """EASE on a catalogue above :data:`MAX_ITEMS` items."""


def too_many_items_message(n_items: int) -> str:
    gb = 2 * 8 * n_items**2 / 1e9
    return (
        f"EASE is skipped above {MAX_ITEMS:,} items: this catalogue has {n_items:,}, and its dense item-item "
        f"Gram matrix and inverse would need about {gb:,.0f} GB; use the low-rank DLAE (dlae) or svd as the yardstick"
    )


@register("ease")
class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder.

    Parameters
    ----------
    l2 : float
        lambda, the L2 regularisation on the item-item weights (chosen on validation users).

    Attributes
    ----------
    B_ : ndarray, shape (n_items, n_items)
        Item-item weights with a zero diagonal; scores are ``X @ B_``.

    References
    ----------
    Steck, H. "Embarrassingly Shallow Autoencoders for Sparse Data." WWW 2019.
    """

    def __init__(self, *, l2: float = 500.0):
        self.l2 = l2

    def _fit(self, train: Dataset, validation, progress) -> None:
        if not self.l2 > 0:
            raise ValueError(f"l2 must be > 0, got {self.l2}")
        if train.n_items > MAX_ITEMS:
            raise TooManyItemsError(too_many_items_message(train.n_items))
        x = train.binary().astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        # Cholesky inverse of the SPD Gram matrix: ~2x faster than a general inverse
        c, low = scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False)
        p = scipy.linalg.cho_solve((c, low), np.eye(gram.shape[0]), overwrite_b=True, check_finite=False)
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.B_ = b.astype(np.float32)

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        x = x.copy()
        x.data[:] = 1.0
        return np.asarray(x @ self.B_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.B_ = arrays["B"]
