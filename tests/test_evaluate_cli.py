"""``python -m recsys evaluate``: tuned once on the first seed, thread limits, early stopping, bars."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

import recsys.cli as cli
from recsys import threads, tuning
from recsys.data.splits import strong_generalization_split
from recsys.data.synthetic import generate_synthetic
from recsys.evaluate import run_protocol
from recsys.models import EASE, Popularity
from recsys.models.base import MODEL_CLASSES

H = 30


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=300, n_items=250, n_artists=50, n_tags=6, seed=4)


@pytest.fixture
def env(tmp_path, monkeypatch, small):
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: small)
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path / "store"))
    return tmp_path


def evaluate_here(*argv: str) -> int:
    """``evaluate`` in this process (--jobs 1), so that spies and registered fakes see every fit."""
    return cli.main(["evaluate", *argv, "--heldout-users", str(H), "--jobs", "1"])


class FakeTorchFamily(Popularity):
    """Popularity that trains in 'epochs' like the torch families: records what its fits were given."""

    fits: ClassVar[list[dict]] = []

    def __init__(self, *, epochs: int = 20, patience: int | None = None, seed: int = 0):
        self.epochs, self.patience, self.seed = epochs, patience, seed
        self.weighted = False

    def _fit(self, train, validation, progress) -> None:
        super()._fit(train, validation, progress)
        FakeTorchFamily.fits.append(
            {
                "epochs": self.epochs,
                "patience": self.patience,
                "seed": self.seed,
                "validation": validation is not None,
                "progress": progress is not None,
                "torch_threads": torch.get_num_threads(),
            }
        )
        for epoch in range(1, 4):  # stops early after 3 of its `epochs`
            if progress is not None:
                progress(epoch, 0.0, {"val_ndcg@100": 0.1})
        self.best_epoch_, self.training_log_ = 1, [{"epoch": e} for e in range(1, 4)]


def test_grid_is_fitted_only_on_the_first_seeds_split_and_its_choice_used_for_every_seed(
    env, small, capsys, monkeypatch
):
    fits: list[tuple[float, str]] = []
    real_fit = EASE._fit

    def spy(self, train, validation, progress):
        fits.append((self.l2, train.fingerprint))
        return real_fit(self, train, validation, progress)

    monkeypatch.setattr(EASE, "_fit", spy)
    assert evaluate_here("--models", "ease", "--seeds", "2,0,1") == 0
    train_of = {s: strong_generalization_split(small, s, H).train.fingerprint for s in (0, 1, 2)}
    grid = len(tuning.EASE_L2)
    on = {s: [l2 for l2, fp in fits if fp == train_of[s]] for s in train_of}
    # the first seed given (2) tunes: the whole grid plus its test fit; the others one test fit each
    assert len(on[2]) == grid + 1 and sorted(on[2][:grid]) == sorted(tuning.EASE_L2)
    chosen = on[2][-1]
    assert on[0] == [chosen] and on[1] == [chosen] and len(fits) == grid + 3
    out = capsys.readouterr().out
    assert "validation users of seed 2's split" in out and f"`{{'l2': {chosen}}}`" in out
    assert out.count("l2=") == grid  # every trial printed under the table


def test_rows_share_the_chosen_point_and_record_the_trials(small) -> None:
    specs = cli._model_specs(["popularity", "ease"])
    res = run_protocol(small, specs, [0, 1, 2], n_heldout_users=H)
    ease = res[res["model"] == "ease"]
    assert len(ease) == 3 and (res["tuned_on_seed"] == 0).all()
    assert ease["params"].map(lambda p: p["l2"]).nunique() == 1
    trials = ease["validation_trials"].iloc[0]
    assert [t["point"]["l2"] for t in trials] == list(tuning.EASE_L2)
    best = max(trials, key=lambda t: t["ndcg@100"])["point"]["l2"]
    assert ease["params"].iloc[0] == {"l2": best}
    assert res.loc[res["model"] == "popularity", "validation_trials"].map(len).eq(0).all()


def test_evaluate_runs_under_the_training_thread_limit(env, monkeypatch) -> None:
    monkeypatch.setitem(MODEL_CLASSES, "fake_torch", FakeTorchFamily)
    FakeTorchFamily.fits = []
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)  # the shared 2-core box: 1 thread
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert evaluate_here("--models", "fake_torch", "--seeds", "0,1") == 0
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(before)
    assert [f["torch_threads"] for f in FakeTorchFamily.fits] == [1, 1]


def test_epoch_families_train_with_a_cap_and_patience_on_validation_users(env, capsys, monkeypatch) -> None:
    monkeypatch.setitem(MODEL_CLASSES, "fake_torch", FakeTorchFamily)
    FakeTorchFamily.fits = []
    assert evaluate_here("--models", "fake_torch", "--seeds", "3,4") == 0
    fits = FakeTorchFamily.fits
    assert [(f["epochs"], f["patience"]) for f in fits] == [(100, 5), (100, 5)]
    assert all(f["validation"] and f["progress"] for f in fits)  # early stopping data + the epoch bar
    assert [f["seed"] for f in fits] == [3, 4]  # each seed's model is seeded with its split seed
    out = capsys.readouterr()
    assert "best epoch / epochs run: s3 1/3, s4 1/3" in out.out
    assert "fake_torch seed 4" in out.err  # the bars go to stderr


@pytest.mark.parametrize("family", ["mlp", "multvae", "autoencoder", "flow", "mlp_flow"])
def test_torch_families_get_early_stopping_from_one_table(family) -> None:
    (spec,) = cli._model_specs([family])
    assert {k: spec.params[k] for k in ("epochs", "patience")} == tuning.EARLY_STOPPING


def test_unlisted_families_get_early_stopping_only_if_they_take_epochs_and_patience() -> None:
    assert tuning.family_tuning("not_listed", FakeTorchFamily).fixed == tuning.EARLY_STOPPING
    assert tuning.family_tuning("not_listed", Popularity) == tuning.FamilyTuning({})
    assert tuning.family_tuning("ease").points == tuple({"l2": v} for v in tuning.EASE_L2)


def test_no_search_fits_each_grids_first_point_only() -> None:
    full = {s.name: s for s in cli._model_specs(["ease", "multvae", "recvae", "dlae"])}
    quick = {s.name: s for s in cli._model_specs(["ease", "multvae", "recvae", "dlae"], search=False)}
    assert all(len(full[n].grid) > 1 for n in full)  # the zoo's grids, the same table
    assert all(quick[n].grid == full[n].grid[:1] and quick[n].params == full[n].params for n in full)
    assert cli.build_parser().parse_args(["evaluate", "--no-search"]).search is False


def _recording_context(events: list):
    """A fit_context that records each fit's opening, epochs and closing."""
    import contextlib

    @contextlib.contextmanager
    def fit_context(stage, spec, seed, params):
        key = (stage, spec.name, seed, tuple(sorted(params.items())))
        events.append(("open", key))
        yield lambda epoch, elapsed, info: events.append(("epoch", key))
        events.append(("close", key))

    return fit_context


