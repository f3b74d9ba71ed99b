"""Steering: the four modes, cold start, centroids, input errors, registry round trip.

One small synthetic catalogue (planted genres) and models fitted once per module; every test then
runs in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.model_extras import compute_extras
from recsys.models.autoencoder import AutoEncoderRecommender
from recsys.models.dlae import LowRankDLAE
from recsys.models.ease import EASE
from recsys.models.flow import FlowRecommender
from recsys.models.mlp import MLPRecommender
from recsys.models.mlp_flow import MLPFlowRecommender
from recsys.models.multvae import MultVAE
from recsys.models.recvae import RecVAE
from recsys.models.svd import SVDBaseline
from recsys.registry import Registry
from recsys.steering import (
    Steerer,
    SteeringError,
    compute_tag_centroids,
    curate_vocabulary,
    item_tag_matrix,
    log_tag_boost,
    normalise_tag,
    tag_shares,
    to_probabilities,
)

LATENT_FAMILIES = {
    "mlp": lambda: MLPRecommender(epochs=40, latent_dim=32, hidden_dim=64, seed=0),
    "multvae": lambda: MultVAE(epochs=40, latent_dim=32, hidden_dim=64, seed=0),
    "autoencoder": lambda: AutoEncoderRecommender(epochs=40, seed=0),
    "flow": lambda: FlowRecommender(embedding_dim=16, epochs=40, flow_epochs=5, seed=0),
    "mlp_flow": lambda: MLPFlowRecommender(epochs=40, latent_dim=16, hidden_dim=64, flow_epochs=5, seed=0),
    "svd": lambda: SVDBaseline(n_factors=16, n_epochs=10, seed=0),
    "recvae": lambda: RecVAE(epochs=8, latent_dim=32, hidden_dim=64, batch_size=64, lr=3e-3, seed=0),
    "dlae": lambda: LowRankDLAE(latent_dim=64, dropout=0.5),
}


@pytest.fixture(scope="module")
def split():
    ds = generate_synthetic(n_users=500, n_items=600, n_artists=90, n_tags=8, seed=3)
    return strong_generalization_split(ds, 0, 60)


@pytest.fixture(scope="module")
def steerers(split) -> dict[str, Steerer]:
    out = {}
    for name, make in LATENT_FAMILIES.items():
        model = make().fit(split.train, validation=(split.val_foldin, split.val_holdout))
        out[name] = Steerer.from_training(model, split.train.interactions, split.train.items)
    ease = EASE(l2=100.0).fit(split.train)
    out["ease"] = Steerer.from_training(ease, split.train.interactions, split.train.items)
    return out


def _picks(steerer: Steerer, split, u: int) -> list[str]:
    return list(steerer.items["item_id"].iloc[split.test_foldin[u].indices])


def _least_shared_tag(steerer: Steerer, split, u: int) -> str:
    shares = tag_shares(split.test_foldin[u], steerer.tag_matrix)[0]
    tags = steerer.steerable_tags
    return min(tags, key=lambda t: (shares[steerer.vocabulary.index(t)], t))


# ---- pure functions -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Hip-Hop", "hip hop"), ("hip_hop", "hip hop"), ("  Drum  and   Bass ", "drum and bass"), ("R&B", "r&b")],
)
def test_normalise_tag(raw: str, expected: str) -> None:
    assert normalise_tag(raw) == expected


def test_tag_boost_hand_computed() -> None:
    # items: 0 has tags {a}, 1 has {a, b}, 2 has none
    m = item_tag_matrix([("a",), ("a", "b"), ()], ["a", "b"])
    boost = np.exp(log_tag_boost(m, np.array([0, 1]), np.array([1.0, 3.0]), np.array([0.0, 1.0, 2.0])))
    np.testing.assert_allclose(boost[0], [1, 1, 1])
    np.testing.assert_allclose(boost[1], [2.0, (2.0 + 4.0) / 2, 1.0])
    np.testing.assert_allclose(boost[2], [4.0, (4.0 + 16.0) / 2, 1.0])


def test_probabilities_keep_the_order_and_are_probabilities() -> None:
    s = np.array([[3.0, -1.0, 0.5, 10.0]])
    for kind in ("softmax", "sigmoid", "similarity"):
        p = to_probabilities(s, kind)
        assert np.all((p >= 0) & (p <= 1))
        assert list(np.argsort(-p[0])) == list(np.argsort(-s[0]))
    assert to_probabilities(s, "softmax").sum() == pytest.approx(1.0)


def test_curation_thresholds() -> None:
    item_tags = [("rock",)] * 6 + [("jazz",)] * 6 + [("rare",)] * 2
    x = sp.csr_matrix(np.eye(14, dtype=np.float32)[[0, 1, 2, 6, 12]].repeat(1, axis=0))
    x = sp.csr_matrix(np.vstack([np.eye(14)[i] for i in [0, 1, 2, 3, 6, 12]]))
    vocab = curate_vocabulary(item_tags, x, max_tags=10, min_items=5, min_users=2)
    assert vocab == ["rock"]  # jazz: 1 user < 2; rare: 2 items < 5
    assert curate_vocabulary(item_tags, x, max_tags=10, min_items=5, min_users=1) == ["jazz", "rock"]


def test_centroid_rules_hand_computed() -> None:
    item_tags = [("a",), ("a",), ("b",)]
    m = item_tag_matrix(item_tags, ["a", "b"])
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    z = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 4.0]])
    share = compute_tag_centroids(z, x, m, ["a", "b"], rule="share", min_users=1)
    # shares: user0 a=1; user1 a=.5 b=.5; user2 b=1
    np.testing.assert_allclose(share.centroids[0], (1 * z[0] + 0.5 * z[1]) / 1.5)
    np.testing.assert_allclose(share.centroids[1], (0.5 * z[1] + 1 * z[2]) / 1.5)
    dom = compute_tag_centroids(z, x, m, ["a", "b"], rule="dominant", min_users=1)
    np.testing.assert_allclose(dom.centroids[0], (z[0] + z[1]) / 2)  # user1 ties -> first tag (a)
    np.testing.assert_allclose(dom.centroids[1], z[2])
    none_b = compute_tag_centroids(z, x, m, ["a", "b"], rule="dominant", min_users=2)
    assert none_b.tags == ("a",)


# ---- the four modes, every latent family ------------------------------------------------------
@pytest.mark.parametrize("family", [*LATENT_FAMILIES, "ease"])
def test_alpha_zero_reproduces_standard_and_history_is_never_recommended(steerers, split, family) -> None:
    st = steerers[family]
    for u in range(5):
        picks = _picks(st, split, u)
        tag = _least_shared_tag(st, split, u)
        r = st.recommend(picks, {tag: 2.0}, 0.0, k=30)
        standard = r.top_item_ids("standard")
        for mode, lst in r.lists.items():
            assert list(lst.items["item_id"]) == standard, mode
        r = st.recommend(picks, {tag: 2.0}, 1.5, k=30)
        for mode, lst in r.lists.items():
            assert not set(lst.items["item_id"]) & set(picks), mode
            assert lst.items["score"].is_monotonic_decreasing


@pytest.mark.parametrize("family", list(LATENT_FAMILIES))
def test_tuning_toward_a_planted_non_dominant_tag_raises_its_share_steadily(steerers, split, family) -> None:
    st = steerers[family]
    alphas = [0.0, 0.5, 1.0, 2.0, 4.0]
    shares = np.zeros(len(alphas))
    users = range(30)
    for u in users:
        picks, tag = _picks(st, split, u), _least_shared_tag(st, split, u)
        for j, a in enumerate(alphas):
            shares[j] += st.recommend(picks, {tag: 1.0}, a, modes=("tune",)).lists["tune"].tag_share
    shares /= len(users)
    assert np.all(np.diff(shares) > 0), shares
    assert shares[-1] > shares[0] + 0.3, shares


@pytest.mark.parametrize("family", ["mlp", "ease"])
def test_postfilter_share_rises_with_alpha(steerers, split, family) -> None:
    st = steerers[family]
    picks, tag = _picks(st, split, 0), _least_shared_tag(st, split, 0)
    shares = [st.recommend(picks, {tag: 1.0}, a).lists["postfilter"].tag_share for a in (0, 1, 3, 8)]
    assert shares == sorted(shares) and shares[-1] == 1.0


def test_non_latent_models_offer_standard_and_postfilter_only(steerers, split) -> None:
    r = steerers["ease"].recommend(_picks(steerers["ease"], split, 0), {"rock": 1.0}, 1.0)
    assert set(r.lists) == {"standard", "postfilter"}
    assert set(r.unavailable) == {"tune", "tune+post"}


def test_several_weighted_tags_pull_toward_the_heavier(steerers, split) -> None:
    st = steerers["mlp"]
    picks = _picks(st, split, 1)
    a, b = [t for t in st.steerable_tags if t != _least_shared_tag(st, split, 1)][:2]

    def share_of(tag: str, weights: dict[str, float]) -> float:
        lst = st.recommend(picks, weights, 1.5, modes=("tune",)).lists["tune"].items
        return float(np.mean([tag in tags for tags in lst["tags"]]))

    assert share_of(a, {a: 5.0, b: 1.0}) > share_of(a, {a: 1.0, b: 5.0})


def test_one_call_gives_every_column_with_tags_and_highlight(steerers, split) -> None:
    st = steerers["mlp"]
    tag = _least_shared_tag(st, split, 0)
    r = st.recommend(_picks(st, split, 0), {tag: 1.0}, 1.0, k=20)
    assert list(r.lists) == ["standard", "postfilter", "tune", "tune+post"]
    for lst in r.lists.values():
        df = lst.items
        assert len(df) == 20 and list(df["rank"]) == list(range(1, 21))
        assert {"item_id", "title", "artist", "tags", "score", "on_target"} <= set(df.columns)
        assert list(df["on_target"]) == [tag in t for t in df["tags"]]
        assert lst.tag_share == pytest.approx(df["on_target"].mean())
    assert r.z.shape == r.z_tuned.shape == (st.model.latent_dim,)


# ---- cold start ---------------------------------------------------------------------------------
def test_cold_start_from_tags_decodes_the_tag_centroids(steerers) -> None:
    st = steerers["mlp"]
    tag = st.steerable_tags[-1]
    r = st.recommend([], {tag: 1.0}, 1.0)
    assert r.cold_start == "tags"
    assert r.lists["tune"].label == "from your tags"
    expected = to_probabilities(st.model.decode(st.target_point({tag: 1.0})[None].astype(np.float32)), "softmax")
    assert r.top_item_ids("tune") == list(st.items["item_id"].iloc[np.argsort(-expected[0], kind="stable")[:20]])
    assert r.lists["tune"].tag_share > r.lists["standard"].tag_share
    assert "popular" in r.lists["standard"].label


def test_cold_start_without_tags_is_a_labelled_popularity_list(steerers) -> None:
    st = steerers["mlp"]
    r = st.recommend([], {}, 1.0)
    assert r.cold_start == "popularity"
    top = list(st.items["item_id"].iloc[np.argsort(-st.item_popularity, kind="stable")[:20]])
    for lst in r.lists.values():
        assert "popular" in lst.label
        assert set(lst.items["item_id"]) == set(top)


# ---- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tags": {"rok": 1.0}}, "did you mean rock"),
        ({"tags": {"no-such-genre": 1.0}}, "valid tags:"),
        ({"picks": ["no-such-song"]}, "unknown item ids"),
        ({"alpha": float("nan")}, "alpha must be finite"),
        ({"alpha": -1.0}, "alpha must be in"),
        ({"alpha": "strong"}, "alpha must be a number"),
        ({"tags": {"rock": 0.0}}, "weight of tag 'rock' must be in"),
        ({"tags": {"rock": float("inf")}}, "must be finite"),
        ({"modes": ("standard", "sideways")}, "unknown modes"),
    ],
)
def test_bad_input_is_a_clear_error(steerers, split, kwargs, message) -> None:
    st = steerers["mlp"]
    call = {"picks": _picks(st, split, 0), "tags": {"rock": 1.0}, "alpha": 1.0, **kwargs}
    with pytest.raises(SteeringError, match=message):
        st.recommend(**call)


def test_a_tag_without_centroid_is_refused_for_tuning_only(split) -> None:
    model = EASE(l2=100.0).fit(split.train)
    mlp = MLPRecommender(epochs=2, latent_dim=8, hidden_dim=16).fit(split.train)
    st = Steerer.from_training(mlp, split.train.interactions, split.train.items, rule="dominant", min_users=1)
    counts = {t: s for t, s in zip(st.centroids.tags, st.centroids.support, strict=True)}
    strict = Steerer.from_training(
        mlp, split.train.interactions, split.train.items, rule="dominant", min_users=min(counts.values()) + 1
    )
    missing = sorted(set(strict.vocabulary) - set(strict.centroids.tags))
    assert missing, "the stricter threshold must drop a centroid"
    with pytest.raises(SteeringError, match="has no centroid"):
        strict.recommend(_picks(strict, split, 0), {missing[0]: 1.0}, 1.0)
    r = strict.recommend(_picks(strict, split, 0), {missing[0]: 1.0}, 1.0, modes=("standard", "postfilter"))
    assert r.lists["postfilter"].tag_share >= r.lists["standard"].tag_share
    assert model.is_fitted


# ---- registry ------------------------------------------------------------------------------------
def test_steering_data_survives_the_registry(tmp_path, steerers, split) -> None:
    st = steerers["flow"]
    arrays, info = compute_extras(st.model, split.train)
    reg = Registry(tmp_path)
    reg.save(st.model, dataset=split.train, model_id="flow-test", extras=arrays, info=info)
    again = Steerer.from_loaded(reg.load("flow-test"))
    picks, tag = _picks(st, split, 2), _least_shared_tag(st, split, 2)
    a = st.recommend(picks, {tag: 1.0}, 1.0)
    b = again.recommend(picks, {tag: 1.0}, 1.0)
    for mode in a.lists:
        pd.testing.assert_frame_equal(a.lists[mode].items, b.lists[mode].items)


def test_a_model_saved_without_steering_data_says_how_to_fix(tmp_path, steerers, split) -> None:
    reg = Registry(tmp_path)
    reg.save(steerers["ease"].model, dataset=split.train, model_id="old")
    with pytest.raises(SteeringError, match="retrain"):
        Steerer.from_loaded(reg.load("old"))


def test_trajectory_starts_at_the_person_and_is_linear_in_alpha(steerers, split) -> None:
    st = steerers["mlp"]
    picks, tag = _picks(st, split, 0), _least_shared_tag(st, split, 0)
    path = st.trajectory(picks, {tag: 1.0}, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(path[0], st.model.encode(st.history(picks))[0], rtol=1e-5)
    np.testing.assert_allclose(path[2] - path[1], path[1] - path[0], rtol=1e-5, atol=1e-6)
    assert st.recommend(picks, {tag: 1.0}, 2.0).z_tuned == pytest.approx(path[2], rel=1e-5)


# ---- calibrated strength ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["tune", "postfilter", "tune+post"])
def test_alpha_for_a_target_share_reaches_it_and_a_smaller_alpha_does_not(steerers, split, mode) -> None:
    st = steerers["mlp"]
    picks, tag = _picks(st, split, 3), _least_shared_tag(st, split, 3)
    alpha = st.alpha_for_share(picks, {tag: 1.0}, 0.5, mode=mode)
    assert alpha is not None and alpha > 0
    dial = st.recommend(picks, {tag: 1.0}, share=0.5, modes=(mode,)).lists[mode]
    assert dial.alpha == pytest.approx(alpha) and dial.tag_share == pytest.approx(0.5)
    if mode != "tune+post":  # (tune+post's alpha is its postfilter's, after the latent step)
        by_hand = st.recommend(picks, {tag: 1.0}, alpha, modes=(mode,)).lists[mode].tag_share
        assert by_hand >= 0.5
        assert st.recommend(picks, {tag: 1.0}, alpha * 0.97, modes=(mode,)).lists[mode].tag_share < 0.5
        batched = st.shares_over_alpha(picks, {tag: 1.0}, [0.0, alpha], mode=mode)
        assert batched[1] == pytest.approx(by_hand)


# ---- sequential models: the picks are a session ---------------------------------------------------
def test_a_sequential_model_reads_the_order_of_the_picks(split) -> None:
    from recsys.models.seqvae import SequentialVAE

    model = SequentialVAE(latent_dim=16, hidden_dim=64, epochs=8, batch_size=64, lr=3e-3, samples_per_user=2, seed=0)
    model.fit(split.train)
    st = Steerer.from_training(model, split.train.interactions, split.train.items)
    assert st.sequential
    picks = _picks(st, split, 0)[:8]
    forward, backward = st.recommend(picks, {}, 0.0), st.recommend(picks[::-1], {}, 0.0)
    assert not np.allclose(forward.z, backward.z)  # the latent point depends on the order
    assert forward.top_item_ids("standard") != backward.top_item_ids("standard")
    again = st.recommend(picks, {}, 0.0)
    assert again.top_item_ids("standard") == forward.top_item_ids("standard")
    tag = _least_shared_tag(st, split, 0)
    tuned = st.recommend(picks, {tag: 1.0}, 2.0)
    assert tuned.top_item_ids("tune") != tuned.top_item_ids("standard")  # its latent point can be steered too
