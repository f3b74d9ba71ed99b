"""Metric and steering invariants over random inputs (hypothesis).

Metrics: NDCG@K and Recall@K stay in [0, 1] for any scores (ties, infinities, NaN) and any
held-out / fold-in sets; a ranking that puts every held-out item first scores exactly 1; fold-in
items are never ranked. Steering, on small models fitted once (an MLP and EASE): alpha = 0 gives
the standard list in every mode, picked items never appear in any list, lists are ranked, finite
and free of duplicates for any picks, tags, weights and alpha in the documented ranges (the
extremes included).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.metrics import ndcg_at_k, next_item_metrics, ranking_metrics, recall_at_k
from recsys.models.base import top_k
from recsys.models.ease import EASE
from recsys.models.mlp import MLPRecommender
from recsys.steering import ALPHA_RANGE, BETA_RANGE, MODES, Steerer

from .conftest import count

SETTINGS = settings(
    max_examples=count("RECSYS_PROPERTY_EXAMPLES"),
    deadline=None,
    derandomize=os.environ.get("RECSYS_HYPOTHESIS_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


# ---- metrics ---------------------------------------------------------------------------------------
@st.composite
def ranking_case(draw, finite: bool = False):
    n_users = draw(st.integers(1, 5))
    n_items = draw(st.integers(2, 40))
    elements = (
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
        if finite
        else st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 1.0, -1.0]))
    )
    scores = draw(hnp.arrays(np.float64, (n_users, n_items), elements=elements))
    roles = draw(hnp.arrays(np.int8, (n_users, n_items), elements=st.sampled_from([0, 0, 0, 1, 2])))
    holdout = sp.csr_matrix((roles == 1).astype(np.float32))
    foldin = sp.csr_matrix((roles == 2).astype(np.float32))
    k = draw(st.integers(1, 60))
    return scores, foldin, holdout, k


@SETTINGS
@given(case=ranking_case())
def test_ndcg_and_recall_stay_in_the_unit_interval_and_foldin_is_never_ranked(case) -> None:
    scores, foldin, holdout, k = case
    assume(np.diff(holdout.indptr).any())
    with np.errstate(invalid="ignore"):
        out = ranking_metrics(scores, foldin, holdout, recall_ks=(k,), ndcg_ks=(k,), coverage_k=k)
    for name in (f"recall@{k}", f"ndcg@{k}"):
        v = out[name]
        assert np.all((v >= 0) & (v <= 1 + 1e-12)), (name, v)
    idx, sc = top_k(scores, k, exclude=foldin)
    for u in range(scores.shape[0]):
        ranked = [i for i, s in zip(idx[u], sc[u], strict=True) if s > -np.inf]
        assert not set(ranked) & set(foldin[u].indices), "a fold-in item was ranked"
        assert len(set(idx[u])) == len(idx[u])


@SETTINGS
@given(case=ranking_case(finite=True))
def test_a_perfect_ranking_scores_one(case) -> None:
    scores, foldin, holdout, k = case
    assume(np.diff(holdout.indptr).any())
    # every held-out item above every other item, whatever the random scores were
    perfect = np.where(holdout.toarray() > 0, 1e7 + np.abs(scores), scores)
    out = ranking_metrics(perfect, foldin, holdout, recall_ks=(k,), ndcg_ks=(k,), coverage_k=k)
    np.testing.assert_allclose(out[f"ndcg@{k}"], 1.0)
    np.testing.assert_allclose(out[f"recall@{k}"], 1.0)


@SETTINGS
@given(
    hits=hnp.arrays(np.bool_, st.tuples(st.integers(1, 6), st.integers(1, 30))),
    extra=st.integers(0, 20),
    k=st.integers(1, 40),
)
def test_ndcg_from_any_hits_matrix_is_in_the_unit_interval(hits, extra, k) -> None:
    n_rel = hits.sum(axis=1) + extra  # at least as many relevant items as hits
    assume((n_rel > 0).all())
    ndcg, recall = ndcg_at_k(hits, n_rel, k), recall_at_k(hits, n_rel, k)
    assert np.all((ndcg >= 0) & (ndcg <= 1 + 1e-12)) and np.all((recall >= 0) & (recall <= 1 + 1e-12))
    top = hits[:, :k]
    full = top.sum(axis=1) == np.minimum(k, n_rel)
    first = np.all(top[:, : int(min(k, top.shape[1]))] == (np.arange(top.shape[1]) < top.sum(axis=1)[:, None]), 1)
    np.testing.assert_allclose(ndcg[full & first], 1.0)  # all hits first and as many as possible: exactly 1


@SETTINGS
@given(case=ranking_case(), data=st.data())
def test_next_item_hr_and_ndcg_are_in_the_unit_interval(case, data) -> None:
    scores, foldin, _, k = case
    n_users, n_items = scores.shape
    targets = np.array(data.draw(st.lists(st.integers(-1, n_items - 1), min_size=n_users, max_size=n_users)))
    assume((targets >= 0).any())
    out = next_item_metrics(scores, targets, foldin, k=k)
    for v in out.values():
        assert np.all((v >= 0) & (v <= 1 + 1e-12))


# ---- steering ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def steerers() -> dict[str, Steerer]:
    ds = generate_synthetic(n_users=300, n_items=250, n_artists=40, n_tags=6, seed=11)
    split = strong_generalization_split(ds, 0, 40)
    kw = {"min_users": 5, "min_items": 3}
    mlp = MLPRecommender(epochs=8, latent_dim=8, hidden_dim=32, seed=0).fit(split.train)
    ease = EASE(l2=50.0).fit(split.train)
    return {
        name: Steerer.from_training(model, split.train.interactions, split.train.items, **kw)
        for name, model in (("mlp", mlp), ("ease", ease))
    }


@st.composite
def person(draw, steerer: Steerer):
    ids = list(steerer.items["item_id"].astype(str))
    picks = draw(st.lists(st.sampled_from(ids), max_size=12))
    tags = steerer.steerable_tags
    chosen = draw(st.lists(st.sampled_from(tags), max_size=3, unique=True)) if tags else []
    betas = st.one_of(st.floats(*BETA_RANGE), st.sampled_from(list(BETA_RANGE)))
    weights = {t: draw(betas) for t in chosen}
    alpha = draw(st.one_of(st.floats(*ALPHA_RANGE), st.sampled_from([0.0, 1.0, ALPHA_RANGE[1]])))
    k = draw(st.integers(1, 60))
    share = draw(st.one_of(st.none(), st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0])))
    return picks, weights, alpha, k, share


@pytest.mark.parametrize("family", ["mlp", "ease"])
def test_steering_invariants_over_random_people(steerers, family: str) -> None:
    steerer = steerers[family]
    n_items = steerer.model.n_items_

    @SETTINGS
    @given(p=person(steerer))
    def check(p) -> None:
        picks, weights, alpha, k, share = p
        r = steerer.recommend(picks, weights, alpha, k=k, share=share)
        standard = r.top_item_ids("standard")
        for mode, lst in r.lists.items():
            items = lst.items
            ids = list(items["item_id"])
            assert len(ids) == len(set(ids)) <= min(k, n_items), mode
            assert not set(ids) & set(map(str, picks)), f"{mode}: a picked item was recommended"
            assert np.isfinite(items["score"]).all() and items["score"].is_monotonic_decreasing, mode
            assert len(ids) >= min(k, n_items - len(set(picks))), f"{mode}: a short list ({len(ids)} of {k})"
            if not math.isnan(lst.tag_share):
                assert 0.0 <= lst.tag_share <= 1.0
        if share is not None and weights:  # the dial: reached, or a ceiling below it, or a floor above it
            want = round(share * k) / k if len(r.top_item_ids("standard")) == k else None
            for mode, lst in r.lists.items():
                if mode != "standard" and want is not None:
                    assert lst.status in ("reached", "ceiling", "floor"), mode
                    if lst.status == "ceiling":
                        assert lst.tag_share < want, mode
                    elif lst.status == "floor":
                        assert lst.tag_share > want, mode
        r0 = steerer.recommend(picks, weights, 0.0, k=k)
        standard = r0.top_item_ids("standard")
        for mode, lst in r0.lists.items():
            if mode != "tune+post":  # (tune+post's latent step moves it even at alpha 0)
                assert list(lst.items["item_id"]) == standard, f"alpha 0: {mode} differs from standard"
        assert set(r.lists) | set(r.unavailable) == set(MODES)

    check()


# ---- the failures these properties found, pinned ----------------------------------------------------
def test_next_item_metrics_with_k_beyond_the_catalogue() -> None:
    """Found by the property above: k > n_items crashed (discounts of length k against k' < k ranks)."""
    out = next_item_metrics(np.array([[0.0, 1.0]]), np.array([1]), None, k=3)
    assert out["hr@3"].tolist() == [1.0] and out["ndcg@3"].tolist() == [1.0]


def test_extreme_tune_plus_post_keeps_full_finite_lists(steerers) -> None:
    """Found by the property above: alpha x post_factor = 1100 made (1 + beta)^1100 = inf and emptied the list
    (the factor is gone; the largest alpha with the largest beta is the same extreme)."""
    steerer = steerers["mlp"]
    tag = steerer.steerable_tags[0]
    for picks in ([], list(steerer.items["item_id"].astype(str)[:5])):
        r = steerer.recommend(picks, {tag: BETA_RANGE[1]}, ALPHA_RANGE[1], k=20)
        for mode, lst in r.lists.items():
            assert len(lst.items) == 20 and np.isfinite(lst.items["score"]).all(), mode
        assert r.lists["tune+post"].tag_share == 1.0  # the strongest steering lists only tagged items
