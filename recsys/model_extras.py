"""What is computed once at training time and stored beside a model's weights.

Both ways of making a registry model (``recsys.training.train_from_config`` and the demo's
``recsys.defaults``) call :func:`compute_extras`, so every stored model carries the same things:

* steering data (``steering.*`` arrays + ``info["steering"]``): curated tag vocabulary, tag
  centroids in the latent space, item popularity (see :mod:`recsys.steering`);
* sample listeners (``listeners.indptr`` / ``listeners.indices``, and their held-out items in
  ``listeners.holdout_indptr`` / ``listeners.holdout_indices``): up to :data:`MAX_LISTENERS` test
  users of the split, so the app's "sample a listener" and its steering curves work without the
  data set (real data may be absent where the app runs);
* the latent map (``map.*`` arrays + ``info["map"]``, latent models only): a UMAP layout of items
  and training users with the tag centroids placed on it (see :mod:`recsys.projection`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data.dataset import Dataset
from .models.base import Recommender
from .steering.calibration import StepRule

logger = logging.getLogger("recsys")


#: Environment variable choosing how latent maps are laid out at training time: ``umap`` (default),
#: ``pca`` (a linear stand-in in milliseconds, no numba compilation: the test suite uses it) or ``none``.
MAP_ENV = "RECSYS_MAP_REDUCER"

#: Held-out listeners stored per model for the app's "sample a listener".
MAX_LISTENERS = 100

#: Validation users tune+post's latent step is chosen on at training time.
STEP_USERS = 200


def compute_extras(
    model: Recommender,
    train: Dataset,
    listeners: sp.csr_matrix | None = None,
    listeners_holdout: sp.csr_matrix | None = None,
    *,
    with_map: bool = True,
    reducer_factory: Callable[..., Any] | None = None,
    map_progress: Callable[[int, float, dict], None] | None = None,
    validation: tuple[sp.csr_matrix, sp.csr_matrix] | None = None,
    step_rule: StepRule | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(extras arrays, info entries) for ``Registry.save(extras=..., info={**info, ...})``.

    ``listeners`` / ``listeners_holdout``: fold-in histories and held-out items of test users (never
    training users), in the model's columns. ``with_map``: build the latent map (latent models);
    ``reducer_factory`` replaces UMAP (tests pass :func:`recsys.projection.pca_reducer`).
    ``validation``: (fold-in, held-out) of validation users; latent models then get tune+post's
    step rule chosen on them (:func:`recsys.steering.protocols.choose_step_rule`), unless
    ``step_rule`` gives it (chosen before: the demo's); else the default rule.
    """
    from .models.base import LatentRecommender
    from .steering import Steerer

    steerer = Steerer.from_training(model, train.interactions, train.items, step_rule=step_rule)
    if step_rule is None and validation is not None and steerer.latent and len(steerer.steerable_tags) >= 2:
        from .steering.protocols import ProtocolConfig, choose_step_rule

        rule, table = choose_step_rule(
            steerer,
            train.interactions,
            train.items,
            *validation,
            cfg=ProtocolConfig(n_users=STEP_USERS),
        )
        steerer.step_rule = rule
        logger.info(
            "tune+post: %s, chosen on validation users:\n%s", rule.describe(), table.head(8).round(4).to_string()
        )
    arrays, steering_info = steerer.to_registry()
    info: dict[str, Any] = {"steering": steering_info}
    if with_map and map_kind() != "none" and isinstance(model, LatentRecommender):
        from .map_view import user_tag_codes
        from .projection import build_map

        reducer_factory = reducer_factory or map_reducer_factory()

        centroids = steerer.centroids.centroids if steerer.centroids is not None else None
        latent_map = build_map(
            model, train.interactions, extra_points=centroids, reducer_factory=reducer_factory, progress=map_progress
        )
        arrays.update(latent_map.to_arrays())
        arrays["mapview.user_tag"] = user_tag_codes(steerer, latent_map, train.interactions)
        info["map"] = latent_map.describe()
    logger.info(
        "steering data: %d tags, %d with a centroid",
        len(steering_info["vocabulary"]),
        len(steering_info["centroid_tags"]),
    )
    if listeners is not None and listeners.shape[0]:
        arrays.update(listener_arrays(listeners, listeners_holdout))
    return arrays, info


def map_kind() -> str:
    """``$RECSYS_MAP_REDUCER``: umap (default), pca or none."""
    kind = os.environ.get(MAP_ENV, "umap").strip().lower()
    if kind not in ("umap", "pca", "none"):
        raise ValueError(f"${MAP_ENV} must be umap, pca or none, got {kind!r}")
    return kind


def map_reducer_factory() -> Callable[..., Any]:
    """The reducer factory ``$RECSYS_MAP_REDUCER`` asks for (UMAP unless it says pca)."""
    from .projection import pca_reducer, umap_reducer

    return pca_reducer if map_kind() == "pca" else umap_reducer


def listener_arrays(listeners: sp.csr_matrix, holdout: sp.csr_matrix | None = None) -> dict[str, np.ndarray]:
    """The first :data:`MAX_LISTENERS` non-empty rows of ``listeners`` (and ``holdout``) as CSR index arrays."""
    x = sp.csr_matrix(listeners)
    ok = np.diff(x.indptr) > 0
    if holdout is not None:
        ok &= np.diff(sp.csr_matrix(holdout).indptr) > 0
    rows = np.flatnonzero(ok)[:MAX_LISTENERS]
    x = x[rows]
    x.sort_indices()
    out = {"listeners.indptr": x.indptr.astype(np.int64), "listeners.indices": x.indices.astype(np.int64)}
    if x.nnz and not np.all(x.data == x.data[0]):  # an order (positions / times, larger = later): keep it
        out["listeners.order"] = x.data.astype(np.float64)
    if holdout is not None:
        h = sp.csr_matrix(holdout)[rows]
        out |= {
            "listeners.holdout_indptr": h.indptr.astype(np.int64),
            "listeners.holdout_indices": h.indices.astype(np.int64),
        }
    return out


def stored_listeners(extras: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The stored listeners' item columns, one array per listener (empty list if none were stored).

    In listening order (oldest first) when an order was stored (sequential models' test users),
    else ascending column order.
    """
    if "listeners.indptr" not in extras:
        return []
    ptr, idx = extras["listeners.indptr"], extras["listeners.indices"]
    order = extras.get("listeners.order")
    out = []
    for i in range(len(ptr) - 1):
        cols = idx[ptr[i] : ptr[i + 1]]
        if order is not None:
            cols = cols[np.argsort(order[ptr[i] : ptr[i + 1]], kind="stable")]
        out.append(cols)
    return out


def stored_listener_split(
    extras: dict[str, np.ndarray], n_items: int, *, ordered: bool = False
) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
    """(fold-in, held-out) CSR of the stored test listeners, or None when the model has none stored.

    0/1 values, or with ``ordered`` (for sequential models) the stored listening order as values
    (larger = later), where one was stored.
    """
    if "listeners.holdout_indptr" not in extras:
        return None

    def csr(ptr: np.ndarray, idx: np.ndarray, values: np.ndarray | None = None) -> sp.csr_matrix:
        data = np.ones(len(idx), np.float32) if values is None else values.astype(np.float32)
        return sp.csr_matrix((data, idx, ptr), shape=(len(ptr) - 1, n_items))

    return (
        csr(
            extras["listeners.indptr"], extras["listeners.indices"], extras.get("listeners.order") if ordered else None
        ),
        csr(extras["listeners.holdout_indptr"], extras["listeners.holdout_indices"]),
    )
