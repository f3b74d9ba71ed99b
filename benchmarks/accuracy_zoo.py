"""Model zoo on the BENCHMARK.md accuracy protocol: every family (and two peers) in one run.

    python benchmarks/accuracy_zoo.py --dataset lastfm-2k --out benchmarks/results/accuracy_zoo_lastfm-2k.md
    python benchmarks/accuracy_zoo.py --dataset ml-1m --out benchmarks/results/accuracy_zoo_ml-1m.md

What one run does, per data set:

1. **Tuning, validation users only.** For each family a small grid (``GRIDS``) is fitted on the
   training users of the seed-0 split and scored on that split's *validation* users (NDCG@100);
   the best point is kept for every seed. Torch families stop early on the same validation users
   (``epochs`` is a cap). Test users are never looked at before the choice is made.
2. **Test.** For every seed: refit with the chosen parameters on the training users, score the test
   users' fold-in histories, average Recall@20/50, NDCG@100 and coverage@20 over test users.
3. **Cost.** Fit seconds (wall), scoring milliseconds per test user (``model.score`` on batches of
   1,000), and peak memory: the highest resident set size (RSS, ``/proc/self/statm`` sampled every
   5 ms by a thread) during fit + test scoring, minus the RSS just before the fit; the worst seed is
   reported. A family's tuning and its test seeds run in two fresh worker processes (``--worker``),
   so memory freed by the grid or by another family does not hide the cost (the first seed runs in a
   clean process; later seeds may reuse memory the allocator kept). torch, OpenMP and BLAS run with
   one thread everywhere.
4. **Peers** (``benchmarks/requirements-peers.txt``, not part of the library): implicit's ALS and
   Cornac's VAECF, wrapped as :class:`recsys.models.base.Recommender` so they are scored by the same
   code; test users are folded in (ALS: implicit's own ``recalculate_user`` least squares; VAECF: its
   encoder's mean, then its decoder). If a peer does not import, the result file says why.
5. **Epoch time ratio.** Multi-VAE and Cornac VAECF with the same network (n_items-600-200-600-
   n_items, tanh, multinomial likelihood, batch 128, Adam 1e-3) train ``RATIO_EPOCHS`` epochs each,
   alternately, twice, on the seed-0 training users without validation; the ratio of the mean
   seconds per epoch is reported.

Each worker writes its rows as JSON under ``--work-dir``; a rerun keeps what is still valid: a
family's tuning if it was chosen from the current grid (``--set-grid`` changes it), its test rows if
they were run with the parameters that tuning chose, adding only the seeds they lack; anything else is
renamed ``*.superseded-<time>.json`` and redone (delete a JSON to redo it anyway); a closed-form family
(``CLOSED_FORM``: EASE, DLAE) retuned on a grown grid keeps the superseded file's trials of the points
it already scored and fits only the new ones. ``--seeds`` and
``--slow-seeds`` (families that get fewer seeds, e.g. to fit in a time budget) decide what is run; the
result file lists the seeds each family actually has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys.tuning import TUNING  # noqa: E402  (after the sys.path line above)

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

#: family -> display name, in table order.
NAMES = {
    "popularity": "Popularity",
    "ease": "EASE",
    "svd": "SVD",
    "mlp": "MLP",
    "multvae": "Multi-VAE",
    "recvae": "RecVAE",
    "dlae": "Low-rank DLAE",
    "autoencoder": "AutoEncoder",
    "flow": "Flow",
    "mlp_flow": "MLP+flow",
    "als": "implicit ALS (peer)",
    "vaecf": "Cornac VAECF (peer)",
}
PEERS = ("als", "vaecf")

#: Fixed parameters per family (on top of the class defaults) and the grid tried on validation users:
#: the library's table (``recsys/tuning.py``, also used by ``python -m recsys evaluate``) plus the peers.
#: Grid points are dicts (not a cartesian product) so that tied sizes can move together.
PEER_TUNING: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "als": (
        {"iterations": 15},
        [
            {"factors": 64, "regularization": 0.1, "alpha": 1.0},
            {"factors": 128, "regularization": 0.1, "alpha": 1.0},
            {"factors": 64, "regularization": 1.0, "alpha": 10.0},
            {"factors": 128, "regularization": 1.0, "alpha": 10.0},
            {"factors": 256, "regularization": 1.0, "alpha": 10.0},
        ],
    ),
    "vaecf": (
        {"k": 200, "hidden_dim": 600, "beta": 0.2, "batch_size": 128, "learning_rate": 1e-3},
        [{"n_epochs": 30}, {"n_epochs": 100}],
    ),
}
BASE: dict[str, dict[str, Any]] = {f: dict(TUNING[f].fixed) for f in NAMES if f in TUNING}
BASE.update({f: fixed for f, (fixed, _) in PEER_TUNING.items()})
GRIDS: dict[str, list[dict[str, Any]]] = {f: [dict(p) for p in TUNING[f].points] for f in NAMES if f in TUNING}
GRIDS.update({f: points for f, (_, points) in PEER_TUNING.items()})
#: The MLP+flow's scores are its MLP's (``score`` = the MLP's decode(encode(x)), trained exactly as the
#: "mlp" family): it takes the MLP's validation choice instead of refitting the same grid.
REUSE = {"mlp_flow": "mlp"}
#: Closed-form families: a grid point's validation score does not depend on when it was fitted (one
#: thread, no seed), so a retune after the grid grew keeps the trials of points it already has.
CLOSED_FORM = ("ease", "dlae")
#: Epochs each VAE trains for the epoch-time ratio.
RATIO_EPOCHS = 5


# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakRSS:
    """Context manager: ``peak_mib`` = max RSS seen while inside (sampled every 5 ms) minus RSS at entry."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mib = 0.0

    def __enter__(self) -> PeakRSS:
        self._base = rss_bytes()
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.peak_mib = (self._peak - self._base) / 2**20


