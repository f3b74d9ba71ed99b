"""The contract every model family passes (implicit's ``recommender_base_test`` pattern).

Usage in ``tests/models/test_<family>.py``::

    from tests.models.contract import RecommenderContract

    class TestMyModel(RecommenderContract):
        def make_model(self):
            return MyModel(epochs=5, seed=0)   # small: the whole file should run in < 60 s

The mixin fits ``make_model()`` once per test class on a small synthetic data set (the
``contract_split()`` below: 400 users, 300 songs, strong-generalization split with 40 validation
and 40 test users) and checks: fit returns self; score shape and finiteness; batch scores equal
row-by-row scores; recommend never returns history items; the same seed gives the same scores;
unseen (fold-in) users, including an empty history, can be scored; save -> Registry -> load gives
identical scores; NDCG@100 beats Popularity on the test users; and, for latent models, encode has
shape (n, latent_dim) and decode(encode(x)) equals score(x).

Knobs (class attributes): ``fit_with_validation`` (pass the validation pair to fit),
``beats_popularity`` (turn off only with a reason), ``score_rtol`` (tolerance of batch vs row and
decode(encode) vs score; float32 matmuls of different batch shapes differ in the last bits).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.splits import StrongSplit, strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.evaluate import evaluate_on_users
from recsys.models import LatentRecommender, NotFittedError, Popularity, Recommender
from recsys.registry import Registry

N_HELDOUT = 40


@functools.lru_cache(maxsize=1)
def contract_split() -> StrongSplit:
    """A small synthetic catalogue with planted genre structure, split for strong generalization."""
    ds = generate_synthetic(n_users=400, n_items=300, n_artists=60, n_tags=6, seed=1)
    return strong_generalization_split(ds, 0, N_HELDOUT)


class RecommenderContract:
    """Mixin of contract tests; subclasses implement ``make_model()`` (an unfitted model)."""

    fit_with_validation: bool = True
    beats_popularity: bool = True
    score_rtol: float = 1e-4

    def make_model(self) -> Recommender:
        raise NotImplementedError

    # ---- fixtures (fitted once per test class) ----------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> StrongSplit:
        return contract_split()

    def _fit(self, split: StrongSplit) -> SimpleNamespace:
        model = self.make_model()
        validation = (split.val_foldin, split.val_holdout) if self.fit_with_validation else None
        returned = model.fit(split.train, validation=validation)
        return SimpleNamespace(model=model, returned=returned)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, split: StrongSplit) -> SimpleNamespace:
        return cls()._fit(split)

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, fitted: SimpleNamespace) -> Recommender:
        return fitted.model

    @pytest.fixture(scope="class")
    @classmethod
    def test_scores(cls, model: Recommender, split: StrongSplit) -> np.ndarray:
        return model.score(split.test_foldin)

    def _close(self, actual: np.ndarray, expected: np.ndarray) -> None:
        scale = float(np.abs(expected).max()) or 1.0
        np.testing.assert_allclose(actual, expected, rtol=self.score_rtol, atol=self.score_rtol * scale)

    # ---- the contract ---------------------------------------------------------------------
    def test_fit_returns_self(self, fitted: SimpleNamespace) -> None:
        assert fitted.returned is fitted.model
        assert fitted.model.is_fitted

    def test_unfitted_model_refuses_to_score(self, split: StrongSplit) -> None:
        with pytest.raises(NotFittedError):
            self.make_model().score(split.test_foldin)

    def test_params_round_trip(self, model: Recommender) -> None:
        clone = model.clone()
        assert clone.get_params() == model.get_params()
        assert not clone.is_fitted

    def test_score_shape_and_finite(self, test_scores: np.ndarray, split: StrongSplit) -> None:
        assert test_scores.shape == (split.test_foldin.shape[0], split.n_items)
        assert test_scores.dtype == np.float32
        assert np.isfinite(test_scores).all()

    def test_batch_scores_equal_row_scores(self, model: Recommender, test_scores: np.ndarray, split) -> None:
        for u in (0, 7, split.test_foldin.shape[0] - 1):
            self._close(model.score(split.test_foldin[u]), test_scores[u : u + 1])

    def test_recommend_excludes_history(self, model: Recommender, split: StrongSplit) -> None:
        x = split.test_foldin
        idx, scores = model.recommend(x, k=20)
        assert idx.shape == (x.shape[0], 20)
        assert (np.diff(scores, axis=1) <= 0).all(), "recommendations are not sorted best first"
        seen = x.toarray() > 0
        assert not seen[np.arange(x.shape[0])[:, None], idx].any()

    def test_same_seed_same_scores(self, test_scores: np.ndarray, split: StrongSplit) -> None:
        again = self._fit(split).model.score(split.test_foldin)
        np.testing.assert_allclose(again, test_scores, rtol=1e-5, atol=1e-6)

    def test_unseen_users_fold_in(self, model: Recommender, split: StrongSplit) -> None:
        picks = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [3, 10, 42])), shape=(1, split.n_items))
        empty = sp.csr_matrix((1, split.n_items), dtype=np.float32)
        for x in (picks, empty, picks.toarray()):
            s = model.score(x)
            assert s.shape == (1, split.n_items)
            assert np.isfinite(s).all()

    def test_save_load_identical(self, model: Recommender, test_scores, split, tmp_path_factory) -> None:
        reg = Registry(tmp_path_factory.mktemp("registry"))
        model_id = reg.save(model, dataset=split.train, model_id="contract-model")
        loaded = reg.load(model_id).model
        assert type(loaded) is type(model)
        assert loaded.score_kind == model.score_kind
        np.testing.assert_array_equal(loaded.score(split.test_foldin), test_scores)

    def test_beats_popularity(self, model: Recommender, split: StrongSplit) -> None:
        if not self.beats_popularity:
            pytest.skip("this family is not expected to beat popularity on the contract data")
        pop = Popularity().fit(split.train)
        ours = evaluate_on_users(model, split.test_foldin, split.test_holdout)["ndcg@100"]
        base = evaluate_on_users(pop, split.test_foldin, split.test_holdout)["ndcg@100"]
        assert ours > base, f"NDCG@100 {ours:.4f} does not beat Popularity's {base:.4f}"

    def test_latent_encode_decode(self, model: Recommender, test_scores: np.ndarray, split) -> None:
        if not isinstance(model, LatentRecommender):
            pytest.skip("not a latent model")
        z = model.encode(split.test_foldin)
        assert z.shape == (split.test_foldin.shape[0], model.latent_dim)
        assert np.isfinite(z).all()
        self._close(model.decode(z), test_scores)
        self._close(model.decode(z[0]), test_scores[:1])
