"""What is computed once at training time and stored beside a model's weights.

Both ways of making a registry model (``recsys.training.train_from_config`` and the demo's
``recsys.defaults``) call :func:`compute_extras`, so every stored model carries the same things:

* steering data (``steering.*`` arrays + ``info["steering"]``): curated tag vocabulary, tag
  centroids in the latent space, item popularity (see :mod:`recsys.steering`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .data.dataset import Dataset
from .models.base import Recommender

logger = logging.getLogger("recsys")


def compute_extras(model: Recommender, train: Dataset) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(extras arrays, info entries) for ``Registry.save(extras=..., info={**info, ...})``."""
    from .steering import steering_registry_parts

    arrays, steering_info = steering_registry_parts(model, train.interactions, train.items)
    logger.info(
        "steering data: %d tags, %d with a centroid",
        len(steering_info["vocabulary"]),
        len(steering_info["centroid_tags"]),
    )
    return arrays, {"steering": steering_info}
