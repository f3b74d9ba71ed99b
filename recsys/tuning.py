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


#: family -> (fixed parameters, grid points). The same table serves ``python -m recsys evaluate`` and
#: ``benchmarks/accuracy_zoo.py``: each data set chooses its point on its own validation users.
#: Every point is one more fit, so grids stay small and name the levers each family's authors
#: report (sizes move together where the papers tie them).
TUNING: dict[str, FamilyTuning] = {
    "popularity": FamilyTuning({}),
    "ease": FamilyTuning({}, tuple({"l2": v} for v in EASE_L2)),
    "svd": FamilyTuning({}, ({"n_factors": 64}, {"n_factors": 128})),
    "mlp": FamilyTuning(
        dict(EARLY_STOPPING),
        ({"latent_dim": 64, "hidden_dim": 256, "dropout": 0.5}, {"latent_dim": 200, "hidden_dim": 600, "dropout": 0.5}),
    ),
    # Mult-VAE's levers (Liang et al. 2018; the RecVAE paper's baselines): the paper's batch 500, a
    # lower KL cap, annealing over a fixed 2,000 steps, weight decay.
    "multvae": FamilyTuning(
        dict(EARLY_STOPPING),
        (
            {"beta_max": 0.2, "dropout": 0.5},
            {"beta_max": 0.2, "dropout": 0.5, "total_anneal_steps": 2000},
            {"beta_max": 0.2, "dropout": 0.5, "batch_size": 500},
            {"beta_max": 0.1, "dropout": 0.5, "batch_size": 500},
            {"beta_max": 0.1, "dropout": 0.5, "weight_decay": 1e-5},
        ),
    ),
    # RecVAE's KL weight per history item: the paper's 0.005, and half / double it.
    "recvae": FamilyTuning(dict(EARLY_STOPPING), ({"gamma": 0.0025}, {"gamma": 0.005}, {"gamma": 0.01})),
    # Low-rank DLAE: the size of the latent space, the dropout its penalty stands for, and the extra L2
    # (dense data such as MovieLens wants more of it, as EASE does). Rank 2048 was added after the
    # synthetic data's validation users still rose from 256 to 1024 dimensions (0.3635 -> 0.3788), and
    # the decoder refitted with emphasis on dropped items (EDLAE's lever, ``emphasis``) at rank 1024;
    # with emphasis the extra L2 matters more (synthetic validation: 0.3797 / 0.3850 / 0.3741 at l2 10 / 50 / 200).
    "dlae": FamilyTuning(
        {},
        (
            {"latent_dim": 256, "dropout": 0.5, "l2": 10.0},
            {"latent_dim": 1024, "dropout": 0.5, "l2": 10.0},
            {"latent_dim": 1024, "dropout": 0.67, "l2": 10.0},
            {"latent_dim": 1024, "dropout": 0.8, "l2": 10.0},
            {"latent_dim": 1024, "dropout": 0.67, "l2": 200.0},
            {"latent_dim": 1024, "dropout": 0.8, "l2": 200.0},
            {"latent_dim": 2048, "dropout": 0.67, "l2": 10.0},
            {"latent_dim": 2048, "dropout": 0.8, "l2": 10.0},
            {"latent_dim": 2048, "dropout": 0.67, "l2": 200.0},
            {"latent_dim": 1024, "dropout": 0.67, "l2": 10.0, "emphasis": True},
            {"latent_dim": 1024, "dropout": 0.8, "l2": 10.0, "emphasis": True},
            {"latent_dim": 1024, "dropout": 0.67, "l2": 50.0, "emphasis": True},
            {"latent_dim": 1024, "dropout": 0.67, "l2": 200.0, "emphasis": True},
        ),
    ),
    "autoencoder": FamilyTuning(
        dict(EARLY_STOPPING),
        (
            {"loss": "mse", "hidden_dim1": 128, "hidden_dim2": 64},
            {"loss": "multinomial", "hidden_dim1": 600, "hidden_dim2": 200, "lr": 1e-3, "batch_size": 128},
        ),
    ),
    "flow": FamilyTuning(dict(EARLY_STOPPING), ({"embedding_dim": 64}, {"embedding_dim": 128})),
    # MLP+flow scores with its MLP: benchmarks reuse the MLP's choice instead of refitting the grid.
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
