"""MLP+Flow family: the contract, two-stage training, a Gaussian latent over the MLP's bottleneck."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from recsys.models import get_model_class
from recsys.models.mlp import MLPNet, MLPRecommender
from recsys.models.mlp_flow import MLPFlowRecommender
from tests.models.contract import RecommenderContract, contract_split

MLP_PARAMS = dict(latent_dim=16, hidden_dim=64, hidden_layers=2, epochs=8, batch_size=64, lr=3e-3, seed=0)


def small_mlp_flow(**kw) -> MLPFlowRecommender:
    params = dict(MLP_PARAMS, n_flow_steps=3, coupling_hidden=32, flow_epochs=20)
    return MLPFlowRecommender(**{**params, **kw})


class TestMLPFlowContract(RecommenderContract):
    def make_model(self) -> MLPFlowRecommender:
        return small_mlp_flow()


@pytest.fixture(scope="module")
def fitted() -> MLPFlowRecommender:
    split = contract_split()
    return small_mlp_flow().fit(split.train, validation=(split.val_foldin, split.val_holdout))


def test_registered_under_its_family() -> None:
    assert get_model_class("mlp_flow") is MLPFlowRecommender


def test_reuses_the_mlp_network(fitted: MLPFlowRecommender) -> None:
    assert isinstance(fitted.module_.mlp, MLPNet)
    assert fitted.latent_dim == 16


def test_scores_equal_the_plain_mlp_with_the_same_seed(fitted: MLPFlowRecommender) -> None:
    """Stage 1 is exactly the MLP family's training, and the flow does not change the scores."""
    split = contract_split()
    mlp = MLPRecommender(**MLP_PARAMS).fit(split.train, validation=(split.val_foldin, split.val_holdout))
    np.testing.assert_allclose(fitted.score(split.test_foldin), mlp.score(split.test_foldin), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fitted.bottleneck(split.test_foldin), mlp.encode(split.test_foldin), atol=1e-5)


def test_latent_is_standard_normal_on_training_users(fitted: MLPFlowRecommender) -> None:
    x = contract_split().train.interactions
    z = fitted.encode(x)
    assert np.abs(z.mean(axis=0)).max() < 0.3
    std = z.std(axis=0)
    assert 0.6 < std.min() and std.max() < 1.4, std
    codes = fitted.bottleneck(x)
    assert np.abs(np.log(codes.std(axis=0))).mean() > 0.3  # the bottleneck itself is not unit-scale
    assert fitted.latent_stats_["mean_abs_skew"] < 0.5


def test_decode_inverts_encode_on_training_users(fitted: MLPFlowRecommender) -> None:
    x = contract_split().train.interactions
    scores = fitted.score(x)
    np.testing.assert_allclose(fitted.decode(fitted.encode(x)), scores, atol=1e-4 * np.abs(scores).max())


def test_training_log_has_mlp_then_flow_stage(fitted: MLPFlowRecommender) -> None:
    log = fitted.training_log_
    stages = [r["stage"] for r in log]
    n_mlp = stages.count("mlp")
    assert 0 < n_mlp < len(log) and stages == ["mlp"] * n_mlp + ["flow"] * (len(log) - n_mlp)
    assert [r["epoch"] for r in log] == list(range(1, len(log) + 1))
    flow_rows = log[n_mlp:]
    assert flow_rows[-1]["flow_nll"] < flow_rows[0]["flow_nll"]
    assert all(np.isfinite(r["val_flow_nll"]) for r in flow_rows)
    assert fitted.best_epoch_ <= n_mlp


def test_state_round_trip_keeps_latent(fitted: MLPFlowRecommender) -> None:
    state = fitted.state_dict()
    assert state["net.flow.layers.0.initialized"].tolist() == [1]
    assert any(k.startswith("net.mlp.encoder.") for k in state)
    again = MLPFlowRecommender(**fitted.get_params()).load_state_dict(state)
    x = contract_split().test_foldin
    np.testing.assert_array_equal(again.encode(x), fitted.encode(x))


def test_flow_without_validation_runs_all_epochs() -> None:
    model = small_mlp_flow(epochs=2, flow_epochs=3, loss="bce").fit(contract_split().train)
    assert [r["stage"] for r in model.training_log_] == ["mlp"] * 2 + ["flow"] * 3
    assert model.score_kind == "sigmoid"


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"latent_dim": 1}, "latent_dim"),
        ({"hidden_layers": 3}, "hidden_layers"),
        ({"flow_epochs": 0}, "flow_epochs"),
        ({"flow_subsample": 1.5}, "flow_subsample"),
        ({"loss": "mse"}, "loss"),
    ],
)
def test_bad_params_are_refused_at_fit(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        small_mlp_flow(**kw).fit(contract_split().train)


def _fitted_mlp() -> MLPRecommender:
    split = contract_split()
    return MLPRecommender(**MLP_PARAMS).fit(split.train, validation=(split.val_foldin, split.val_holdout))


def test_reusing_a_fitted_mlp_gives_the_model_a_full_fit_gives(fitted: MLPFlowRecommender, tmp_path) -> None:
    """Stage 1 taken from a fitted "mlp" model (here: after a registry round trip, as the demo's build
    does): the same weights, flow and stage-1 log as training both stages, without training stage 1."""
    from recsys.registry import Registry

    split = contract_split()
    registry = Registry(tmp_path)
    registry.save(_fitted_mlp(), dataset=split.train, model_id="mlp-small")
    stored = registry.load("mlp-small").model
    assert getattr(stored, "best_epoch_", None) is None  # the registry keeps the log, not best_epoch_
    reused = small_mlp_flow().reuse_mlp(stored).fit(split.train, validation=(split.val_foldin, split.val_holdout))
    full, again = fitted.module_.state_dict(), reused.module_.state_dict()
    assert full.keys() == again.keys()
    for name in full:
        np.testing.assert_allclose(again[name].numpy(), full[name].numpy(), atol=1e-6, err_msg=name)
    assert reused.best_epoch_ == fitted.best_epoch_
    drop = ("seconds",)
    strip = lambda log: [{k: v for k, v in r.items() if k not in drop} for r in log]
    assert strip(reused.training_log_) == strip(fitted.training_log_)
    np.testing.assert_allclose(reused.encode(split.test_foldin), fitted.encode(split.test_foldin), atol=1e-5)
    # the reuse is spent by that fit: a refit trains stage 1 again
    assert reused._reused_mlp is None


def test_reuse_refuses_an_mlp_trained_differently() -> None:
    mlp = _fitted_mlp()
    with pytest.raises(ValueError, match=r"hidden_dim=64 \(here 32\)"):
        small_mlp_flow(hidden_dim=32).reuse_mlp(mlp)
    with pytest.raises(ValueError, match="fitted MLPRecommender"):
        small_mlp_flow().reuse_mlp(MLPRecommender(**MLP_PARAMS))
    other = contract_split()
    with pytest.raises(ValueError, match="items"):
        from recsys.data.synthetic import generate_synthetic

        wider = generate_synthetic(n_users=120, n_items=other.train.n_items + 7, n_artists=20, n_tags=5, seed=1)
        small_mlp_flow().reuse_mlp(mlp).fit(wider)
