"""Sequential recommenders: models for which the order of a history matters.

The API
-------
``model.score_sequences(sequences, *, profiles=None, tags=None) -> (n, n_items)``
    ``sequences``: a list of item-index lists, **oldest first** (``[[12, 7, 99], []]``), an
    :class:`~recsys.data.sequences.OrderedHistories`, or a CSR batch (read in the fallback order
    below). ``profiles`` (a DataFrame, one row per sequence, the training data's user-feature
    columns) and ``tags`` (one list of tag names per sequence) are used by families that take
    metadata (DTNMR) and ignored by the others.
``score_sequences(model, sequences, ...)`` / ``recommend_sequences(model, sequences, k)``
    The library calls a page or script uses: they work for **every** model. A sequential model gets
    the order; any other model gets the same items as a 0/1 CSR row (order dropped), so a page can
    pass a person's picks, in the order they were made, to whichever model is selected.
``model.score(csr)`` (the :class:`~recsys.models.base.Recommender` interface)
    Still works: the CSR is turned into sequences by the **documented fallback order** of
    :meth:`OrderedHistories.from_csr <recsys.data.sequences.OrderedHistories.from_csr>`: stored
    values are the order key, larger = more recent, ties by ascending item index.

Why this choice: a CSR row is a set, and the registry, evaluation and steering code pass CSR
batches everywhere. Reading the stored value as the order key keeps that interface exact for
callers who care (``OrderedHistories.to_csr("position")`` or a CSR of timestamps round-trips),
degrades gracefully for weighted histories (play counts or stars put the most-played items in the
recent window, which is what a "what do you like most" list means), and is deterministic for 0/1
rows. Training uses the Dataset's timestamps (``OrderedHistories.from_dataset``) when it has them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.sequences import OrderedHistories, as_sequences
from .base import Recommender, top_k

logger = logging.getLogger("recsys")


class SequentialRecommender(Recommender):
    """Base of the order-aware families: implement ``_score_sequences(seqs, profiles, tags)``.

    ``_fit`` receives the training :class:`~recsys.data.Dataset`; get the ordered training
    sequences with ``OrderedHistories.from_dataset(train)``.
    """

    #: Whether the family uses ``profiles`` / ``tags`` (metadata) when scoring.
    uses_metadata: bool = False

    def score_sequences(
        self,
        sequences: Any,
        *,
        profiles: pd.DataFrame | None = None,
        tags: list[list[str]] | None = None,
    ) -> np.ndarray:
        """Scores (n, n_items), higher = better, for users given by ordered histories (oldest first)."""
        self._check_fitted()
        seqs = as_sequences(sequences, self.n_items_)
        if profiles is not None and len(profiles) != seqs.n_users:
            raise ValueError(f"{len(profiles)} profiles for {seqs.n_users} sequences")
        if tags is not None and len(tags) != seqs.n_users:
            raise ValueError(f"{len(tags)} tag lists for {seqs.n_users} sequences")
        out = np.asarray(self._score_sequences(seqs, profiles, tags), dtype=np.float32)
        if out.shape != (seqs.n_users, self.n_items_):
            raise RuntimeError(
                f"{type(self).__name__} returned shape {out.shape}, expected {(seqs.n_users, self.n_items_)}"
            )
        return out

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return self._score_sequences(OrderedHistories.from_csr(x), None, None)

    def _score_sequences(
        self, seqs: OrderedHistories, profiles: pd.DataFrame | None, tags: list[list[str]] | None
    ) -> np.ndarray:
        raise NotImplementedError


def load_device(device: str | None) -> Any:
    """The torch device to load stored weights on: the model's own, or the CPU (with a warning)
    when that one is absent here (a model trained on a GPU opened on a laptop)."""
    from .torch_utils import resolve_device, torch

    try:
        return resolve_device(device)
    except ValueError as e:
        logger.warning("%s; loading on the CPU instead", e)
        return torch.device("cpu")


def score_sequences(
    model: Recommender,
    sequences: Any,
    *,
    profiles: pd.DataFrame | None = None,
    tags: list[list[str]] | None = None,
) -> np.ndarray:
    """Scores (n, n_items) of any model for ordered histories (item-index lists, oldest first).

    Sequential models use the order (and ``profiles``/``tags`` if they take metadata); every other
    model scores the same items as a 0/1 CSR batch.

    >>> score_sequences(model, [[12, 7, 99]])          # doctest: +SKIP
    """
    model._check_fitted()
    if isinstance(model, SequentialRecommender):
        return model.score_sequences(sequences, profiles=profiles, tags=tags)
    seqs = as_sequences(sequences, model.n_items_)
    return model.score(seqs.to_csr("binary"))


def recommend_sequences(
    model: Recommender,
    sequences: Any,
    k: int = 10,
    *,
    profiles: pd.DataFrame | None = None,
    tags: list[list[str]] | None = None,
    exclude_seen: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores per sequence, best first; items of the sequence excluded."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model._check_fitted()
    seqs = as_sequences(sequences, model.n_items_)
    scores = score_sequences(model, seqs, profiles=profiles, tags=tags)
    return top_k(scores, k, exclude=seqs.to_csr("binary") if exclude_seen else None)
