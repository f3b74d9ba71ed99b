"""The default registry builder: what it trains, what it stores, what it skips."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recsys import defaults
from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.defaults import DEFAULT_MODELS, DefaultModel, build_default_registry
from recsys.evaluate import evaluate_on_users
from recsys.registry import Registry

FAST = ["popularity", "ease"]
FAST_IDS = ["popularity-synthetic", "ease-synthetic"]


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)


@pytest.fixture
def full_data_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a test would build on the full synthetic set (too slow for a unit test)."""

    def forbidden():
        raise AssertionError("the full synthetic data set was generated")

    monkeypatch.setattr(defaults, "default_dataset", forbidden)


def test_default_models_cover_the_demo_families() -> None:
    families = {m.family for m in DEFAULT_MODELS}
    assert {"popularity", "ease", "dlae", "svd", "mlp", "multvae", "flow", "mlp_flow"} <= families
    ids = [m.model_id for m in DEFAULT_MODELS]
    assert len(ids) == len(set(ids))


def test_default_models_use_a_point_of_their_familys_grid() -> None:
    """The demo's settings come from the same grids the benchmarks choose from (recsys/tuning.py)."""
    from recsys.tuning import family_tuning

    for m in DEFAULT_MODELS:
        fixed, points = family_tuning("mlp" if m.family == "mlp_flow" else m.family)  # MLP+flow = the MLP's choice
        assert any(m.params == {**fixed, **point} for point in points), (m.model_id, m.params)


def test_default_dataset_is_the_full_synthetic_catalogue() -> None:
    ds = defaults.default_dataset()
    assert (ds.name, ds.n_users, ds.n_items) == ("synthetic", 3000, 5000)


def test_build_stores_test_metrics_and_split_info(tmp_path: Path, small) -> None:
    registry = Registry(tmp_path)
    calls = []
    built = build_default_registry(
        registry, dataset=small, families=FAST, progress=lambda done, total, msg: calls.append((done, total, msg))
    )
    assert built == FAST_IDS
    assert registry.ids() == sorted(FAST_IDS)
    # progress: one call per model naming it, then a final one, done never decreasing
    assert [c[0] for c in calls] == [0, 1, 2] and {c[1] for c in calls} == {2}
    assert "popularity-synthetic" in calls[0][2] and "ease-synthetic" in calls[1][2]

    split = strong_generalization_split(small, defaults.SPLIT_SEED)
    for model_id in FAST_IDS:
        loaded = registry.load(model_id)
        m = loaded.manifest
        assert m["info"]["split_seed"] == 0 and m["info"]["fit_seconds"] > 0
        assert m["info"]["split"]["test_users"] == split.test_foldin.shape[0]
        assert m["dataset"]["fingerprint"] == split.train.fingerprint
        again = evaluate_on_users(loaded.model, split.test_foldin, split.test_holdout)
        for key in ("recall@20", "recall@50", "ndcg@100", "coverage@20"):
            assert m["metrics"][key] == pytest.approx(again[key], rel=1e-6), (model_id, key)
    assert registry.read_manifest("ease-synthetic")["params"] == next(
        m.params for m in DEFAULT_MODELS if m.model_id == "ease-synthetic"
    )


def test_present_models_are_skipped_unless_forced(tmp_path: Path, small, full_data_forbidden) -> None:
    registry = Registry(tmp_path)
    build_default_registry(registry, dataset=small, families=FAST)
    before = (tmp_path / "ease-synthetic" / "manifest.json").read_text()
    inode = (tmp_path / "ease-synthetic").stat().st_ino
    # nothing to do: returns at once, without generating any data
    assert build_default_registry(registry, families=FAST) == []
    assert (tmp_path / "ease-synthetic" / "manifest.json").read_text() == before
    assert build_default_registry(registry, dataset=small, families=["ease"], force=True) == ["ease-synthetic"]
    assert (tmp_path / "ease-synthetic").stat().st_ino != inode  # a new directory was swapped in
    assert registry.verify("ease-synthetic") == []


