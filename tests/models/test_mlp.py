"""MLP family: the contract, depths h0..h6, losses and score kinds, early stopping, NaN guard."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import ModelFitError, get_model_class
from recsys.models.mlp import MLPNet, MLPRecommender
from tests.models.contract import RecommenderContract, contract_split


def small_mlp(**kw) -> MLPRecommender:
    params = dict(latent_dim=16, hidden_dim=64, hidden_layers=2, epochs=8, batch_size=64, lr=3e-3, seed=0)
    return MLPRecommender(**{**params, **kw})


class TestMLPContract(RecommenderContract):
    def make_model(self) -> MLPRecommender:
        return small_mlp()


def test_registered_under_its_family() -> None:
    assert get_model_class("mlp") is MLPRecommender


@pytest.mark.parametrize("h, n_linear", [(0, 2), (2, 4), (4, 6), (6, 8)])
def test_hidden_layers_follow_seed_depths(h: int, n_linear: int) -> None:
    import torch

    net = MLPNet(50, 8, 16, h, 0.5)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == n_linear
    assert linears[0].in_features == 50 and linears[-1].out_features == 50
    assert net.encode(torch.zeros(3, 50)).shape == (3, 8)


@pytest.mark.parametrize("loss, kind", [("bce", "sigmoid"), ("focal", "sigmoid"), ("multinomial", "softmax")])
def test_loss_sets_score_kind(loss: str, kind: str) -> None:
    split = contract_split()
    model = small_mlp(loss=loss, epochs=1).fit(split.train)
    assert model.score_kind == kind
    assert np.isfinite(model.score(split.test_foldin[:5])).all()


def test_training_log_and_early_stopping_restore_best() -> None:
    split = contract_split()
    calls = []
    model = small_mlp(epochs=40, patience=2, lr=2e-2).fit(
        split.train, validation=(split.val_foldin, split.val_holdout), progress=lambda *a: calls.append(a)
    )
    log = model.training_log_
    assert [r["epoch"] for r in log] == list(range(1, len(log) + 1))
    assert {"train_loss", "val_ndcg@100", "seconds"} <= set(log[0])
    assert len(calls) == len(log) and calls[-1][2]["val_ndcg@100"] == log[-1]["val_ndcg@100"]
    best = max(log, key=lambda r: r["val_ndcg@100"])
    assert model.best_epoch_ == best["epoch"]
    if len(log) < 40:  # stopped early: patience epochs after the best
        assert len(log) == best["epoch"] + 2
    from recsys.evaluate import evaluate_on_users

    now = evaluate_on_users(model, split.val_foldin, split.val_holdout)["ndcg@100"]
    assert now == pytest.approx(best["val_ndcg@100"], abs=1e-6)


def test_nan_loss_raises_model_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.models import torch_utils

    nan_loss = lambda logits, target: logits.sum() * float("nan")
    monkeypatch.setattr(torch_utils, "get_loss", lambda name, **kw: nan_loss)
    model = small_mlp(epochs=2)
    with pytest.raises(ModelFitError, match="diverged"):
        model.fit(contract_split().train)
    assert not model.is_fitted


def test_bad_params_are_refused_at_fit() -> None:
    split = contract_split()
    for kw, match in [
        ({"hidden_layers": 3}, "hidden_layers"),
        ({"loss": "hinge"}, "hinge"),
        ({"device": "tpu"}, "tpu"),
    ]:
        with pytest.raises(ValueError, match=match):
            small_mlp(**kw).fit(split.train)
