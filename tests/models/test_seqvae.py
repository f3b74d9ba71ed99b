"""Sequential VAE (ESAPR-style): the contract, recency weights, order sensitivity."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import get_model_class
from recsys.models.seqvae import SequentialVAE, recency_weights
from tests.models.contract import RecommenderContract


def small_seqvae(**kw) -> SequentialVAE:
    params = dict(latent_dim=16, hidden_dim=64, epochs=8, batch_size=64, lr=3e-3, samples_per_user=2, seed=0)
    return SequentialVAE(**{**params, **kw})


class TestSequentialVAEContract(RecommenderContract):
    def make_model(self) -> SequentialVAE:
        return small_seqvae()

    def test_order_changes_scores(self, model: SequentialVAE) -> None:
        a = model.score_sequences([[1, 2, 3, 4, 5, 6]])
        b = model.score_sequences([[6, 5, 4, 3, 2, 1]])
        assert not np.allclose(a, b)

    def test_log_has_beta_and_kl(self, model: SequentialVAE) -> None:
        assert all({"beta", "kl", "seconds", "val_ndcg@100"} <= set(r) for r in model.training_log_)


def test_recency_weights():
    w = recency_weights(np.array([3, 1]), "exponential", 1.0)
    np.testing.assert_allclose(w, [0.25, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(recency_weights(np.array([2]), "linear", 1.0), [0.5, 1.0])
    np.testing.assert_allclose(recency_weights(np.array([2]), "constant", 1.0), [1.0, 1.0])
    with pytest.raises(ValueError, match="recency"):
        recency_weights(np.array([2]), "cubic", 1.0)


def test_registered_and_checks_params():
    assert get_model_class("seqvae") is SequentialVAE
    from tests.models.contract import contract_split

    with pytest.raises(ValueError, match="window"):
        small_seqvae(window=0).fit(contract_split().train)
