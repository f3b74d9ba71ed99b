"""Next-item benchmark: temporal leave-last-out, HR@10 and NDCG@10 over the full item set.

Models: DTNMR-style (seed 003), sequential VAE (ESAPR-style, seed 004), BERT4Rec-style (seed 004),
and the non-sequential Multi-VAE, EASE and Popularity, on the synthetic catalogue (timestamped) and
the timestamped part of MovieLens 1M (users 1-2999 of the partial copy; every user with the
official ratings.dat).

Protocol (recsys.next_item): every user's last item by time is the test target, the one before it
the validation target; models train on the rest (all users). Validation users (1000 sampled)
drive early stopping (NDCG@100 of the validation target) and EASE's l2 grid (validation NDCG@10);
test inputs are the training sequence plus the validation item. Every item is ranked; the input
history is excluded. One seed (0): these are single runs, not means.

Each (data set, model) runs in a fresh worker process (torch on one thread), so the memory column
is that model's own: the peak resident set size sampled every 10 ms during fit + evaluation, and
its increase over the resident size just before fit (data and split already loaded).

    .venv/bin/python benchmarks/next_item.py                      # both data sets, all models
    .venv/bin/python benchmarks/next_item.py --datasets synthetic --models dtnmr,ease --no-write
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
EASE_GRID = (50.0, 200.0, 500.0, 2000.0)
DATASETS = ("synthetic", "ml-1m")
#: Profile columns DTNMR uses (synthetic "favourite_tags" is the generator's planted truth: left out).
PROFILES = {"synthetic": ("age_group", "region"), "ml-1m": ("gender", "age_group", "occupation")}


def make_model(name: str, dataset: str, cache_dir: str):
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
        return MultVAE(epochs=30, patience=5)
    if name == "seqvae":
        return SequentialVAE(epochs=25, patience=5, samples_per_user=2)
    if name == "bert4rec":
        return BERT4Rec(epochs=20, patience=5, max_len=50, samples_per_user=2, lr=2e-3)
    if name == "dtnmr":
        points = 50 if dataset == "synthetic" else 30
        return DTNMR(
            epochs=10, patience=3, user_features=PROFILES[dataset], max_points_per_user=points, cache_dir=cache_dir
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


def worker(dataset: str, name: str, cache_dir: str) -> dict:
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
                model = make_model(name, dataset, cache_dir).clone(l2=l2)
                trials.append((train_validate_test(model, split), l2))
            res, l2 = max(trials, key=lambda t: t[0]["val_ndcg@10"])
            extra = {"params": f"l2={l2:g} (grid {', '.join(f'{v:g}' for v in EASE_GRID)})"}
        else:
            model = make_model(name, dataset, cache_dir)
            res = train_validate_test(model, split)
            if name == "dtnmr":
                extra = {"prep_from_cache": bool(model.prep_from_cache_)}
    return {
        **res,
        **extra,
        "dataset": dataset,
        "model": name,
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": int(ds.interactions.nnz),
        "rss_before_mib": before,
        "peak_rss_mib": peak.peak,
    }


def _fmt(v, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (
        "| model | HR@10 | NDCG@10 | val HR@10 | val NDCG@10 | fit s | epochs (best) | s / epoch "
        "| peak RSS MiB (+ over pre-fit) | score ms / user |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        epochs = "–" if not r.get("epochs") else f"{r['epochs']} ({r['best_epoch']})"
        lines.append(
            f"| {LABELS[r['model']]} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['val_hr@10']:.4f} "
            f"| {r['val_ndcg@10']:.4f} | {r['fit_s']:.1f} | {epochs} | {_fmt(r['s_per_epoch'], '.2f')} "
            f"| {r['peak_rss_mib']:.0f} (+{r['peak_rss_mib'] - r['rss_before_mib']:.0f}) "
            f"| {r['score_ms_per_user']:.3f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    seq = [r for r in rows if r["model"] in SEQUENTIAL]
    non = [r for r in rows if r["model"] not in SEQUENTIAL]
    if not seq or not non:
        return ""
    best_s = max(seq, key=lambda r: r["ndcg@10"])
    best_n = max(non, key=lambda r: r["ndcg@10"])
    beats = best_s["ndcg@10"] > best_n["ndcg@10"]
    return (
        f"Best sequential model: {LABELS[best_s['model']]} (NDCG@10 {best_s['ndcg@10']:.4f}, HR@10 "
        f"{best_s['hr@10']:.4f}); best non-sequential: {LABELS[best_n['model']]} (NDCG@10 "
        f"{best_n['ndcg@10']:.4f}, HR@10 {best_n['hr@10']:.4f}). "
        + ("A sequential model beats the non-sequential ones." if beats else "No sequential model beats it here.")
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "dtnmr"), help="DTNMR preprocessing cache")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--worker", nargs=2, metavar=("DATASET", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(*args.worker, args.cache_dir)))
        return 0
    start = time.perf_counter()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    all_rows: dict[str, list[dict]] = {}
    for dataset in datasets:
        rows = []
        for name in models:
            t0 = time.perf_counter()
            cmd = [sys.executable, __file__, "--worker", dataset, name, "--cache-dir", args.cache_dir]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"worker {dataset}/{name} failed")
            row = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            print(f"{dataset:>9} {name:>10}: hr@10 {row['hr@10']:.4f} ndcg@10 {row['ndcg@10']:.4f} "
                  f"fit {row['fit_s']:.0f}s wall {row['wall_s']:.0f}s", flush=True)  # fmt: skip
        all_rows[dataset] = rows
    total = time.perf_counter() - start
    argv_line = ["python", "benchmarks/next_item.py", *(argv if argv is not None else sys.argv[1:])]
    for dataset, rows in all_rows.items():
        r0 = rows[0]
        notes = [
            f"Data: {dataset} ({r0['users']} users, {r0['items']} items, {r0['interactions']} interactions"
            + ("; MovieLens 1M users with timestamps" if dataset == "ml-1m" else "")
            + f"); {r0['n_users']} test users, each ranked over all {r0['items']} items.",
            verdict(rows),
            "(seq) = uses the order of the history. Single run, seed 0. s / epoch includes that epoch's "
            "validation on 1000 users; fit s includes DTNMR's preprocessing unless it came from the cache "
            f"({'cached' if any(r.get('prep_from_cache') for r in rows) else 'not cached'} in this run).",
            *[f"EASE: {r['params']}." for r in rows if r["model"] == "ease"],
            f"Whole benchmark ({', '.join(all_rows)}; {len(models)} models each): {total / 60:.1f} min "
            "wall time, one worker process at a time, torch on 1 thread.",
        ]
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
