"""Templates of the sequential families load and train through `recsys train` (next-item protocol)."""

from __future__ import annotations

import pytest

from recsys.cli import main as run
from recsys.data.synthetic import generate_synthetic
from recsys.next_item import train_validate_test
from recsys.registry import Registry
from recsys.training import ConfigError, apply_overrides, load_template, train_from_config

TEMPLATES = {"train_vae": "seqvae", "train_bert": "bert4rec", "train_dtnmr": "dtnmr"}
TINY = {
    "train_vae": ["epochs=1", "latent_dim=8", "hidden_dim=16"],
    "train_bert": ["epochs=1", "dim=8", "max_len=10", "layers=1"],
    "train_dtnmr": ["epochs=1", "dim=8", "hidden=16", "max_points_per_user=5", "cache_dir=null"],
}


@pytest.fixture(scope="module")
def tiny():
    return generate_synthetic(n_users=80, n_items=100, n_artists=20, n_tags=5, seed=5)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_load_and_override(template):
    cfg = load_template(template)
    assert cfg["family"] == TEMPLATES[template] and cfg["protocol"] == "next_item"
    cfg = apply_overrides(cfg, ["epochs=5"])
    assert cfg["params"]["epochs"] == 5
    with pytest.raises(ConfigError, match="no parameter"):
        apply_overrides(cfg, ["no_such_knob=1"])


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_templates_train_and_register(template, tiny, tmp_path):
    cfg = apply_overrides(load_template(template), TINY[template])
    model_id, metrics = train_from_config(cfg, dataset=tiny, registry=Registry(tmp_path))
    assert {"hr@10", "ndcg@10", "fit_s", "val_hr@10"} <= set(metrics)
    loaded = Registry(tmp_path).load(model_id)
    assert loaded.manifest["info"]["protocol"] == "next_item"
    assert loaded.model.score_sequences([[1, 2, 3]]).shape == (1, tiny.n_items)


def test_unknown_protocol_is_refused(tiny, tmp_path):
    cfg = {**load_template("train_bert"), "protocol": "sideways"}
    with pytest.raises(ConfigError, match="unknown protocol"):
        train_from_config(cfg, dataset=tiny, registry=Registry(tmp_path))


def test_cli_train_bert_with_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path))
    import recsys.data as data

    monkeypatch.setattr(data, "load_dataset", lambda name, data_dir=None, **kw: generate_synthetic(
        n_users=60, n_items=80, n_artists=16, n_tags=4, seed=1))  # fmt: skip
    args = ["train", "--template", "train_bert"] + [x for s in TINY["train_bert"] for x in ("--set", s)]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "registered bert4rec-synthetic" in out and "hr@10" in out


def test_wrapper_reports_epoch_time(tiny):
    from recsys.data.splits import temporal_leave_last_out
    from recsys.models.seqvae import SequentialVAE

    res = train_validate_test(SequentialVAE(latent_dim=8, hidden_dim=16, epochs=2), temporal_leave_last_out(tiny))
    assert res["epochs"] == 2 and res["s_per_epoch"] > 0 and 0 <= res["ndcg@10"] <= res["hr@10"] <= 1


def _benchmark_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "next_item.py"
    spec = importlib.util.spec_from_file_location("next_item_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(model, seed, ndcg, epochs=None, best=None):
    return {
        "model": model, "seed": seed, "hr@10": 2 * ndcg, "ndcg@10": ndcg, "val_hr@10": 0.2, "val_ndcg@10": 0.1,
        "fit_s": 1.0, "epochs": epochs, "best_epoch": best, "s_per_epoch": 0.5 if epochs else None,
        "score_ms_per_user": 0.1, "peak_rss_mib": 500.0, "rss_before_mib": 400.0, "wall_s": 2.0,
    }  # fmt: skip


def test_benchmark_aggregates_seeds_and_flags_capped_runs():
    bench = _benchmark_module()
    rows = [_row("bert4rec", s, v, 30 + s, 25) for s, v in enumerate((0.10, 0.12, 0.14))]
    rows.append(_row("ease", 0, 0.11))
    (bert, ease) = bench.aggregate(rows)
    assert bert["ndcg@10"] == pytest.approx(0.12) and bert["ndcg@10_std"] == pytest.approx(0.02)  # ddof=1
    assert bert["hr@10"] == pytest.approx(0.24) and ease["ndcg@10_std"] == 0.0
    text = bench.table(rows)
    assert "0.1200 ± 0.0200" in text and "30 (25), 31 (25), 32 (25)" in text and "0,1,2" in text
    assert "every torch model's best epoch < epochs run" in bench.convergence(rows)
    verdict = bench.verdict(rows)
    assert "A sequential model beats" in verdict and "in 2 of 3 seeds" in verdict  # seed 0: 0.10 < EASE 0.11
    assert "0.1100 ± 0.0000" in text  # deterministic: one run stands for every seed
    assert "0.2000 (1 run)" in bench.table(rows[:1])  # a seeded model with one finished run shows no std
    rows[2] = _row("bert4rec", 2, 0.14, 40, 40)  # best epoch = last: stopped by the cap
    assert "NOT converged" in bench.convergence(rows) and "seed 2 (40 (40))" in bench.convergence(rows)