# ---------------------------------------------------------------------------------------------
# peers, wrapped in the library's interface
# ---------------------------------------------------------------------------------------------
def _peer_classes() -> dict[str, type]:
    from recsys.models.base import Recommender

    class ImplicitALS(Recommender):
        """implicit's ALS (Hu, Koren & Volinsky 2008); new users by implicit's ``recalculate_user``."""

        def __init__(self, *, factors=64, regularization=0.1, alpha=1.0, iterations=15, seed=0):
            self.factors, self.regularization, self.alpha = factors, regularization, alpha
            self.iterations, self.seed = iterations, seed

        def _fit(self, train, validation, progress):
            from implicit.cpu.als import AlternatingLeastSquares

            self.als_ = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                calculate_training_loss=False,
                num_threads=1,
                random_state=int(self.seed),
            )
            self.als_.fit(train.binary(), show_progress=False)

        def _score(self, x):
            x = sp.csr_matrix(x, dtype=np.float32, copy=True)
            x.data[:] = 1.0
            users = self.als_.recalculate_user(np.arange(x.shape[0]), x)
            return np.asarray(users) @ np.asarray(self.als_.item_factors).T

    class CornacVAECF(Recommender):
        """Cornac's VAECF; new users: the encoder's mean of their 0/1 history, then the decoder."""

        def __init__(
            self, *, k=200, hidden_dim=600, beta=0.2, n_epochs=100, batch_size=128, learning_rate=1e-3, seed=0
        ):
            self.k, self.hidden_dim, self.beta, self.n_epochs = k, hidden_dim, beta, n_epochs
            self.batch_size, self.learning_rate, self.seed = batch_size, learning_rate, seed

        def _fit(self, train, validation, progress):
            import cornac

            x = train.binary().tocoo()
            triples = list(zip(x.row.astype(str), x.col.astype(str), x.data.astype(float), strict=True))
            data = cornac.data.Dataset.from_uir(triples, seed=int(self.seed))
            # cornac numbers items in order of appearance: our column c is its column cols_[c]
            self.cols_ = np.array([data.iid_map[str(c)] for c in range(train.n_items)])
            self.vaecf_ = cornac.models.VAECF(
                k=int(self.k),
                autoencoder_structure=[int(self.hidden_dim)],
                act_fn="tanh",
                likelihood="mult",
                n_epochs=int(self.n_epochs),
                batch_size=int(self.batch_size),
                learning_rate=float(self.learning_rate),
                beta=float(self.beta),
                seed=int(self.seed),
                use_gpu=False,
            )
            self.vaecf_.fit(data)

        def _score(self, x):
            import torch

            vae = self.vaecf_.vae
            vae.eval()
            out = np.empty(x.shape, dtype=np.float32)
            with torch.no_grad():
                for lo in range(0, x.shape[0], 1000):
                    part = x[lo : lo + 1000]
                    dense = np.zeros((part.shape[0], x.shape[1]), dtype=np.float32)
                    rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
                    dense[rows, self.cols_[part.indices]] = 1.0
                    mu, _ = vae.encode(torch.from_numpy(dense))
                    out[lo : lo + part.shape[0]] = vae.decode(mu).numpy()[:, self.cols_]
            return out

    return {"als": ImplicitALS, "vaecf": CornacVAECF}


