"""Popularity: every user gets the most-listened items. The floor every model must clear."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import Recommender, register


@register("popularity")
class Popularity(Recommender):
    """Scores each item by the number of training users who interacted with it.

    Parameters
    ----------
    weighted : bool
        Count listens (sum of weights) instead of distinct users.

    Attributes
    ----------
    item_counts_ : ndarray, shape (n_items,)
    """

    def __init__(self, *, weighted: bool = False):
        self.weighted = weighted

    def _fit(self, train: Dataset, validation, progress) -> None:
        x = train.interactions if self.weighted else train.binary()
        self.item_counts_ = np.asarray(x.sum(axis=0), dtype=np.float32).ravel()

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, x.shape).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_counts_ = arrays["item_counts"]
