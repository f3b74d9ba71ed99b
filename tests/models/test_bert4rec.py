"""BERT4Rec-style baseline: the contract, masked-item training, order sensitivity."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import get_model_class
from recsys.models.bert4rec import BERT4Rec
from tests.models.contract import RecommenderContract, contract_split


def small_bert(**kw) -> BERT4Rec:
    params = dict(max_len=20, dim=16, heads=2, layers=1, epochs=6, batch_size=64, lr=3e-3, seed=0)
    return BERT4Rec(**{**params, **kw})


class TestBERT4RecContract(RecommenderContract):
    # a transformer fed 0/1 fold-in rows in index order (no time) after a few epochs on 320 users:
    # not expected to beat popularity on the strong-generalization metric; the next-item
    # benchmark (benchmarks/next_item.py) is where it is measured
    beats_popularity = False
    score_rtol = 1e-3

    def make_model(self) -> BERT4Rec:
        return small_bert()

    def test_order_changes_scores(self, model: BERT4Rec) -> None:
        a = model.score_sequences([[1, 2, 3, 4, 5]])
        b = model.score_sequences([[5, 4, 3, 2, 1]])
        assert not np.allclose(a, b)

    def test_long_history_uses_last_window(self, model: BERT4Rec) -> None:
        long = list(range(60))
        np.testing.assert_allclose(
            model.score_sequences([long]), model.score_sequences([long[-(model.max_len - 1) :]]), rtol=1e-5, atol=1e-5
        )

    def test_loss_decreases(self, model: BERT4Rec) -> None:
        losses = [r["train_loss"] for r in model.training_log_]
        assert losses[-1] < losses[0]


def test_registered_and_checks_params():
    assert get_model_class("bert4rec") is BERT4Rec
    with pytest.raises(ValueError, match="divisible"):
        small_bert(dim=15, heads=2).fit(contract_split().train)


def test_early_stopping_ends_training_before_the_cap():
    # next-item protocol on a tiny catalogue: with patience, validation (not the epoch cap) ends training,
    # the best epoch comes before the last, and its weights are the ones kept
    from recsys.data.splits import temporal_leave_last_out
    from recsys.data.synthetic import generate_synthetic
    from recsys.next_item import validation_pair

    split = temporal_leave_last_out(generate_synthetic(n_users=120, n_items=80, n_artists=16, n_tags=4, seed=3))
    model = small_bert(epochs=200, patience=2, lr=1e-2)
    model.fit(split.train, validation=validation_pair(model, split))
    log = model.training_log_
    assert len(log) < 200 and model.best_epoch_ < len(log)
    best = max(r["val_ndcg@100"] for r in log)
    assert log[model.best_epoch_ - 1]["val_ndcg@100"] == best
    assert len(log) == model.best_epoch_ + 2  # stopped after `patience` epochs without improvement