def test_a_damaged_default_model_is_rebuilt(tmp_path: Path, small) -> None:
    registry = Registry(tmp_path)
    build_default_registry(registry, dataset=small, families=FAST)
    weights = tmp_path / "popularity-synthetic" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert registry.verify("popularity-synthetic")
    assert build_default_registry(registry, dataset=small, families=FAST) == ["popularity-synthetic"]
    assert registry.verify("popularity-synthetic") == []


def test_unavailable_family_is_skipped_with_a_warning(tmp_path: Path, small, caplog) -> None:
    models = [DefaultModel("nope-synthetic", "no_such_family"), DefaultModel("popularity-synthetic", "popularity")]
    with caplog.at_level(logging.WARNING, logger="recsys"):
        built = build_default_registry(Registry(tmp_path), dataset=small, models=models)
    assert built == ["popularity-synthetic"]
    assert "nope-synthetic" in caplog.text and "no_such_family" in caplog.text


def test_unknown_family_filter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'rock'"):
        build_default_registry(Registry(tmp_path), families=["rock"])


def test_main_builds_into_the_given_registry(tmp_path: Path, small, monkeypatch, capsys) -> None:
    monkeypatch.setattr(defaults, "default_dataset", lambda: small)
    assert defaults.main(["--registry", str(tmp_path), "--families", "popularity", "--quiet"]) == 0
    assert Registry(tmp_path).ids() == ["popularity-synthetic"]
    assert "popularity-synthetic" in capsys.readouterr().out
    assert defaults.main(["--registry", str(tmp_path), "--families", "jazz"]) == 2
    assert "jazz" in capsys.readouterr().err


def test_registry_defaults_to_models_dir_env(tmp_path: Path, small, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path / "env-models"))
    assert build_default_registry(dataset=small, families=["popularity"]) == ["popularity-synthetic"]
    assert (tmp_path / "env-models" / "popularity-synthetic" / "manifest.json").is_file()


def test_a_failing_fit_costs_only_that_model(tmp_path: Path, small, caplog) -> None:
    models = [DefaultModel("ease-synthetic", "ease", {"l2": -1.0}), DefaultModel("popularity-synthetic", "popularity")]
    with caplog.at_level(logging.ERROR, logger="recsys"):
        built = build_default_registry(Registry(tmp_path), dataset=small, models=models)
    assert built == ["popularity-synthetic"]
    assert Registry(tmp_path).ids() == ["popularity-synthetic"]
    assert "ease-synthetic" in caplog.text and "l2 must be > 0" in caplog.text


def test_main_exits_1_when_a_model_fails(tmp_path: Path, small, monkeypatch, capsys) -> None:
    monkeypatch.setattr(defaults, "default_dataset", lambda: small)
    monkeypatch.setattr(defaults, "DEFAULT_MODELS", [DefaultModel("ease-synthetic", "ease", {"l2": 0.0})])
    assert defaults.main(["--registry", str(tmp_path), "--quiet"]) == 1
    assert "could not build ease-synthetic" in capsys.readouterr().err


def test_a_committed_step_rule_is_stored_and_not_chosen_again(tmp_path: Path, small, monkeypatch) -> None:
    import recsys.steering.protocols as protocols

    def forbidden(*args, **kwargs):
        raise AssertionError("the demo's models carry their rule: nothing to choose while building")

    monkeypatch.setattr(protocols, "choose_step_rule", forbidden)
    rule = {"base": 0.1, "scale": 2.0, "offset": 0.45}
    spec = DefaultModel("mlp-synthetic", "mlp", {"epochs": 3, "latent_dim": 8, "hidden_dim": 16}, step_rule=rule)
    build_default_registry(Registry(tmp_path), dataset=small, models=[spec], n_heldout_users=30)
    stored = Registry(tmp_path).load("mlp-synthetic").manifest["info"]["steering"]["latent_step_rule"]
    assert stored == rule


def test_every_latent_default_model_carries_a_chosen_step_rule() -> None:
    latent = [m for m in DEFAULT_MODELS if m.family not in ("popularity", "ease")]
    assert latent and all(m.step_rule is not None and set(m.step_rule) == {"base", "scale", "offset"} for m in latent)


