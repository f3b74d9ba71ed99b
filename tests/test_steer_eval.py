"""Seed 000's steering evaluation: metrics by hand, sweep consistency, the steer-eval command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import cli
from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.models.mlp import MLPRecommender
from recsys.registry import Registry
from recsys.steering import Steerer, dominant_tags
from recsys.steering.evaluation import (
    SweepConfig,
    _graded_ndcg,
    alpha_to_reach,
    choose_targets,
    steering_sweep,
    tradeoff_figure,
)
from recsys.training import train_from_config


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=400, n_items=500, n_artists=80, n_tags=6, seed=5)


@pytest.fixture(scope="module")
def split(small):
    return strong_generalization_split(small, 0, 50)


@pytest.fixture(scope="module")
def steerer(split) -> Steerer:
    model = MLPRecommender(epochs=40, latent_dim=16, hidden_dim=64, seed=0)
    model.fit(split.train, validation=(split.val_foldin, split.val_holdout))
    return Steerer.from_training(model, split.train.interactions, split.train.items)


def test_graded_ndcg_hand_computed() -> None:
    rel = np.array([[1.0, 0.5, 0.0, 0.5]])
    top = np.array([[1, 0, 2, 3]])  # gains: 2^.5-1, 1, 0, 2^.5-1
    g = 2**0.5 - 1
    disc = 1 / np.log2(np.arange(2, 6))
    dcg = g * disc[0] + 1 * disc[1] + g * disc[3]
    idcg = 1 * disc[0] + g * disc[1] + g * disc[2]
    assert _graded_ndcg(top, rel, 4)[0] == pytest.approx(dcg / idcg)
    assert _graded_ndcg(np.array([[0, 1, 3, 2]]), rel, 4)[0] == pytest.approx(1.0)


def test_targets_are_never_the_dominant_tag(steerer, split) -> None:
    targets = choose_targets(steerer, split.test_foldin, seed=1)
    dom = dominant_tags(split.test_foldin, steerer.tag_matrix)
    assert np.all(targets != dom)
    assert len(set(targets.tolist())) > 1  # drawn, not one fixed tag
    np.testing.assert_array_equal(targets, choose_targets(steerer, split.test_foldin, seed=1))


def test_sweep_reference_rows_and_trends(steerer, split) -> None:
    alphas = {"postfilter": (0, 1, 4, 16), "tune": (0, 0.5, 1, 2), "tune+post": (0, 0.5, 1)}
    df = steering_sweep(steerer, split.test_foldin, split.test_holdout, alphas=alphas, config=SweepConfig(n_users=40))
    at_zero = df[(df["alpha"] == 0) & (df["mode"] != "tune+post")]
    zero = at_zero.drop(columns=["mode", "dist_centroid", "dist_heldout"])
    assert len(zero) == 2 and (zero.nunique() == 1).all()  # alpha 0 is the standard list (postfilter, tune)
    assert (at_zero["delta_ndcg@100"] == 0).all() and (at_zero["jaccard@20"] == 1).all()
    # tune+post at alpha 0 is its latent step alone: already moved toward the tag, less than the full tune
    step_only = df[(df["alpha"] == 0) & (df["mode"] == "tune+post")].iloc[0]
    assert step_only["share@20"] >= at_zero["share@20"].iloc[0] and step_only["jaccard@20"] < 1
    for mode in alphas:
        g = df[df["mode"] == mode]
        assert g["share@20"].is_monotonic_increasing, (mode, g["share@20"].tolist())
        assert g["share@20"].iloc[-1] > g["share@20"].iloc[0]
        counts = g[["hits_heldout@20", "hits_target@20", "neither@20"]].sum(axis=1)
        np.testing.assert_allclose(counts, 20.0)
    tune = df[df["mode"] == "tune"]
    assert tune["dist_centroid"].iloc[2] < tune["dist_centroid"].iloc[0]  # alpha 1 moves toward c_t
    post = df[df["mode"] == "postfilter"]
    assert post["dist_centroid"].nunique() == 1  # postfiltering does not move the point
    reach = alpha_to_reach(df, 0.5)
    assert reach["postfilter"] is not None and reach["tune"] is not None


def test_sweep_agrees_with_the_page_call(steerer, split) -> None:
    """The sweep's vectorised tune list for one user is the list Steerer.recommend gives that user."""
    u = int(np.flatnonzero(np.diff(split.test_holdout.indptr) > 0)[0])
    foldin, holdout = split.test_foldin[u], split.test_holdout[u]
    target = steerer.vocabulary[choose_targets(steerer, foldin, seed=0)[0]]
    df = steering_sweep(steerer, foldin, holdout, alphas={"tune": (1.0,)}, config=SweepConfig(n_users=1))
    picks = list(steerer.items["item_id"].iloc[foldin.indices])
    r = steerer.recommend(picks, {target: 1.0}, 1.0, modes=("tune",))
    row = df[(df["mode"] == "tune") & (df["alpha"] == 1.0)].iloc[0]
    assert row["share@20"] == pytest.approx(r.lists["tune"].tag_share)


