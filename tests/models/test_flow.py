"""Flow family: the contract, a Gaussian latent, training stages, persisted flow state."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from recsys.evaluate import evaluate_on_users
from recsys.models import ModelFitError, get_model_class
from recsys.models.flow import FlowRecommender
from tests.models.contract import RecommenderContract, contract_split


def small_flow(**kw) -> FlowRecommender:
    params = dict(
        embedding_dim=16,
        n_flow_steps=3,
        coupling_hidden=32,
        epochs=12,
        flow_epochs=15,
        batch_size=64,
        lr=1e-2,
        seed=0,
    )
    return FlowRecommender(**{**params, **kw})


class TestFlowContract(RecommenderContract):
    def make_model(self) -> FlowRecommender:
        return small_flow()


@pytest.fixture(scope="module")
def fitted() -> FlowRecommender:
    split = contract_split()
    return small_flow().fit(split.train, validation=(split.val_foldin, split.val_holdout))


def test_registered_under_its_family() -> None:
    assert get_model_class("flow") is FlowRecommender


def test_latent_is_standard_normal_on_training_users(fitted: FlowRecommender) -> None:
    x = contract_split().train.interactions
    z = fitted.encode(x)
    assert np.abs(z.mean(axis=0)).max() < 0.3
    std = z.std(axis=0)
    assert 0.6 < std.min() and std.max() < 1.4, std
    # the flow does the work: the pooled vectors themselves are far from unit scale
    u_std = fitted.user_vectors(x).std(axis=0)
    assert np.abs(np.log(u_std)).mean() > 0.5, u_std
    stats = fitted.latent_stats_
    assert stats["mean_abs_mean"] < 0.2 and stats["mean_abs_skew"] < 0.5


def test_decode_inverts_encode_on_training_users(fitted: FlowRecommender) -> None:
    x = contract_split().train.interactions
    scores = fitted.score(x)
    np.testing.assert_allclose(fitted.decode(fitted.encode(x)), scores, atol=1e-4 * np.abs(scores).max())


def test_scores_are_the_pooled_embedding_dot_products(fitted: FlowRecommender) -> None:
    split = contract_split()
    net = fitted.module_
    emb = net.embeddings.detach().numpy()
    bias = net.item_bias.detach().numpy()
    x = split.test_foldin.toarray() > 0
    u = x @ emb / np.maximum(x.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(fitted.user_vectors(split.test_foldin), u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted.score(split.test_foldin), u @ emb.T + bias, rtol=1e-4, atol=1e-4)


def test_training_log_has_joint_then_flow_stage(fitted: FlowRecommender) -> None:
    log = fitted.training_log_
    stages = [r["stage"] for r in log]
    n_joint = stages.count("joint")
    assert stages == ["joint"] * n_joint + ["flow"] * (len(log) - n_joint) and n_joint < len(log)
    assert [r["epoch"] for r in log] == list(range(1, len(log) + 1))
    assert all(np.isfinite(r["flow_nll"]) and np.isfinite(r["rec_loss"]) for r in log[:n_joint])
    flow_rows = log[n_joint:]
    # the flow stage keeps the flow of its best validation NLL
    best = min(r["val_flow_nll"] for r in flow_rows)
    assert flow_rows[0]["train_loss"] > min(r["train_loss"] for r in flow_rows)
    assert fitted.best_epoch_ <= n_joint
    val_ndcg = evaluate_on_users(fitted, contract_split().val_foldin, contract_split().val_holdout)["ndcg@100"]
    assert val_ndcg == pytest.approx(max(r["val_ndcg@100"] for r in log[:n_joint]), abs=1e-6)
    import torch

    from recsys.models.flow import flow_nll_per_dim

    val_u = fitted.user_vectors(contract_split().val_foldin)
    with torch.no_grad():
        now = float(flow_nll_per_dim(fitted.module_.flow.eval(), torch.from_numpy(val_u)))
    assert now == pytest.approx(best, abs=1e-4)


def test_state_holds_lu_factors_and_actnorm_flags(fitted: FlowRecommender) -> None:
    state = fitted.state_dict()
    for key in ("perm", "lower", "upper", "log_s", "sign_s"):
        assert f"net.flow.layers.1.{key}" in state
    for k in range(3):
        flag = state[f"net.flow.layers.{3 * k}.initialized"]
        assert flag.tolist() == [1]
        assert f"net.flow.layers.{3 * k}.log_scale" in state
    assert all(isinstance(v, np.ndarray) for v in state.values())
    again = FlowRecommender(**fitted.get_params()).load_state_dict(state)
    x = contract_split().test_foldin
    np.testing.assert_array_equal(again.encode(x), fitted.encode(x))
    np.testing.assert_array_equal(again.decode(fitted.encode(x)[:3]), fitted.decode(fitted.encode(x)[:3]))


@pytest.mark.parametrize("loss, kind", [("bce", "sigmoid"), ("multinomial", "softmax")])
def test_loss_sets_score_kind(loss: str, kind: str) -> None:
    split = contract_split()
    model = small_flow(loss=loss, epochs=1, flow_epochs=1).fit(split.train)
    assert model.score_kind == kind
    assert np.isfinite(model.score(split.test_foldin[:5])).all()


def test_nll_gradient_into_embeddings_option_trains() -> None:
    split = contract_split()
    model = small_flow(embedding_nll_grad=True, flow_weight=1.0, epochs=2, flow_epochs=0, pooling="sqrt")
    model.fit(split.train)
    assert len(model.training_log_) == 2
    assert np.isfinite(model.encode(split.test_foldin)).all()


def test_nan_loss_raises_model_fit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.models import torch_utils

    monkeypatch.setattr(torch_utils, "get_loss", lambda name, **kw: lambda logits, target: logits.sum() * float("nan"))
    model = small_flow(epochs=2)
    with pytest.raises(ModelFitError, match="diverged"):
        model.fit(contract_split().train)
    assert not model.is_fitted


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"embedding_dim": 1}, "embedding_dim"),
        ({"n_flow_steps": 0}, "n_flow_steps"),
        ({"flow_weight": -1.0}, "flow_weight"),
        ({"flow_subsample": 0.0}, "flow_subsample"),
        ({"dropout": 1.0}, "dropout"),
        ({"pooling": "max"}, "pooling"),
        ({"loss": "mse"}, "loss"),
    ],
)
def test_bad_params_are_refused_at_fit(kw: dict, match: str) -> None:
    model = small_flow(**kw)  # __init__ stores, fit validates
    with pytest.raises(ValueError, match=match):
        model.fit(contract_split().train)