def model_class(family: str) -> type:
    if family in PEERS:
        return _peer_classes()[family]
    from recsys.models import get_model_class

    return get_model_class(family)


def peer_problem(family: str) -> str | None:
    """None if the peer imports, else why not (the exception, one line)."""
    module = {"als": "implicit.cpu.als", "vaecf": "cornac.models"}[family]
    try:
        __import__(module)
    except Exception as e:  # any import failure is reported, not raised
        return f"`import {module}` failed: {type(e).__name__}: {e}"
    return None


def _make(family: str, params: dict[str, Any], seed: int):
    cls = model_class(family)
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    if "seed" in accepted:
        params = {**params, "seed": seed}
    return cls(**params)


# ---------------------------------------------------------------------------------------------
# worker: one family (or the epoch-time ratio) on one data set
# ---------------------------------------------------------------------------------------------
def tune_family(dataset: str, family: str, tune_seed: int, work: Path) -> dict[str, Any]:
    """Fit every grid point on the tune split's training users, score its validation users."""
    from recsys.data import load_dataset
    from recsys.data.splits import strong_generalization_split
    from recsys.evaluate import evaluate_on_users

    if family in PEERS and (why := peer_problem(family)):
        return {"family": family, "error": why}
    if family in REUSE:  # same network as another family: take that family's validation choice
        source = json.loads((work / f"{REUSE[family]}.tune.json").read_text())
        return {
            "family": family,
            "params": {**BASE[family], **source["chosen"]},
            "chosen": source["chosen"],
            "trials": [],
            "reused_from": REUSE[family],
        }
    grid = GRIDS[family]
    trials = []
    earlier = _earlier_trials(work, family, tune_seed) if family in CLOSED_FORM else {}
    if len(grid) > 1:
        split = strong_generalization_split(load_dataset(dataset), tune_seed)
        for point in grid:
            if (kept := earlier.get(json.dumps(point, sort_keys=True))) is not None:
                trials.append(kept)
                print(f"[{family}] validation {point}: {kept['val_ndcg@100']:.4f} (kept)", file=sys.stderr, flush=True)
                continue
            params = {**BASE[family], **point}
            t0 = time.perf_counter()
            model = _make(family, params, tune_seed).fit(split.train, validation=(split.val_foldin, split.val_holdout))
            res = evaluate_on_users(model, split.val_foldin, split.val_holdout)
            trial = {"point": point, "val_ndcg@100": res["ndcg@100"], "fit_s": time.perf_counter() - t0}
            if getattr(model, "best_epoch_", None) is not None:
                trial["best_epoch"] = int(model.best_epoch_)
            trials.append(trial)
            print(f"[{family}] validation {point}: {res['ndcg@100']:.4f}", file=sys.stderr, flush=True)
        chosen = max(trials, key=lambda t: t["val_ndcg@100"])["point"]
    else:
        chosen = grid[0]
    return {
        "family": family,
        "params": {**BASE[family], **chosen},
        "chosen": chosen,
        "trials": trials,
        "grid": grid,
        "tune_seed": tune_seed,
    }


def _earlier_trials(work: Path, family: str, tune_seed: int) -> dict[str, dict[str, Any]]:
    """Trials of ``family``'s superseded tune files on the same tune seed, by point (JSON, sorted keys).

    Only for :data:`CLOSED_FORM` families; a kept trial is marked ``"kept_from": <file name>``.
    """
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(work.glob(f"{family}.tune.superseded-*.json")):
        done = json.loads(path.read_text())
        if "error" in done or done.get("tune_seed", 0) != tune_seed:
            continue
        for t in done.get("trials", []):
            out[json.dumps(t["point"], sort_keys=True)] = {**t, "kept_from": t.get("kept_from", path.name)}
    return out