def test_tradeoff_figure_has_a_curve_per_mode(steerer, split) -> None:
    df = steering_sweep(
        steerer, split.test_foldin, split.test_holdout, alphas={"postfilter": (0, 2), "tune": (0, 1)},
        config=SweepConfig(n_users=20),
    )  # fmt: skip
    fig = tradeoff_figure({"a": df, "b": df})
    curves = [t for t in fig.data if t.x[0] is not None]
    assert sorted(t.name for t in curves) == ["a: postfilter", "a: tune", "b: postfilter", "b: tune"]
    assert sorted(t.name for t in fig.data if t.showlegend is not False and t.x[0] is None) == ["postfilter", "tune"]
    assert {t.line.color for t in curves if t.name.endswith("tune")} == {
        t.line.color for t in fig.data if t.name == "tune"
    }
    assert fig.layout.xaxis.title.text.startswith("target-tag share")


def test_steer_eval_command_writes_table_and_figure(tmp_path: Path, small, monkeypatch, capsys) -> None:
    reg = Registry(tmp_path / "reg")
    cfg = {"family": "mlp", "dataset": "synthetic", "seed": 0, "n_heldout_users": 50, "model_id": "m",
           "params": {"epochs": 20, "latent_dim": 16, "hidden_dim": 32}}  # fmt: skip
    train_from_config(cfg, dataset=small, registry=reg)
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: small)
    out = tmp_path / "out"
    argv = ["steer-eval", "--model", "m", "--registry", str(reg.root), "--out", str(out), "--users", "30"]
    argv += ["--alphas-post", "0,2,8", "--alphas-tune", "0,1,3", "--alphas-tune-post", "0,1"]
    assert cli.main(argv) == 0
    table = pd.read_csv(out / "steering_m.csv")
    assert set(table["mode"]) == {"postfilter", "tune", "tune+post"}
    assert sorted(table[table["mode"] == "tune"]["alpha"]) == [0, 1, 3]
    md = (out / "steering_m.md").read_text()
    assert "share@20" in md and "command:" in md
    assert (out / "tradeoff_m.html").stat().st_size > 1000
    assert "Smallest swept alpha" in capsys.readouterr().out


def test_steer_eval_protocols_writes_the_matched_share_tables(tmp_path: Path, small, monkeypatch, capsys) -> None:
    reg = Registry(tmp_path / "reg")
    cfg = {"family": "mlp", "dataset": "synthetic", "seed": 0, "n_heldout_users": 50, "model_id": "m",
           "params": {"epochs": 20, "latent_dim": 16, "hidden_dim": 32}}  # fmt: skip
    train_from_config(cfg, dataset=small, registry=reg)
    stored = Registry(reg.root).load("m").manifest["info"]["steering"]["latent_step_rule"]
    assert set(stored) == {"base", "scale", "offset"}  # chosen on validation users at training time
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: small)
    out = tmp_path / "out"
    argv = ["steer-eval", "--model", "m", "--registry", str(reg.root), "--out", str(out), "--users", "30"]
    argv += ["--protocols", "e2,e3,e5", "--shares", "0.5", "--keep-step"]
    assert cli.main(argv) == 0
    md = (out / "protocols_m.md").read_text()
    assert "E2: the tag the held-out items carry more" in md and "E3: 80% of tags hidden (popularity)" in md
    assert "E5: tags-only cold start" in md and "E1" not in md and "command:" in md
    assert cli.main([*argv[:-5], "--protocols", "e4"]) == 2
    assert "unknown protocols ['e4']" in capsys.readouterr().err


def test_steer_eval_refuses_changed_data(tmp_path: Path, small, monkeypatch, capsys) -> None:
    reg = Registry(tmp_path / "reg")
    cfg = {"family": "ease", "dataset": "synthetic", "seed": 0, "n_heldout_users": 50, "model_id": "e", "params": {}}
    train_from_config(cfg, dataset=small, registry=reg)
    other = generate_synthetic(n_users=400, n_items=500, n_artists=80, n_tags=6, seed=6)
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: other)
    argv = ["steer-eval", "--model", "e", "--registry", str(reg.root), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "not the one model 'e' was trained on" in capsys.readouterr().err


def test_a_hanging_png_export_is_stopped_and_the_html_kept(tmp_path: Path, monkeypatch) -> None:
    import recsys.steering.evaluation as se

    monkeypatch.setattr(se, "_PNG_SCRIPT", "import time; time.sleep(60)")
    monkeypatch.setattr(se, "PNG_TIMEOUT_S", 1.0)
    fig = tradeoff_figure({"m": pd.DataFrame({"mode": ["tune"], "alpha": [0.0], "share@20": [0.1], "ndcg@100": [0.3],
                                              "delta_ndcg@100": [0.0]})})  # fmt: skip
    t0 = __import__("time").perf_counter()
    written = se.write_figure(fig, str(tmp_path / "fig"))
    assert written == [str(tmp_path / "fig.html")] and (tmp_path / "fig.html").is_file()
    assert __import__("time").perf_counter() - t0 < 30
