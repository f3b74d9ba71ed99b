"""Model families, one module each, all behind :mod:`recsys.models.base`.

Importing this package registers the families that need no optional dependency; torch-based
families register when their module is imported (``recsys.models.load_all()`` imports them all).
"""

from __future__ import annotations

import importlib

from .base import (
    MODEL_CLASSES,
    LatentRecommender,
    ModelFitError,
    NotFittedError,
    Recommender,
    register,
)
from .ease import EASE
from .popularity import Popularity

#: family name -> module that defines it (imported lazily: torch is heavy).
FAMILY_MODULES: dict[str, str] = {
    "popularity": "recsys.models.popularity",
    "ease": "recsys.models.ease",
    "mlp": "recsys.models.mlp",
    "multvae": "recsys.models.multvae",
    "dlae": "recsys.models.dlae",
    "recvae": "recsys.models.recvae",
    "autoencoder": "recsys.models.autoencoder",
    "svd": "recsys.models.svd",
    "flow": "recsys.models.flow",
    "mlp_flow": "recsys.models.mlp_flow",
    "funnel": "recsys.models.funnel",
    "seqvae": "recsys.models.seqvae",
    "bert4rec": "recsys.models.bert4rec",
    "dtnmr": "recsys.models.dtnmr",
    "group_popularity": "recsys.models.group_popularity",
}


def get_model_class(family: str) -> type[Recommender]:
    """The class for a family name; imports its module on first use."""
    if family not in MODEL_CLASSES:
        module = FAMILY_MODULES.get(family)
        if module is None:
            raise KeyError(f"unknown model family {family!r}; known: {sorted(FAMILY_MODULES)}")
        importlib.import_module(module)
    return MODEL_CLASSES[family]


def load_all() -> dict[str, type[Recommender]]:
    """Import every family module and return the name -> class map."""
    for family in FAMILY_MODULES:
        get_model_class(family)
    return dict(MODEL_CLASSES)


__all__ = [
    "EASE",
    "FAMILY_MODULES",
    "MODEL_CLASSES",
    "LatentRecommender",
    "ModelFitError",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "get_model_class",
    "load_all",
    "register",
]