def test_family(dataset: str, family: str, seeds: list[int], tuned: dict[str, Any]) -> dict[str, Any]:
    """Refit with the chosen parameters per seed; test metrics, fit/score time, peak memory."""
    from recsys.data import load_dataset
    from recsys.data.splits import strong_generalization_split
    from recsys.evaluate import evaluate_on_users

    if "error" in tuned:
        return tuned
    ds = load_dataset(dataset)
    params = tuned["params"]
    rows = []
    for seed in seeds:
        split = strong_generalization_split(ds, seed)
        model = _make(family, params, seed)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            model.fit(split.train, validation=(split.val_foldin, split.val_holdout))
            fit_s = time.perf_counter() - t0
            res = evaluate_on_users(model, split.test_foldin, split.test_holdout)
        row = {
            "seed": seed,
            **{k: res[k] for k in ("recall@20", "recall@50", "ndcg@100", "coverage@20", "score_ms_per_user")},
            "fit_s": fit_s,
            "peak_mib": mem.peak_mib,
            "loadavg_1min": os.getloadavg()[0],  # other work on the machine (2 cores here)
        }
        if getattr(model, "best_epoch_", None) is not None:
            row["best_epoch"] = int(model.best_epoch_)
        rows.append(row)
        print(f"[{family}] seed {seed}: ndcg@100 {res['ndcg@100']:.4f} fit {fit_s:.1f}s", file=sys.stderr, flush=True)
    return {**tuned, "rows": rows}


def run_epoch_ratio(dataset: str, tune_seed: int) -> dict[str, Any]:
    from recsys.data import load_dataset
    from recsys.data.splits import strong_generalization_split

    if why := peer_problem("vaecf"):
        return {"family": "epoch_ratio", "error": why}
    split = strong_generalization_split(load_dataset(dataset), tune_seed)
    ours_cls, peer_cls = model_class("multvae"), model_class("vaecf")
    ours, peer = [], []
    for _ in range(2):
        m = ours_cls(latent_dim=200, hidden_dim=600, hidden_layers=1, epochs=RATIO_EPOCHS, patience=None, seed=0)
        m.fit(split.train)  # no validation: training epochs only
        ours.append(float(np.mean([r["seconds"] for r in m.training_log_])))
        p = peer_cls(k=200, hidden_dim=600, n_epochs=RATIO_EPOCHS, batch_size=128, learning_rate=1e-3, seed=0)
        t0 = time.perf_counter()
        p.fit(split.train)
        peer.append((time.perf_counter() - t0) / RATIO_EPOCHS)
    return {
        "family": "epoch_ratio",
        "epochs": RATIO_EPOCHS,
        "multvae_epoch_s": ours,
        "vaecf_epoch_s": peer,
        "ratio": float(np.mean(ours) / np.mean(peer)),
    }


# ---------------------------------------------------------------------------------------------
# driver: one worker process per family, then the markdown file
# ---------------------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=0))


