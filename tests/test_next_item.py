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
