"""The dial: a target tag share -> each mode's strength (exact postfilter, first hit along tune's path).

Solver properties on random inputs (hypothesis), then every latent family of a small planted
catalogue swept over the dial: the share never falls as the dial rises and sits on the dial
wherever the mode can get there.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.steering import (
    DEFAULT_LATENT_STEP,
    MODES,
    Steerer,
    StepRule,
    solve_postfilter,
    tag_shares,
    target_count,
    to_log_probabilities,
    to_probabilities,
)
from recsys.steering.postfilter import count_on_target
from tests.test_steering import _least_shared_tag, _picks, split, steerers  # noqa: F401 (fixtures)


def _uniform_boost(on_target: np.ndarray, log_l: float):
    return lambda alphas: np.asarray(alphas, dtype=np.float64)[:, None] * log_l * on_target


# ---- the postfilter's exact strength -------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 30), beta=st.floats(0.05, 20.0), spread=st.floats(0.1, 300.0))
def test_postfilter_closed_form_equals_bisection_and_hits_every_count(seed, k, beta, spread) -> None:
    rng = np.random.default_rng(seed)
    n, items = 6, 80
    log_p = to_log_probabilities(rng.normal(0, spread, (n, items)), "softmax")  # spread 300: p underflows
    log_p[rng.random((n, items)) < 0.1] = -np.inf  # history
    on = rng.random((n, items)) < rng.uniform(0.05, 0.6)
    log_l = np.log1p(beta)
    boost = _uniform_boost(on, log_l)
    counts = rng.integers(0, k + 1, n)
    exact, got = solve_postfilter(log_p, on, boost, counts, k, uniform_log_factor=np.full(n, log_l))
    bisect, got_b = solve_postfilter(log_p, on, boost, counts, k)
    np.testing.assert_array_equal(got, got_b)
    np.testing.assert_allclose(exact, bisect, rtol=1e-6, atol=1e-9)
    finite = np.isfinite(log_p)
    most = np.minimum((finite & on).sum(axis=1), k)
    least = np.maximum(np.minimum(k, finite.sum(axis=1)) - (finite & ~on).sum(axis=1), 0)
    want = np.clip(counts, least, most)
    assert (got >= want).all()
    base = count_on_target(log_p, on, k)
    # the smallest strength: exactly the count asked for (no ties in random data), or 0 when already there
    assert ((got == want) | ((exact == 0) & (got == base))).all()
    below = count_on_target(log_p + boost(exact * 0.999), on, k)
    assert ((below < want) | (exact == 0)).all()


def test_a_peaked_softmax_still_reaches_every_share() -> None:
    # the flow's probabilities: p of most items underflows to 0, so p * (1 + beta)^alpha never moves them
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 400, (1, 500))
    on = np.zeros(500, dtype=bool)
    on[np.argsort(scores[0])[:60]] = True  # the tag is on the 60 least likely items
    assert (to_probabilities(scores, "softmax")[0, on] == 0).all()
    log_p = to_log_probabilities(scores, "softmax")
    for m in range(0, 21):
        _, got = solve_postfilter(
            log_p, on, _uniform_boost(on, np.log(2)), np.array([m]), 20, uniform_log_factor=np.log(2)
        )
        assert got[0] == m


@pytest.mark.parametrize(
    ("share", "k", "expected"), [(0.0, 20, 0), (0.4, 20, 8), (0.42, 20, 8), (0.43, 20, 9), (1, 7, 7)]
)
def test_target_count_is_the_nearest_whole_number(share, k, expected) -> None:
    assert target_count(share, k) == expected


# ---- every family, every mode: the dial is monotone and on target --------------------------------
@pytest.mark.parametrize(
    "family", ["mlp", "multvae", "recvae", "dlae", "autoencoder", "flow", "mlp_flow", "svd", "ease"]
)
def test_the_dial_is_monotone_and_on_target_for_every_mode(steerers, split, family) -> None:  # noqa: F811
    st_ = steerers[family]
    dial = np.round(np.linspace(0.0, 1.0, 21), 2)
    modes = [m for m in MODES if m != "standard" and (st_.latent or m == "postfilter")]
    checked = 0
    for u in (0, 5):
        x = split.test_foldin[u]
        shares = tag_shares(x, st_.tag_matrix)[0]
        for tag in sorted(st_.steerable_tags, key=lambda t: shares[st_.vocabulary.index(t)])[:3]:
            w = np.zeros((len(dial), len(st_.vocabulary)))
            w[:, st_.vocabulary.index(tag)] = 1.0
            xs = sp.csr_matrix(sp.vstack([x] * len(dial)))
            for mode in modes:
                r = st_.steer(xs, w, mode, share=dial, k=20)
                got = r.count / 20
                assert (np.diff(got) >= -1e-12).all(), (family, mode, tag, got)
                on = r.status == "reached"
                assert (np.abs(got[on] - dial[on]) <= 0.05 + 1e-9).all(), (family, mode, tag, got, dial)
                assert (got[r.status == "floor"] >= dial[r.status == "floor"]).all()
                assert (got[r.status == "ceiling"] < dial[r.status == "ceiling"]).all()
                if mode == "postfilter":
                    assert (r.status != "ceiling").all()  # the postfilter reaches every share here
                checked += int(on.sum())
    assert checked > 100


def test_an_unreachable_share_is_a_ceiling_that_says_so(steerers, split) -> None:  # noqa: F811
    st_ = steerers["ease"]
    picks = _picks(st_, split, 0)
    tag = st_.steerable_tags[0]
    k = int(st_._target_mask([tag]).sum()) + 10  # more places than items carrying the tag
    post = st_.recommend(picks, {tag: 1.0}, share=1.0, k=k, modes=("postfilter",)).lists["postfilter"]
    assert post.status == "ceiling" and "cannot reach" in post.note and post.tag_share < 1.0
    assert st_.alpha_for_share(picks, {tag: 1.0}, 1.0, mode="postfilter", k=k) is None


# ---- tune+post: a capped latent step, then the postfilter ------------------------------------------
def test_tune_post_with_no_latent_step_is_the_postfilter(steerers, split) -> None:  # noqa: F811
    st_ = steerers["mlp"]
    x = split.test_foldin[:8]
    w = np.zeros((8, len(st_.vocabulary)))
    w[:, st_.vocabulary.index(_least_shared_tag(st_, split, 0))] = 1.0
    post = st_.steer(x, w, "postfilter", share=0.5)
    both = st_.steer(x, w, "tune+post", share=0.5, latent_step=0.0)
    np.testing.assert_array_equal(post.top, both.top)
    np.testing.assert_allclose(post.alpha, both.alpha)


def test_tune_post_stops_its_latent_step_where_the_dial_is_met(steerers, split) -> None:  # noqa: F811
    st_ = steerers["mlp"]
    x = split.test_foldin[:8]
    w = np.zeros((8, len(st_.vocabulary)))
    w[:, st_.vocabulary.index(_least_shared_tag(st_, split, 0))] = 1.0
    big = st_.steer(x, w, "tune+post", alpha=0.0, latent_step=2.0)  # the full step alone
    low = st_.steer(x, w, "tune+post", share=0.1, latent_step=2.0)
    assert (big.count / 20 > 0.15).any()  # the full step overshoots a 10 % dial ...
    assert (np.abs(low.count / 20 - 0.1) <= 0.05)[low.status == "reached"].all()  # ... the dial does not
    assert (low.step <= 2.0).all() and (low.step[big.count / 20 > 0.15] < 2.0).all()


def test_the_step_rule_survives_the_registry_and_old_models_keep_their_fixed_step(steerers) -> None:  # noqa: F811
    st_ = steerers["mlp"]
    st_.step_rule = StepRule(base=0.1, scale=2.0, offset=0.4)
    arrays, info = st_.to_registry()
    assert Steerer.from_parts(st_.model, st_.items, arrays, info).step_rule == st_.step_rule
    old = {k: v for k, v in info.items() if k != "latent_step_rule"} | {"latent_step": 0.3}
    assert Steerer.from_parts(st_.model, st_.items, arrays, old).step_rule == StepRule(base=0.3, scale=0.0)
    older = {k: v for k, v in old.items() if k != "latent_step"}
    assert Steerer.from_parts(st_.model, st_.items, arrays, older).step_rule.base == DEFAULT_LATENT_STEP
    st_.step_rule = StepRule()


def test_tags_that_look_incomplete_get_a_longer_step(steerers, split) -> None:  # noqa: F811
    from recsys.steering.protocols import hide_tags, visible_steerer

    st_ = steerers["mlp"]
    x = split.train.interactions
    rule = StepRule(base=0.1, scale=2.0, offset=0.0)
    st_.step_rule = rule
    try:
        vis = visible_steerer(st_, x, hide_tags(split.train.items, 0.8, seed=0), st_.model.encode(x))
        common = [t for t in vis.centroids.tags if t in st_.centroids.tags]
        full_f = st_.tag_completeness[[st_.centroids.tags.index(t) for t in common]]
        vis_f = vis.tag_completeness[[vis.centroids.tags.index(t) for t in common]]
        assert vis_f.mean() < full_f.mean() - 0.2  # hiding 80 % of the entries shows
        w = np.zeros((1, len(st_.vocabulary)))
        w[0, st_.vocabulary.index(common[0])] = 1.0
        w_vis = np.zeros((1, len(vis.vocabulary)))
        w_vis[0, vis.vocabulary.index(common[0])] = 1.0
        assert vis.row_steps(w_vis)[0] >= st_.row_steps(w)[0]
        np.testing.assert_allclose(st_.row_steps(w)[0], rule.steps(full_f[:1])[0])
    finally:
        st_.step_rule = StepRule()


def test_importing_the_library_and_its_steering_loads_neither_torch_nor_streamlit() -> None:
    import subprocess
    import sys

    code = (
        "import sys, recsys, recsys.steering, recsys.steering.protocols, recsys.steering.evaluation; "
        "print(sorted(m for m in ('torch', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tune_narrows_a_first_hit_that_overshoots() -> None:
    """Two tagged songs entering the top k within one grid step: tune keeps narrowing until one enters."""
    from recsys.steering.tune import solve_trajectory

    # item i's log-probability is slope_i * (alpha - cross_i) + level_i: tagged songs 0 and 1 pass the
    # untagged songs 2 and 4 (level 0) at alpha 1.0001 and 1.0002, inside one step of the coarse passes;
    # song 3 (untagged, level 0.5) stays first, so the top 3 holds 0, 1 or 2 tagged songs
    slope = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    cross = np.array([1.0001, 1.0002, 0.0, 0.0, 0.0])
    level = np.array([0.0, 0.0, 0.0, 0.5, 0.0])

    def decode(points: np.ndarray) -> np.ndarray:
        return slope[None, :] * (points[:, :1] - cross[None, :]) + level[None, :]

    on = np.array([[True, True, False, False, False]])
    alpha, achieved, reached = solve_trajectory(
        np.zeros((1, 1)), np.ones((1, 1)), decode, None, on, np.array([1]), 3, alpha_max=4.0
    )
    assert reached[0] and achieved[0] == 1
    assert 1.0001 <= alpha[0] <= 1.0002 + 1e-6
