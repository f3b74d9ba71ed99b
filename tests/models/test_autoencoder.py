"""AutoEncoder (seed 001): the contract and the per-epoch train/validation loss log."""

from __future__ import annotations

from recsys.models import get_model_class
from recsys.models.autoencoder import AutoEncoderRecommender
from tests.models.contract import RecommenderContract


class TestAutoEncoderContract(RecommenderContract):
    def make_model(self) -> AutoEncoderRecommender:
        return AutoEncoderRecommender(epochs=10, seed=0)

    def test_log_has_train_and_validation_loss(self, model: AutoEncoderRecommender) -> None:
        log = model.training_log_
        assert {"train_loss", "val_loss", "val_ndcg@100", "seconds"} <= set(log[0])
        assert log[-1]["train_loss"] < log[0]["train_loss"]
        assert all(r["val_loss"] > 0 for r in log)

    def test_latent_is_the_second_code(self, model: AutoEncoderRecommender) -> None:
        assert model.latent_dim == model.hidden_dim2 == 64
        assert model.score_kind == "sigmoid"


def test_registered_with_seed_defaults() -> None:
    m = get_model_class("autoencoder")()
    assert (m.hidden_dim1, m.hidden_dim2, m.lr, m.loss) == (128, 64, 2e-3, "mse")
