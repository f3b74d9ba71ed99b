"""Matched-share evaluations: hidden tags, held-out targets, bootstrap CIs, tags-only cold start, the step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.steering import normalised_item_tags
from recsys.steering.protocols import (
    STEP_RULE_GRID,
    ProtocolConfig,
    bootstrap_ci,
    choose_step_rule,
    cold_start_tags,
    hide_tags,
    matched_share_eval,
    run_protocols,
    summarise,
    target_heldout,
    visible_steerer,
)
from recsys.steering.tags import tag_shares
from tests.test_steering import split, steerers  # noqa: F401 (fixtures)

CFG = ProtocolConfig(n_users=40, n_boot=200, batch_size=16)


def _entries(items: pd.DataFrame) -> int:
    return sum(len(t) for t in normalised_item_tags(items))


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8, 1.0])
def test_hiding_removes_exactly_that_share_of_item_tag_entries(split, fraction) -> None:  # noqa: F811
    items = split.train.items
    hidden = hide_tags(items, fraction, seed=1)
    assert _entries(hidden) == _entries(items) - round(fraction * _entries(items))
    kept = normalised_item_tags(hidden)
    assert all(set(h) <= set(o) for h, o in zip(kept, normalised_item_tags(items), strict=True))  # only removes
    assert hidden["tags"].tolist() == hide_tags(items, fraction, seed=1)["tags"].tolist()  # seeded


def test_popularity_biased_hiding_takes_rare_items_tags_first(split) -> None:  # noqa: F811
    items = split.train.items
    pop = np.diff(split.train.interactions.tocsc().indptr)
    rare = pop <= np.median(pop)
    uniform = hide_tags(items, 0.5, bias="uniform", seed=0)
    biased = hide_tags(items, 0.5, bias="popularity", popularity=pop, seed=0)

    def lost_on_rare(h: pd.DataFrame) -> int:
        before = np.array([len(t) for t in normalised_item_tags(items)])
        after = np.array([len(t) for t in normalised_item_tags(h)])
        return int((before - after)[rare].sum())

    assert lost_on_rare(biased) > lost_on_rare(uniform)
    with pytest.raises(ValueError, match="popularity"):
        hide_tags(items, 0.5, bias="popularity")


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_more_users() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.1, 1, 50), rng.normal(0.1, 1, 5000)
    lo_s, hi_s = bootstrap_ci(small, 500)
    lo_l, hi_l = bootstrap_ci(large, 500)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 5
    assert bootstrap_ci(np.zeros(30)) == (0.0, 0.0)


def test_the_heldout_target_is_a_tag_the_heldout_items_carry_more(steerers, split) -> None:  # noqa: F811
    st = steerers["mlp"]
    targets = target_heldout(st, split.test_foldin, split.test_holdout)
    gain = tag_shares(split.test_holdout, st.tag_matrix) - tag_shares(split.test_foldin, st.tag_matrix)
    chosen = [(u, t) for u, t in enumerate(targets) if t is not None]
    assert len(chosen) > 10
    for u, t in chosen:
        j = st.vocabulary.index(t)
        assert gain[u, j] > 0 and gain[u, j] == max(gain[u, st.vocabulary.index(s)] for s in st.steerable_tags)


def test_matched_share_eval_matches_shares_and_the_postfilter_is_its_own_reference(steerers, split) -> None:  # noqa: F811
    st = steerers["mlp"]
    targets = target_heldout(st, split.test_foldin, split.test_holdout)
    per_user = matched_share_eval(st, st, split.test_foldin, split.test_holdout, targets, CFG)
    table = summarise(per_user, CFG)
    post = table[table["mode"] == "postfilter"]
    assert (post["Δ tag recall vs postfilter"] == 0).all()
    for _, row in table[table["mode"].isin(["postfilter", "tune+post"])].iterrows():
        assert row["share"] >= row["target share"] - 0.05  # matched (at or above: some lists start above)
        assert row["true share"] == pytest.approx(row["share"])  # complete tags: visible = true
    assert per_user["tag recall"].between(0, 1).all() and per_user["taste"].between(0, 1).all()


def test_with_hidden_tags_the_visible_share_is_matched_and_the_true_share_is_higher(steerers, split) -> None:  # noqa: F811
    st = steerers["mlp"]
    x = split.train.interactions
    vis = visible_steerer(st, x, hide_tags(split.train.items, 0.5, seed=0), st.model.encode(x))
    targets = target_heldout(st, split.test_foldin, split.test_holdout)
    table = summarise(matched_share_eval(st, vis, split.test_foldin, split.test_holdout, targets, CFG), CFG)
    post = table[table["mode"] == "postfilter"]
    assert (post["true share"] >= post["share"]).all()  # hidden entries still count as the tag
    assert (np.abs(post["share"] - post["target share"]) <= 0.06).all()


def test_tags_only_cold_start_compares_four_lists(steerers, split) -> None:  # noqa: F811
    e5 = cold_start_tags(steerers["mlp"], split.test_foldin, split.test_holdout, CFG)
    means = e5.groupby("method")[["NDCG@100", "share@20"]].mean()
    assert set(means.index) == {
        "centroids",
        "postfiltered popularity",
        "centroids, tag-filtered",
        "tag-filtered popularity",
        "popularity",
    }
    assert means.loc["tag-filtered popularity", "share@20"] == pytest.approx(1.0)
    assert means.loc["centroids, tag-filtered", "share@20"] == pytest.approx(1.0)
    # the postfiltered popularity list is matched to the centroid list's share, person by person
    assert means.loc["postfiltered popularity", "share@20"] == pytest.approx(
        means.loc["centroids", "share@20"], abs=0.03
    )


def test_the_step_rule_is_chosen_on_validation_users_within_the_accuracy_budget(steerers, split) -> None:  # noqa: F811
    st = steerers["mlp"]
    rule, table = choose_step_rule(
        st, split.train.interactions, split.train.items, split.val_foldin, split.val_holdout, cfg=CFG
    )
    assert len(table) == len(STEP_RULE_GRID) and rule in STEP_RULE_GRID
    postfilter = table[(table["scale"] == 0) & (table["base"] == 0)].iloc[0]  # step 0 is the postfilter
    assert postfilter["within budget"]
    chosen = table[(table["base"] == rule.base) & (table["scale"] == rule.scale) & (table["offset"] == rule.offset)]
    chosen = chosen.iloc[0]
    assert chosen["within budget"]
    assert chosen["NDCG@100 (complete)"] >= postfilter["NDCG@100 (complete)"] - 0.005
    # also for a tag the person does not favour (a random non-dominant one): the rest of the list stays theirs
    assert chosen["NDCG@100 (complete, random tag)"] >= postfilter["NDCG@100 (complete, random tag)"] - 0.005
    assert chosen["tag recall (hidden, mean)"] == table.loc[table["within budget"], "tag recall (hidden, mean)"].max()


def test_run_protocols_covers_every_condition(steerers, split) -> None:  # noqa: F811
    res = run_protocols(steerers["svd"], split, CFG)
    assert not res.e1.empty and not res.e5.empty
    assert set(res.e3) == {(0.0, "none"), (0.5, "uniform"), (0.5, "popularity"), (0.8, "uniform"), (0.8, "popularity")}
    assert res.step_rule in STEP_RULE_GRID
