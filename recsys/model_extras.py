"""What is computed once at training time and stored beside a model's weights.

Both ways of making a registry model (``recsys.training.train_from_config`` and the demo's
``recsys.defaults``) call :func:`compute_extras`, so every stored model carries the same things:

* steering data (``steering.*`` arrays + ``info["steering"]``): curated tag vocabulary, tag
  centroids in the latent space, item popularity (see :mod:`recsys.steering`);
* sample listeners (``listeners.indptr`` / ``listeners.indices``, and their held-out items in
  ``listeners.holdout_indptr`` / ``listeners.holdout_indices``): up to :data:`MAX_LISTENERS` test
  users of the split, so the app's "sample a listener" and its steering curves work without the
  data set (real data may be absent where the app runs).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data.dataset import Dataset
from .models.base import Recommender

logger = logging.getLogger("recsys")


#: Held-out listeners stored per model for the app's "sample a listener".
MAX_LISTENERS = 100


def compute_extras(
    model: Recommender,
    train: Dataset,
    listeners: sp.csr_matrix | None = None,
    listeners_holdout: sp.csr_matrix | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(extras arrays, info entries) for ``Registry.save(extras=..., info={**info, ...})``.

    ``listeners`` / ``listeners_holdout``: fold-in histories and held-out items of test users (never
    training users), in the model's columns.
    """
    from .steering import steering_registry_parts

    arrays, steering_info = steering_registry_parts(model, train.interactions, train.items)
    logger.info(
        "steering data: %d tags, %d with a centroid",
        len(steering_info["vocabulary"]),
        len(steering_info["centroid_tags"]),
    )
    if listeners is not None and listeners.shape[0]:
        arrays.update(listener_arrays(listeners, listeners_holdout))
    return arrays, {"steering": steering_info}


def listener_arrays(listeners: sp.csr_matrix, holdout: sp.csr_matrix | None = None) -> dict[str, np.ndarray]:
    """The first :data:`MAX_LISTENERS` non-empty rows of ``listeners`` (and ``holdout``) as CSR index arrays."""
    x = sp.csr_matrix(listeners)
    ok = np.diff(x.indptr) > 0
    if holdout is not None:
        ok &= np.diff(sp.csr_matrix(holdout).indptr) > 0
    rows = np.flatnonzero(ok)[:MAX_LISTENERS]
    x = x[rows]
    out = {"listeners.indptr": x.indptr.astype(np.int64), "listeners.indices": x.indices.astype(np.int64)}
    if holdout is not None:
        h = sp.csr_matrix(holdout)[rows]
        out |= {
            "listeners.holdout_indptr": h.indptr.astype(np.int64),
            "listeners.holdout_indices": h.indices.astype(np.int64),
        }
    return out


def stored_listeners(extras: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The stored listeners' item columns, one array per listener (empty list if none were stored)."""
    if "listeners.indptr" not in extras:
        return []
    ptr, idx = extras["listeners.indptr"], extras["listeners.indices"]
    return [idx[ptr[i] : ptr[i + 1]] for i in range(len(ptr) - 1)]


def stored_listener_split(extras: dict[str, np.ndarray], n_items: int) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    """(fold-in, held-out) CSR of the stored test listeners, or None when the model has none stored."""
    if "listeners.holdout_indptr" not in extras:
        return None

    def csr(ptr: np.ndarray, idx: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(idx), np.float32), idx, ptr), shape=(len(ptr) - 1, n_items))

    return (
        csr(extras["listeners.indptr"], extras["listeners.indices"]),
        csr(extras["listeners.holdout_indptr"], extras["listeners.holdout_indices"]),
    )
