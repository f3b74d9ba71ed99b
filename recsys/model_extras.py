"""What is computed once at training time and stored beside a model's weights.

Both ways of making a registry model (``recsys.training.train_from_config`` and the demo's
``recsys.defaults``) call :func:`compute_extras`, so every stored model carries the same things:

* steering data (``steering.*`` arrays + ``info["steering"]``): curated tag vocabulary, tag
  centroids in the latent space, item popularity (see :mod:`recsys.steering`);
* sample listeners (``listeners.indptr`` / ``listeners.indices``): the fold-in histories of up to
  :data:`MAX_LISTENERS` held-out test users, so the app's "sample a listener" works without the
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
    model: Recommender, train: Dataset, listeners: sp.csr_matrix | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(extras arrays, info entries) for ``Registry.save(extras=..., info={**info, ...})``.

    ``listeners``: fold-in histories of held-out users (never training users), in the model's columns.
    """
    from .steering import steering_registry_parts

    arrays, steering_info = steering_registry_parts(model, train.interactions, train.items)
    logger.info(
        "steering data: %d tags, %d with a centroid",
        len(steering_info["vocabulary"]),
        len(steering_info["centroid_tags"]),
    )
    if listeners is not None and listeners.shape[0]:
        arrays.update(listener_arrays(listeners))
    return arrays, {"steering": steering_info}


def listener_arrays(listeners: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The first :data:`MAX_LISTENERS` non-empty rows of ``listeners`` as CSR index arrays."""
    x = sp.csr_matrix(listeners)
    rows = np.flatnonzero(np.diff(x.indptr) > 0)[:MAX_LISTENERS]
    x = x[rows]
    return {"listeners.indptr": x.indptr.astype(np.int64), "listeners.indices": x.indices.astype(np.int64)}


def stored_listeners(extras: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The stored listeners' item columns, one array per listener (empty list if none were stored)."""
    if "listeners.indptr" not in extras:
        return []
    ptr, idx = extras["listeners.indptr"], extras["listeners.indices"]
    return [idx[ptr[i] : ptr[i + 1]] for i in range(len(ptr) - 1)]
