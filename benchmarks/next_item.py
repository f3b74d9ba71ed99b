"""Next-item benchmark: temporal leave-last-out, HR@10 and NDCG@10 over the full item set.

Models: DTNMR-style (seed 003), sequential VAE (ESAPR-style, seed 004), BERT4Rec-style (seed 004),
and the non-sequential Multi-VAE, EASE and Popularity, on the synthetic catalogue (timestamped) and
the timestamped part of MovieLens 1M (users 1-2999 of the partial copy; every user with the
official ratings.dat).

Protocol (recsys.next_item): every user's last item by time is the test target, the one before it
the validation target; models train on the rest (all users). Validation users (1000 sampled)
drive early stopping (NDCG@100 of the validation target) and EASE's l2 grid (validation NDCG@10);
test inputs are the training sequence plus the validation item. Every item is ranked; the input
history is excluded.

Seeds 0, 1, 2 by default (--seeds): seed s is the model's seed (weights, batches, masks, dropout)
and the draw of the 1000 validation users; the split itself has no seed (last items by time, the
same every run). The tables give HR@10 / NDCG@10 as mean ± sample std (ddof=1) over the seeds and
the other columns as means. EASE and Popularity do not depend on the seed (closed form; EASE's l2 is
chosen on all validation users), so they run once and show ± 0.

BERT4Rec-style trains with lr 5e-3 (was 2e-3) and an epoch cap of 60 (was 20, where its best epoch
was its last on both data sets): patience 5 on validation is what ends it. The lr was chosen on
validation users only (ML-1M, seed 0, validation NDCG@100 after 10 epochs: 0.136 at 2e-3, 0.152 at
5e-3; the higher rate converges in fewer epochs).

Each (data set, model, seed) runs in a fresh worker process (torch on one thread), so the memory column
is that model's own: the peak resident set size sampled every 10 ms during fit + evaluation, and
its increase over the resident size just before fit (data and split already loaded).

    .venv/bin/python benchmarks/next_item.py                      # both data sets, all models, 3 seeds
    .venv/bin/python benchmarks/next_item.py --datasets synthetic --models dtnmr,ease --seeds 0 --no-write

Every finished (data set, model, seed) row is appended to --rows (JSON lines; default under /tmp):
a rerun with the same file keeps those rows and runs only what is missing (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("dtnmr", "seqvae", "bert4rec", "multvae", "ease", "popularity")
LABELS = {
    "dtnmr": "DTNMR-style (seq)",
    "seqvae": "Sequential VAE (seq)",
    "bert4rec": "BERT4Rec-style (seq)",
    "multvae": "Multi-VAE",
    "ease": "EASE",
    "popularity": "Popularity",
}
SEQUENTIAL = {"dtnmr", "seqvae", "bert4rec"}
#: Closed-form models that no seed reaches: one run stands for every seed.
DETERMINISTIC = {"ease", "popularity"}
SEEDS = (0, 1, 2)
#: BERT4Rec's epoch cap: high enough that early stopping (patience 5 on validation) ends training.
BERT_EPOCHS = 60
BERT_LR = 5e-3
EASE_GRID = (50.0, 200.0, 500.0, 2000.0)
DATASETS = ("synthetic", "ml-1m")
#: Profile columns DTNMR uses (synthetic "favourite_tags" is the generator's planted truth: left out).
PROFILES = {"synthetic": ("age_group", "region"), "ml-1m": ("gender", "age_group", "occupation")}


def make_model(name: str, dataset: str, cache_dir: str, seed: int = 0):
    from recsys.models import EASE, Popularity
    from recsys.models.bert4rec import BERT4Rec
    from recsys.models.dtnmr import DTNMR
    from recsys.models.multvae import MultVAE
    from recsys.models.seqvae import SequentialVAE

    if name == "popularity":
        return Popularity()
    if name == "ease":
        return EASE()
    if name == "multvae":
        return MultVAE(epochs=30, patience=5, seed=seed)
    if name == "seqvae":
        return SequentialVAE(epochs=25, patience=5, samples_per_user=2, seed=seed)
    if name == "bert4rec":
        return BERT4Rec(epochs=BERT_EPOCHS, patience=5, max_len=50, samples_per_user=2, lr=BERT_LR, seed=seed)
    if name == "dtnmr":
        points = 50 if dataset == "synthetic" else 30
        return DTNMR(
            epochs=10,
            patience=3,
            user_features=PROFILES[dataset],
            max_points_per_user=points,
            cache_dir=cache_dir,
            seed=seed,
        )
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def load(dataset: str):
    from recsys.data import generate_synthetic, load_dataset

    if dataset == "synthetic":
        return generate_synthetic()
    if dataset == "ml-1m":
        return load_dataset("ml-1m", timestamped_only=True)
    raise ValueError(f"unknown data set {dataset!r}; choose from {DATASETS}")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRss:
    """Samples this process's resident set size every ``interval`` seconds while active."""

    def __init__(self, interval: float = 0.01):
        self.interval, self.peak, self._stop = interval, _rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def worker(dataset: str, name: str, cache_dir: str, seed: int = 0) -> dict:
    import torch

    from recsys.data.splits import temporal_leave_last_out
    from recsys.next_item import train_validate_test

    torch.set_num_threads(1)
    ds = load(dataset)
    split = temporal_leave_last_out(ds)
    before = _rss_mib()
    extra: dict = {}
    with PeakRss() as peak:
        if name == "ease":  # l2 on validation NDCG@10, then the chosen model's test numbers
            trials = []
            for l2 in EASE_GRID:
                model = make_model(name, dataset, cache_dir, seed).clone(l2=l2)
                trials.append((train_validate_test(model, split, seed=seed), l2))
            res, l2 = max(trials, key=lambda t: t[0]["val_ndcg@10"])
            extra = {"params": f"l2={l2:g} (grid {', '.join(f'{v:g}' for v in EASE_GRID)})"}
        else:
            model = make_model(name, dataset, cache_dir, seed)
            res = train_validate_test(model, split, seed=seed)
            if name == "dtnmr":
                extra = {"prep_from_cache": bool(model.prep_from_cache_)}
    return {
        **res,
        **extra,
        "dataset": dataset,
        "model": name,
        "seed": seed,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": int(ds.interactions.nnz),
        "rss_before_mib": before,
        "peak_rss_mib": peak.peak,
    }


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _std(values: list[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def aggregate(rows: list[dict]) -> list[dict]:
    """One summary per model (in MODELS order) over its seeds: means, sample stds of the test metrics."""
    out = []
    for name in MODELS:
        runs = sorted((r for r in rows if r["model"] == name), key=lambda r: r["seed"])
        if not runs:
            continue
        agg = {"model": name, "seeds": [r["seed"] for r in runs], "runs": runs}
        for key in ("hr@10", "ndcg@10", "val_hr@10", "val_ndcg@10"):
            vals = [r[key] for r in runs]
            agg[key], agg[key + "_std"] = _mean(vals), _std(vals)
        for key in ("fit_s", "s_per_epoch", "score_ms_per_user", "peak_rss_mib", "wall_s"):
            agg[key] = _mean([r.get(key) for r in runs])
        agg["rss_increase_mib"] = _mean([r["peak_rss_mib"] - r["rss_before_mib"] for r in runs])
        out.append(agg)
    return out


def _epochs_cell(agg: dict) -> str:
    runs = [r for r in agg["runs"] if r.get("epochs")]
    return ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs) if runs else "–"


def table(rows: list[dict]) -> str:
    head = (
        "| model | seeds | HR@10 | NDCG@10 | val HR@10 | val NDCG@10 | fit s | epochs (best), per seed "
        "| s / epoch | peak RSS MiB (+ over pre-fit) | score ms / user |"
    )
    lines = [head, "|" + "---|" * 11]
    for a in aggregate(rows):
        seeds = ",".join(map(str, a["seeds"])) + (" (deterministic)" if a["model"] in DETERMINISTIC else "")
        single = len(a["seeds"]) == 1 and a["model"] not in DETERMINISTIC  # one run: no std to show
        hr, ndcg = (
            (f"{a[k]:.4f} (1 run)" if single else f"{a[k]:.4f} ± {a[k + '_std']:.4f}") for k in ("hr@10", "ndcg@10")
        )
        lines.append(
            f"| {LABELS[a['model']]} | {seeds} | {hr} | {ndcg} | {a['val_hr@10']:.4f} | {a['val_ndcg@10']:.4f} "
            f"| {a['fit_s']:.1f} | {_epochs_cell(a)} | {_fmt(a['s_per_epoch'], '.2f')} "
            f"| {a['peak_rss_mib']:.0f} (+{a['rss_increase_mib']:.0f}) | {a['score_ms_per_user']:.3f} |"
        )
    return "\n".join(lines)


def convergence(rows: list[dict]) -> str:
    """Whether every trained (torch) run stopped early, i.e. its best epoch came before its last."""
    trained = [r for r in rows if r.get("epochs")]
    if not trained:
        return ""
    capped = [r for r in trained if r["best_epoch"] >= r["epochs"]]
    stopped = [r for r in trained if r["best_epoch"] < r["epochs"]]
    text = (
        f"Convergence: {len(stopped)} of {len(trained)} trained runs stopped with their best epoch before "
        "their last (early stopping on validation, or the cap reached after validation had stopped improving)"
    )
    if not capped:
        return text + "; every torch model's best epoch < epochs run."
    where = ", ".join(f"{LABELS[r['model']]} seed {r['seed']} ({r['epochs']} ({r['best_epoch']}))" for r in capped)
    return text + f". NOT converged (best epoch = last epoch, stopped by the epoch cap): {where}."


def verdict(rows: list[dict]) -> str:
    aggs = aggregate(rows)
    seq = [a for a in aggs if a["model"] in SEQUENTIAL]
    non = [a for a in aggs if a["model"] not in SEQUENTIAL]
    if not seq or not non:
        return ""
    best_s = max(seq, key=lambda a: a["ndcg@10"])
    best_n = max(non, key=lambda a: a["ndcg@10"])
    beats = best_s["ndcg@10"] > best_n["ndcg@10"]
    # per seed: does the best sequential run of that seed beat the best non-sequential one?
    seeds = sorted({r["seed"] for r in rows if r["model"] in SEQUENTIAL})
    wins = 0
    for s in seeds:
        s_best = max(r["ndcg@10"] for r in rows if r["model"] in SEQUENTIAL and r["seed"] == s)
        n_vals = [
            r["ndcg@10"]
            for r in rows
            if r["model"] not in SEQUENTIAL and (r["seed"] == s or r["model"] in DETERMINISTIC)
        ]
        wins += bool(n_vals) and s_best > max(n_vals)
    gap = best_s["ndcg@10"] - best_n["ndcg@10"]
    spread = best_s["ndcg@10_std"] + best_n["ndcg@10_std"]
    return (
        f"Best sequential model (mean NDCG@10 over seeds): {LABELS[best_s['model']]} (NDCG@10 "
        f"{best_s['ndcg@10']:.4f} ± {best_s['ndcg@10_std']:.4f}, HR@10 {best_s['hr@10']:.4f} ± "
        f"{best_s['hr@10_std']:.4f}); best non-sequential: {LABELS[best_n['model']]} (NDCG@10 "
        f"{best_n['ndcg@10']:.4f} ± {best_n['ndcg@10_std']:.4f}, HR@10 {best_n['hr@10']:.4f} ± "
        f"{best_n['hr@10_std']:.4f}). "
        + ("A sequential model beats the non-sequential ones" if beats else "No sequential model beats it here")
        + f" (gap {gap:+.4f} NDCG@10, {'more' if abs(gap) > spread else 'less'} than the two stds summed); "
        f"per seed, the best sequential model beats every non-sequential one in {wins} of {len(seeds)} seeds."
    )


def _load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="model / validation-draw seeds")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "dtnmr"), help="DTNMR preprocessing cache")
    p.add_argument(
        "--rows",
        default="/tmp/recsys_next_item_rows.jsonl",
        help="JSON lines of finished runs: kept and reused on a rerun (resume)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore (and overwrite) the rows already in --rows")
    p.add_argument("--no-run", action="store_true", help="report the rows already in --rows; run nothing")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--note", action="append", default=[], help="extra paragraph for the notes (repeatable)")
    p.add_argument("--worker", nargs=3, metavar=("DATASET", "MODEL", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        dataset, name, seed = args.worker
        print("RESULT " + json.dumps(worker(dataset, name, args.cache_dir, int(seed))))
        return 0
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows_path = Path(args.rows)
    if args.fresh and rows_path.exists():
        rows_path.unlink()
    kept = _load_rows(rows_path)
    done = {(r["dataset"], r["model"], r["seed"]) for r in kept}
    all_rows: dict[str, list[dict]] = {}
    missing: dict[str, list[str]] = {}
    for dataset in datasets:
        rows = []
        for name in models:
            for seed in seeds[:1] if name in DETERMINISTIC else seeds:
                if (dataset, name, seed) in done:
                    rows.append(next(r for r in kept if (r["dataset"], r["model"], r["seed"]) == (dataset, name, seed)))
                    print(f"{dataset:>9} {name:>10} seed {seed}: kept from {rows_path}", flush=True)
                    continue
                if args.no_run:
                    print(f"{dataset:>9} {name:>10} seed {seed}: MISSING (not run: --no-run)", flush=True)
                    missing.setdefault(dataset, []).append(f"{LABELS[name]} seed {seed}")
                    continue
                t0 = time.perf_counter()
                cmd = [sys.executable, __file__, "--worker", dataset, name, str(seed), "--cache-dir", args.cache_dir]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"worker {dataset}/{name}/seed {seed} failed")
                row = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
                row["wall_s"] = time.perf_counter() - t0
                with rows_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
                epochs = f" epochs {row['epochs']} ({row['best_epoch']})" if row.get("epochs") else ""
                print(f"{dataset:>9} {name:>10} seed {seed}: hr@10 {row['hr@10']:.4f} ndcg@10 {row['ndcg@10']:.4f}"
                      f"{epochs} fit {row['fit_s']:.0f}s wall {row['wall_s']:.0f}s", flush=True)  # fmt: skip
        all_rows[dataset] = rows
    worker_s = sum(r["wall_s"] for rows in all_rows.values() for r in rows)
    argv_line = ["python", "benchmarks/next_item.py", *(argv if argv is not None else sys.argv[1:])]
    for dataset, rows in all_rows.items():
        if not rows:
            continue
        r0 = rows[0]
        ds_s = sum(r["wall_s"] for r in rows)
        notes = [
            f"Data: {dataset} ({r0['users']} users, {r0['items']} items, {r0['interactions']} interactions"
            + ("; MovieLens 1M users with timestamps" if dataset == "ml-1m" else "")
            + f"); {r0['n_users']} test users, each ranked over all {r0['items']} items.",
            verdict(rows),
            convergence(rows),
            f"(seq) = uses the order of the history. Seeds {', '.join(map(str, seeds))}: HR@10 / NDCG@10 are "
            "mean ± sample std (ddof=1) over the seeds, the other columns means; seed s is the model's seed "
            "and the draw of the 1000 validation users that drive early stopping (the temporal split has no "
            "seed). EASE and Popularity do not depend on the seed and ran once (± 0). s / epoch includes "
            "that epoch's validation on 1000 users; fit s includes DTNMR's preprocessing unless it came "
            f"from the cache ({'cached' if any(r.get('prep_from_cache') for r in rows) else 'not cached'} "
            "in at least one run).",
            *[f"EASE: {r['params']}." for r in rows if r["model"] == "ease"],
            f"Wall time (sum of the worker processes' wall times): {ds_s / 60:.1f} min for {dataset}, "
            f"{worker_s / 60:.1f} min for the whole benchmark ({', '.join(all_rows)}; {len(models)} models, "
            f"seeds {','.join(map(str, seeds))}); one invocation runs one worker at a time, torch on 1 thread.",
        ]
        if missing.get(dataset):
            notes.append(f"Missing runs (not finished; left out of the means): {', '.join(missing[dataset])}.")
        notes = [n for n in [*notes, *args.note] if n]
        text = table(rows)
        print(f"\n{dataset}\n{text}\n" + "\n".join(notes))
        if not args.no_write:
            from recsys.benchmarking import write_result

            path = Path(args.out) / f"next_item_{dataset}.md"
            write_result(
                path, title=f"Next-item prediction on {dataset}", table=text, argv=argv_line, notes="\n\n".join(notes)
            )
            print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