def test_worker_processes_give_the_same_rows_and_a_bar_per_fit(small) -> None:
    """--jobs 2 spreads the grid and the seeds over two spawned processes: same rows, every fit shown."""
    from recsys.evaluate import ModelSpec
    from recsys.models.multvae import MultVAE

    specs = [
        *cli._model_specs(["popularity", "ease"]),
        ModelSpec("multvae", MultVAE, {"epochs": 3, "patience": 2}, ({"beta_max": 0.2}, {"beta_max": 0.1})),
    ]
    here, there = [], []
    one = run_protocol(small, specs, [0, 1], n_heldout_users=H, fit_context=_recording_context(here), jobs=1)
    two = run_protocol(small, specs, [0, 1], n_heldout_users=H, fit_context=_recording_context(there), jobs=2)
    cols = ["model", "seed", "recall@20", "ndcg@100", "params", "validation_trials", "best_epoch", "epochs_run"]
    keep = ["model", "seed", "recall@20", "ndcg@100", "params", "best_epoch", "epochs_run"]
    assert one[keep].fillna(-1).equals(two[keep].fillna(-1))
    strip = lambda trials: [{k: v for k, v in t.items() if k != "fit_s"} for t in trials]
    assert one["validation_trials"].map(strip).tolist() == two["validation_trials"].map(strip).tolist()
    assert set(cols) <= set(two.columns)
    # every fit (7 EASE + 2 Multi-VAE grid points, 3 models x 2 seeds) opened once and closed once
    for events in (here, there):
        opened = [k for kind, k in events if kind == "open"]
        assert len(opened) == len(set(opened)) == len(tuning.EASE_L2) + 2 + 6
        assert sorted(opened) == sorted(k for kind, k in events if kind == "close")
    # the workers' epochs reach the parent's bars (the last may race its result and be dropped)
    epochs = [k for kind, k in there if kind == "epoch"]
    assert {k[1] for k in epochs} == {"multvae"} and len(epochs) >= 6


def test_a_failing_fit_in_a_worker_stops_the_run_with_its_error(small) -> None:
    from recsys.evaluate import ModelSpec

    specs = [ModelSpec("ease", EASE, {}, ({"l2": -1.0}, {"l2": 50.0}))]
    with pytest.raises(ValueError, match="l2"):
        run_protocol(small, specs, [0], n_heldout_users=H, jobs=2)


def test_jobs_default_to_what_the_cores_hold(monkeypatch) -> None:
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.evaluation_jobs() == 2  # 1 thread per fit on 2 cores
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 16)
    assert threads.evaluation_jobs() == 2  # 8 threads per fit
    monkeypatch.setenv(threads.ENV, "1")
    assert threads.evaluation_jobs() == 16
    with pytest.raises(cli.CliError, match="--jobs"):
        cli.cmd_evaluate(cli.build_parser().parse_args(["evaluate", "--jobs", "0"]))
