"""How each family is evaluated: fixed parameters and the small grid tried on validation users.

One table for ``python -m recsys evaluate`` (and benchmarks that want the same settings). A family's
entry is ``(fixed, points)``: ``fixed`` goes on top of the class defaults for every fit, and each
grid point (a dict, so that tied sizes can move together) is tried on the validation users of the
first seed's split; the best point is then used for every seed (:func:`recsys.evaluate.run_protocol`).

Torch families train with ``epochs`` as a cap and stop early on the validation users' NDCG@100
(``patience`` epochs without improvement; the best epoch is kept), as ``benchmarks/accuracy_zoo.py``
does. A family that is not listed gets the same early stopping when its ``__init__`` takes both
``epochs`` and ``patience``, and the class defaults otherwise.

Importing this module imports no model family (and so no torch).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

#: Torch families: ``epochs`` is a cap, training stops after ``patience`` epochs without a better
#: validation NDCG@100.
EARLY_STOPPING: dict[str, Any] = {"epochs": 100, "patience": 5}

#: EASE's L2 grid (the item-item ridge penalty); validation NDCG@100 chooses.
EASE_L2 = (5.0, 20.0, 50.0, 200.0, 500.0, 1000.0, 3000.0)


class FamilyTuning(NamedTuple):
    """``fixed`` parameters for every fit and the grid ``points`` tried on validation users."""

    fixed: dict[str, Any]
    points: tuple[dict[str, Any], ...] = ({},)


#: family -> (fixed parameters, grid points). Keep grids small: every point is one more fit.
TUNING: dict[str, FamilyTuning] = {
    "popularity": FamilyTuning({}),
    "ease": FamilyTuning({}, tuple({"l2": v} for v in EASE_L2)),
    "svd": FamilyTuning({}),
    "mlp": FamilyTuning(dict(EARLY_STOPPING)),
    "multvae": FamilyTuning(dict(EARLY_STOPPING)),
    "autoencoder": FamilyTuning(dict(EARLY_STOPPING)),
    "flow": FamilyTuning(dict(EARLY_STOPPING)),
    "mlp_flow": FamilyTuning(dict(EARLY_STOPPING)),
}


def stops_early(cls: type) -> bool:
    """Whether a model class trains in epochs with early stopping (its ``__init__`` takes both)."""
    names = inspect.signature(cls.__init__).parameters
    return "epochs" in names and "patience" in names


def family_tuning(family: str, cls: type | None = None) -> FamilyTuning:
    """The evaluation settings of ``family``: its :data:`TUNING` entry, else early stopping for a
    class that takes ``epochs`` and ``patience``, else the class defaults with no grid.

    ``cls`` is the family's class (default: :func:`recsys.models.get_model_class`); it is only
    looked at for families not in :data:`TUNING`.
    """
    if family in TUNING:
        fixed, points = TUNING[family]
        return FamilyTuning(dict(fixed), tuple(dict(p) for p in points))
    if cls is None:
        from .models import get_model_class

        cls = get_model_class(family)
    return FamilyTuning(dict(EARLY_STOPPING) if stops_early(cls) else {})