def test_two_worker_processes_build_what_one_builds(tmp_path: Path, small, caplog) -> None:
    """The first start's parallel build: same models, same metrics, a failure still costs only its model."""
    models = [
        DefaultModel("popularity-synthetic", "popularity"),
        DefaultModel("ease-synthetic", "ease", {"l2": 200.0}),
        DefaultModel("ease-broken", "ease", {"l2": -1.0}),
    ]
    messages: list[str] = []
    one = Registry(tmp_path / "one")
    two = Registry(tmp_path / "two")
    build_default_registry(one, dataset=small, models=models)
    with caplog.at_level(logging.ERROR, logger="recsys"):
        built, failed = defaults._build(
            two, lambda d, t, m: messages.append(m), False, None, small, models, defaults.SPLIT_SEED, None, jobs=2
        )
    assert built == ["popularity-synthetic", "ease-synthetic"] and failed == ["ease-broken"]
    assert "ease-broken" in caplog.text and "l2 must be > 0" in caplog.text
    for model_id in built:
        a, b = (r.read_manifest(model_id)["metrics"] for r in (one, two))
        assert {k: v for k, v in a.items() if "ms" not in k} == {k: v for k, v in b.items() if "ms" not in k}
    assert any("training ease-synthetic" in m for m in messages)  # the workers' progress reaches the parent


def test_build_jobs_default_and_override(monkeypatch) -> None:
    monkeypatch.delenv(defaults.BUILD_JOBS_ENV, raising=False)
    monkeypatch.setattr(defaults.os, "cpu_count", lambda: 2)
    assert defaults.build_jobs() == 2
    monkeypatch.setattr(defaults.os, "cpu_count", lambda: 1)
    assert defaults.build_jobs() == 1
    monkeypatch.setenv(defaults.BUILD_JOBS_ENV, "3")
    assert defaults.build_jobs() == 3
    monkeypatch.setenv(defaults.BUILD_JOBS_ENV, "zero")
    with pytest.raises(ValueError, match="RECSYS_BUILD_JOBS"):
        defaults.build_jobs()


def test_mlp_flow_takes_its_mlp_stage_from_the_stored_mlp(tmp_path: Path, small, monkeypatch) -> None:
    """The build trains the MLP once: MLP+flow reuses the stored "mlp" model's network (same scores),
    and trains its MLP stage itself when that model is missing or was trained with other settings."""
    from recsys.models.mlp_flow import MLPFlowRecommender

    net = {"epochs": 6, "patience": 3, "latent_dim": 8, "hidden_dim": 32}
    models = [
        DefaultModel("mlp-small", "mlp", net),
        DefaultModel("mlp_flow-small", "mlp_flow", {**net, "flow_epochs": 5}, mlp_from="mlp-small"),
        DefaultModel("mlp_flow-other", "mlp_flow", {**net, "hidden_dim": 16, "flow_epochs": 5}, mlp_from="mlp-small"),
        DefaultModel("mlp_flow-orphan", "mlp_flow", {**net, "flow_epochs": 5}, mlp_from="not-built"),
    ]
    trained: list[int] = []
    real = MLPFlowRecommender._train_mlp

    def spy(self, x, validation, progress):
        trained.append(int(self.hidden_dim))
        return real(self, x, validation, progress)

    monkeypatch.setattr(MLPFlowRecommender, "_train_mlp", spy)
    registry = Registry(tmp_path)
    built = build_default_registry(registry, dataset=small, models=models, reducer_factory=None)
    assert built == [m.model_id for m in models]
    assert trained == [16, 32]  # the other settings and the orphan trained their own; the match did not
    split = strong_generalization_split(small, defaults.SPLIT_SEED)
    mlp, flow = registry.load("mlp-small").model, registry.load("mlp_flow-small").model
    assert (flow.score(split.test_foldin) == mlp.score(split.test_foldin)).all()
    stages = [r["stage"] for r in flow.training_log_]
    assert stages[0] == "mlp" and stages[-1] == "flow" and stages.count("mlp") == len(mlp.training_log_)
