"""Profile cold start (seed 001): held-out users given only their profile (or only tags).

Strong-generalization split (recsys.cold_start.cold_start_split: BENCHMARK.md's filtering and user
permutation, 300 validation and 300 test users); test users are known only by their profile
(MovieLens 1M: gender, age group, occupation; synthetic: age group, region) and, on the synthetic
data, by their stated favourite tags. All their items are relevant; every item is ranked.

Models: global Popularity; popularity within the same demographic group (GroupPopularity, back-off
to coarser groups under 20 training users); the DTNMR-style model scoring an empty history with the
profile (trained with history dropout 0.3, validation users scored from their profiles only);
and, with tags only, DTNMR with the stated tags versus popularity among items carrying those tags.

    .venv/bin/python benchmarks/cold_start.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROFILES = {"synthetic": ("age_group", "region"), "ml-1m": ("gender", "age_group", "occupation")}


class TagPopularity:
    """Popularity among items carrying any of the stated tags (other items after them)."""

    def __init__(self, train):
        self.pop = np.asarray(train.binary().sum(axis=0), dtype=np.float64).ravel()
        self.items_tags = [set(t) for t in train.items["tags"]]

    def score(self, tags: list[list[str]]) -> np.ndarray:
        out = np.empty((len(tags), len(self.pop)), dtype=np.float32)
        for r, row in enumerate(tags):
            wanted = set(row)
            has = np.fromiter((bool(t & wanted) for t in self.items_tags), dtype=bool, count=len(self.pop))
            out[r] = self.pop / (self.pop.max() + 1) + has
        return out


def run(dataset: str) -> tuple[str, list[str]]:
    import torch

    from recsys.cold_start import cold_start_split, evaluate_cold_start
    from recsys.data import generate_synthetic, load_dataset
    from recsys.metrics import ranking_metrics
    from recsys.models import Popularity
    from recsys.models.dtnmr import DTNMR
    from recsys.models.group_popularity import GroupPopularity

    torch.set_num_threads(1)
    ds = generate_synthetic() if dataset == "synthetic" else load_dataset("ml-1m", timestamped_only=True)
    cs = cold_start_split(ds, seed=0, n_heldout_users=300)
    cols = list(PROFILES[dataset])
    prof, val_prof = cs.test_profiles[cols], cs.val_profiles[cols]
    rows = []

    def add(label: str, res: dict, fit_s: float) -> None:
        rows.append((label, res, fit_s))
        print(f"{dataset} {label}: {res}", flush=True)

    t0 = time.perf_counter()
    pop = Popularity().fit(cs.train)
    add("Popularity (global)", evaluate_cold_start(pop, cs.test_items, prof), time.perf_counter() - t0)
    t0 = time.perf_counter()
    gp = GroupPopularity(group_by=tuple(cols), min_group_users=20).fit(cs.train)
    add(f"Popularity within group ({' x '.join(cols)}, back-off)", evaluate_cold_start(gp, cs.test_items, prof),
        time.perf_counter() - t0)  # fmt: skip
    t0 = time.perf_counter()
    dt = DTNMR(user_features=tuple(cols), history_dropout=0.3, epochs=10, patience=3, max_points_per_user=30)
    dt.fit(cs.train, validation=(sp.csr_matrix(cs.val_items.shape, dtype=np.float32), cs.val_items, val_prof))
    fit_s = time.perf_counter() - t0
    add("DTNMR-style, profile only", evaluate_cold_start(dt, cs.test_items, prof), fit_s)
    if "favourite_tags" in cs.test_profiles.columns:
        tags = [str(v).split("|") for v in cs.test_profiles["favourite_tags"]]
        tp = TagPopularity(cs.train)
        m = ranking_metrics(tp.score(tags), sp.csr_matrix(cs.test_items.shape), cs.test_items, recall_ks=(20,),
                            ndcg_ks=(10, 100))  # fmt: skip
        add("Tag popularity, tags only", {k: float(v.mean()) for k, v in m.items() if k != "top_coverage"}, 0.0)
        add("DTNMR-style, tags only", evaluate_cold_start(dt, cs.test_items, tags=tags), fit_s)
        add("DTNMR-style, profile + tags", evaluate_cold_start(dt, cs.test_items, prof, tags), fit_s)
    lines = ["| model (input) | Recall@20 | NDCG@10 | NDCG@100 | fit s |", "|---|---|---|---|---|"]
    for label, res, fit_s in rows:
        lines.append(
            f"| {label} | {res['recall@20']:.4f} | {res['ndcg@10']:.4f} | {res['ndcg@100']:.4f} | {fit_s:.1f} |"
        )
    notes = [
        f"Data: {dataset} ({ds.n_users} users before filtering; {cs.train.n_users} training users, "
        f"{len(cs.test_profiles)} test users given only {', '.join(cols)}"
        + (" or their favourite tags" if dataset == "synthetic" else "")
        + f"; {cs.train.n_items} items). Single split, seed 0.",
    ]
    if dataset == "synthetic":
        notes.append(
            "The synthetic favourite tags are the generator's own taste variable, so tags-only results "
            "show the mechanism works, not how informative real stated tags are."
        )
    return "\n".join(lines), notes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="synthetic,ml-1m")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    argv_line = ["python", "benchmarks/cold_start.py", *(argv if argv is not None else sys.argv[1:])]
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        start = time.perf_counter()
        table, notes = run(dataset)
        notes.append(f"Wall time: {(time.perf_counter() - start) / 60:.1f} min, torch on 1 thread.")
        print(f"\n{dataset}\n{table}\n" + "\n".join(notes))
        if not args.no_write:
            from recsys.benchmarking import write_result

            path = Path(args.out) / f"cold_start_{dataset}.md"
            write_result(path, title=f"Profile cold start on {dataset}", table=table, argv=argv_line,
                         notes="\n\n".join(notes))  # fmt: skip
            print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