def format_zoo_table(results: list[dict]) -> str:
    head = (
        "| model | Recall@20 | Recall@50 | NDCG@100 | coverage@20 | fit s | score ms/user | peak MiB | seeds |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in results:
        name = NAMES[r["family"]]
        if "error" in r:
            lines.append(f"| {name} | not run: see notes | | | | | | | 0 |")
            continue
        rows = r["rows"]
        cells = []
        for k in ("recall@20", "recall@50", "ndcg@100", "coverage@20"):
            m, s = _mean_std([x[k] for x in rows])
            cells.append(f"{m:.4f} ± {s:.4f}")
        m, s = _mean_std([x["fit_s"] for x in rows])
        cells.append(f"{m:.2f} ± {s:.2f}")
        cells.append(f"{np.mean([x['score_ms_per_user'] for x in rows]):.3f}")
        cells.append(f"{max(x['peak_mib'] for x in rows):.0f}")
        cells.append(str(len(rows)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_tuning(results: list[dict]) -> str:
    out = [
        "## Tuning (validation users of the seed-0 split only; chosen point used for every seed)",
        "",
        "Fixed for every point: torch families `epochs` is a cap with early stopping on validation "
        "NDCG@100 (patience 5, best epoch restored); other parameters are the class defaults.",
        "",
        "| model | fixed | tried (validation NDCG@100, best epoch) | chosen |",
        "|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            continue
        fixed = {k: v for k, v in BASE[r["family"]].items()}
        tried = "; ".join(
            f"{t['point']}: {t['val_ndcg@100']:.4f}"
            + (f" (ep {t['best_epoch']})" if "best_epoch" in t else "")
            + (" (kept)" if "kept_from" in t else "")
            for t in r["trials"]
        )
        chosen = {k: v for k, v in r["params"].items() if k not in fixed or fixed[k] != v}
        if "reused_from" in r:
            tried = f"the {NAMES[r['reused_from']]} choice (same network and training)"
        out.append(f"| {NAMES[r['family']]} | `{fixed}` | {tried or 'no grid'} | `{chosen}` |")
    if any("kept_from" in t for r in results if "error" not in r for t in r["trials"]):
        out += [
            "",
            "(kept): a closed-form family's point scored by an earlier tuning of the same split (its grid then "
            "lacked the newer points); the fit is deterministic, so it was not refitted.",
        ]
    return "\n".join(out)


def format_per_seed(results: list[dict]) -> str:
    out = [
        "Per seed (test NDCG@100 / fit s / best epoch), and the machine's 1-minute load average after each:",
        "",
        "```",
    ]
    for r in results:
        if "error" in r:
            continue
        cells = ", ".join(
            f"s{x['seed']}: {x['ndcg@100']:.4f}/{x['fit_s']:.1f}" + (f"/{x['best_epoch']}" if "best_epoch" in x else "")
            for x in r["rows"]
        )
        loads = [x["loadavg_1min"] for x in r["rows"] if "loadavg_1min" in x]
        if loads:
            cells += f"  (load {min(loads):.1f}-{max(loads):.1f})"
        out.append(f"{NAMES[r['family']]:<22} {cells}")
    out.append("```")
    return "\n".join(out)


def peer_versions() -> str:
    from importlib import metadata

    parts = []
    for name in ("implicit", "cornac"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} not installed")
    return ", ".join(parts)


def write_markdown(path: Path, dataset: str, results: list[dict], ratio: dict | None, args, argv) -> None:
    from recsys.benchmarking import write_result

    fewer = [
        f"{NAMES[r['family']]} on seeds {[x['seed'] for x in r['rows']]} only"
        for r in results
        if "error" not in r and [x["seed"] for x in r["rows"]] != list(args.seeds)
    ]
    notes = [
        f"Seeds: {args.seeds}"
        + (f"; {', '.join(fewer)}" if fewer else "")
        + ". BENCHMARK.md protocol (strong generalization, 80/20 fold-in of test users).",
        "",
        "- **fit s**: wall seconds of `fit` on the training users, including per-epoch validation scoring "
        "for the early-stopping torch families; one thread (torch, OpenMP, BLAS).",
        "- **score ms/user**: wall time of `model.score` on the test users' fold-in histories (batches of 1,000) "
        "divided by the number of test users.",
        "- **peak MiB**: peak resident memory (RSS sampled every 5 ms from `/proc/self/statm`) during fit + test "
        "scoring minus the RSS just before the fit; worst seed. Test seeds run in a fresh process per family "
        "(tuning in another), so the first seed is measured without memory left over from earlier fits.",
        "- Peers come from `benchmarks/requirements-peers.txt` (" + peer_versions() + "); they fold test users in "
        "as described in `benchmarks/accuracy_zoo.py`.",
    ]
    errors = [r for r in results if "error" in r]
    for r in errors:
        notes.append(f"- {NAMES[r['family']]} was not run: {r['error']}")
    notes.append("")
    if ratio is not None:
        if "error" in ratio:
            notes.append(f"Epoch-time ratio not measured: {ratio['error']}")
        else:
            notes.append(
                f"**Epoch time, Multi-VAE / Cornac VAECF = {ratio['ratio']:.2f}** (same network n_items-600-200-600-"
                f"n_items, tanh, multinomial, batch 128, Adam 1e-3, seed-0 training users, {ratio['epochs']} epochs "
                f"each, alternately twice, no validation): Multi-VAE "
                f"{', '.join(f'{s:.3f}' for s in ratio['multvae_epoch_s'])} s/epoch (from its training log), "
                f"VAECF {', '.join(f'{s:.3f}' for s in ratio['vaecf_epoch_s'])} s/epoch (fit time / epochs). "
                "Multi-VAE's epoch also L2-normalises and drops out the input and anneals the KL weight; VAECF does "
                "neither (fixed beta 0.2, no input dropout, no shuffling)."
            )
        notes.append("")
    notes += [format_tuning(results), "", format_per_seed(results)]
    if args.extra_notes:
        notes += ["", Path(args.extra_notes).read_text().strip()]
    write_result(
        path,
        title=f"Model zoo accuracy on {dataset}",
        table=format_zoo_table(results),
        argv=argv,
        notes="\n".join(notes),
    )


def _grid_of(tuned: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid a tune JSON was chosen from (older files did not record it: the trials, or the one point)."""
    if "grid" in tuned:
        return tuned["grid"]
    return [t["point"] for t in tuned["trials"]] or [tuned["chosen"]]


def stale_reason(work: Path, family: str, phase: str, seeds: list[int]) -> str | None:
    """Why an existing JSON of ``family``/``phase`` cannot be kept under the current grids and seeds (None: keep).

    A tune JSON is kept when it was chosen from the current grid (for a REUSE family: when it holds its
    source's current choice); a test JSON when it was run with the current tune's parameters and holds
    every requested seed. "missing seeds ..." means: keep its rows and run only the missing seeds.
    """
    out = work / (f"{family}.tune.json" if phase == "tune" else f"{family}.json")
    done = json.loads(out.read_text())
    if "error" in done:
        return "it records an error"
    if phase == "tune":
        if family in REUSE:
            source = json.loads((work / f"{REUSE[family]}.tune.json").read_text())
            return None if done["chosen"] == source["chosen"] else "its source family chose another point"
        current = json.loads(json.dumps(GRIDS[family]))  # as it reads back from JSON
        return None if _grid_of(done) == current else f"chosen from grid {_grid_of(done)}, grid now {current}"
    tuned = json.loads((work / f"{family}.tune.json").read_text())
    if done.get("params") != tuned.get("params"):
        return f"run with {done.get('params')}, validation now chooses {tuned.get('params')}"
    missing = [s for s in seeds if s not in {r["seed"] for r in done["rows"]}]
    return f"missing seeds {missing}" if missing else None


def _with_tuning(work: Path, family: str) -> dict[str, Any]:
    """A family's test JSON with the tuning record of its current tune JSON (a kept test file may predate it)."""
    result = json.loads((work / f"{family}.json").read_text())
    tune_file = work / f"{family}.tune.json"
    if "error" not in result and tune_file.exists():
        tuned = json.loads(tune_file.read_text())
        result.update({k: v for k, v in tuned.items() if k in ("params", "chosen", "trials", "grid", "reused_from")})
    return result


def drive(args: argparse.Namespace) -> None:
    work = Path(args.work_dir) / args.dataset
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **THREAD_ENV}
    start = time.perf_counter()
    jobs = [(f, args.slow_seeds if f in args.slow_families else args.seeds) for f in args.families]
    if args.ratio:  # cheap; first, so a run cut short still has it
        jobs.insert(0, ("epoch_ratio", args.seeds))
    for family, seeds in jobs:
        phases = (
            [("test", work / "epoch_ratio.json")]
            if family == "epoch_ratio"
            else [
                ("tune", work / f"{family}.tune.json"),
                ("test", work / f"{family}.json"),
            ]
        )
        for phase, out in phases:
            run_seeds = seeds
            if out.exists() and family != "epoch_ratio":
                why = stale_reason(work, family, phase, seeds)
                if why is None:
                    print(f"{family}: kept {out}", file=sys.stderr)
                    continue
                if why.startswith("missing seeds"):
                    have = {r["seed"] for r in json.loads(out.read_text())["rows"]}
                    run_seeds = [s for s in seeds if s not in have]
                    print(f"{family}: {out} has seeds {sorted(have)}; adding {run_seeds}", file=sys.stderr)
                else:
                    aside = out.with_name(f"{out.stem}.superseded-{time.strftime('%Y%m%dT%H%M%S')}.json")
                    out.rename(aside)
                    print(f"{family}: {out} not valid now ({why}); moved to {aside}", file=sys.stderr)
            elif out.exists():
                print(f"{family}: kept {out}", file=sys.stderr)
                continue
            target = out if run_seeds == seeds else out.with_name(f"{out.stem}.part.json")
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                phase,
                "--dataset",
                args.dataset,
                "--families",
                family,
                "--seeds",
                ",".join(map(str, run_seeds)),
                "--tune-seed",
                str(args.tune_seed),
                "--json",
                str(target),
                *[a for g in args.set_grid for a in ("--set-grid", g)],
            ]
            if time.perf_counter() - start > args.budget_s:
                print(f"== time budget spent: {family} {phase} not started", file=sys.stderr, flush=True)
                continue
            print(f"== {args.dataset}: {family} {phase}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            if target != out:  # seeds added to a valid earlier result: merge the rows
                done, new = json.loads(out.read_text()), json.loads(target.read_text())
                new["rows"] = sorted(done["rows"] + new["rows"], key=lambda r: r["seed"])
                out.write_text(json.dumps(new, indent=1))  # the current tuning record, all rows
                target.unlink()
            print(f"== {family} {phase} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    if args.out:
        results = [
            _with_tuning(work, f)
            if (work / f"{f}.json").exists()
            else {"family": f, "error": "not run yet (run cut short; rerun the same command to add it)"}
            for f in sorted(args.families, key=list(NAMES).index)
        ]
        ratio_file = work / "epoch_ratio.json"
        ratio = json.loads(ratio_file.read_text()) if ratio_file.exists() else None
        argv = ["python", "benchmarks/accuracy_zoo.py", *sys.argv[1:]]
        write_markdown(Path(args.out), args.dataset, results, ratio, args, argv)
        print(f"written to {args.out}", file=sys.stderr)


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    (family,) = args.families
    out = Path(args.json)
    if family == "epoch_ratio":
        result = run_epoch_ratio(args.dataset, args.tune_seed)
    elif args.worker == "tune":
        result = tune_family(args.dataset, family, args.tune_seed, out.parent)
    else:
        tuned = json.loads((out.parent / f"{family}.tune.json").read_text())
        result = test_family(args.dataset, family, args.seeds, tuned)
    out.write_text(json.dumps(result, indent=1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="lastfm-2k or ml-1m (any recsys data set name)")
    p.add_argument("--families", default=",".join(NAMES), help="comma-separated, table order")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--slow-families", default="", help="families run on --slow-seeds only")
    p.add_argument("--slow-seeds", default="0,1,2")
    p.add_argument("--tune-seed", type=int, default=0, help="split whose validation users choose the grid point")
    p.add_argument("--no-ratio", dest="ratio", action="store_false", help="skip the Multi-VAE/VAECF epoch timing")
    p.add_argument(
        "--work-dir",
        default=str(ROOT / ".cache" / "accuracy_zoo"),
        help="parent of the per-data-set folders of per-family JSON: DIR/DATASET/*.json (reruns skip done ones)",
    )
    p.add_argument("--extra-notes", help="a markdown file appended to the result's notes")
    p.add_argument("--out", help="markdown result file (written with the families done so far)")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no new worker after this many seconds")
    p.add_argument(
        "--set-grid",
        action="append",
        default=[],
        metavar="FAMILY=JSON",
        help="replace a family's grid, e.g. vaecf='[{\"n_epochs\": 50}]' (repeatable)",
    )
    p.add_argument("--worker", choices=["tune", "test"], help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for item in args.set_grid:
        family, _, points = item.partition("=")
        if family not in GRIDS:
            p.error(f"--set-grid {item!r}: unknown family {family!r}")
        GRIDS[family] = json.loads(points)
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in args.families if f not in NAMES and f != "epoch_ratio"]
    if unknown:
        p.error(f"unknown families {unknown}; known: {', '.join(NAMES)}")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.slow_seeds = [int(s) for s in args.slow_seeds.split(",")]
    args.slow_families = [f.strip() for f in args.slow_families.split(",") if f.strip()]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
