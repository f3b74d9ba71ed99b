"""Wall time of ``python -m recsys evaluate`` before and after it got thread limits and tuning once.

    python benchmarks/evaluate_speed.py --out benchmarks/results/evaluate_speed.md

One run, on a ~1,000-user data set (the synthetic generator with ``n_users=1000``, its other
defaults and seed, written as ``interactions.csv`` + ``items.csv`` and read back with
``--dataset csv:FOLDER``; 10 % of the users are validation users and 10 % test users), times the
same command line

    python -m recsys evaluate --dataset csv:FOLDER --models popularity,ease,svd,multvae,flow --seeds 0,1,2

twice, each in a fresh subprocess with the same environment (``$RECSYS_TORCH_THREADS`` and the
``*_NUM_THREADS`` variables removed, so each command uses its own thread policy):

- **new**: this checkout: torch, numba and BLAS limited by ``recsys.threads`` (1 thread on <= 2
  cores), settings from ``recsys/tuning.py`` (EASE's L2 grid, torch families ``epochs`` <= 100
  with patience 5), tuned once on seed 0's validation users.
- **old**: ``recsys/`` of ``--old-rev`` (the commit before the change), extracted with
  ``git archive`` into a temporary folder and run from there with the same interpreter: default
  thread pools, the EASE grid re-chosen per seed, torch families at their class defaults
  (Multi-VAE 20 epochs, Flow 40 + 40 flow epochs, patience 5). It is stopped after ``--old-timeout``
  seconds and then reported as "> N s".

The result file gives both wall times, the ratio new/old, the machine's 1-minute load average
before and after each command, and the new command's own table.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from recsys.data.synthetic import generate_synthetic  # noqa: E402

#: The commit before ``evaluate`` got thread limits and tuning once (recsys/tuning.py).
OLD_REV = "7a6702d"
MODELS = "popularity,ease,svd,multvae,flow"
SEEDS = "0,1,2"
GOAL_S = 120.0


def write_csv_dataset(folder: Path, n_users: int, seed: int) -> str:
    """The synthetic catalogue with ``n_users`` users as interactions.csv + items.csv; returns a summary."""
    ds = generate_synthetic(n_users=n_users, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = ds.interactions.tocoo()
    with open(folder / "interactions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "item", "weight"])
        for u, i, v in zip(x.row, x.col, x.data, strict=True):
            w.writerow([ds.user_ids[u], ds.item_ids[i], float(v)])
    with open(folder / "items.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item", "title", "artist", "tags"])
        for _, r in ds.items.iterrows():
            w.writerow([r["item_id"], r["title"], r["artist"], "|".join(r["tags"])])
    return f"{ds.n_users} users, {ds.n_items} items, {ds.interactions.nnz} interactions (synthetic, seed {seed})"


def extract_old_tree(rev: str, dest: Path) -> None:
    """``recsys/`` as it was at ``rev``, under ``dest``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "recsys"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict:
    """Run ``cmd``; wall seconds, exit status, stdout, load average before/after (stderr: the bars, discarded)."""
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, stdout, err = out.returncode, out.stdout, out.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, err = None, (e.stdout or b"").decode(errors="replace"), ""
    wall = time.perf_counter() - t0
    if rc not in (0, None):
        print(err[-3000:], file=sys.stderr)
    return {"wall_s": wall, "rc": rc, "stdout": stdout, "load_before": load0, "load_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1000, help="users of the synthetic data set (default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator")
    p.add_argument("--models", default=MODELS)
    p.add_argument("--seeds", default=SEEDS)
    p.add_argument("--old-rev", default=OLD_REV, help="commit whose recsys/ is the old command")
    p.add_argument("--old-timeout", type=float, default=900.0, help="stop the old command after this many seconds")
    p.add_argument("--skip-old", action="store_true", help="time the new command only")
    p.add_argument("--out", help="markdown result file")
    args = p.parse_args(argv)

    env = {k: v for k, v in os.environ.items() if k != "RECSYS_TORCH_THREADS" and not k.endswith("_NUM_THREADS")}
    env["RECSYS_MAP_REDUCER"] = "none"
    with tempfile.TemporaryDirectory(prefix="recsys_evaluate_speed_") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        described = write_csv_dataset(data, args.users, args.data_seed)
        print(f"data: {described}", file=sys.stderr)
        command = ["evaluate", "--dataset", f"csv:{data}", "--models", args.models, "--seeds", args.seeds]
        runs = {}
        print("new command ...", file=sys.stderr, flush=True)
        runs["new"] = timed([sys.executable, "-m", "recsys", *command], ROOT, env, timeout=3600)
        print(f"new: {runs['new']['wall_s']:.1f} s (rc {runs['new']['rc']})", file=sys.stderr, flush=True)
        if not args.skip_old:
            old_tree = tmp / "old"
            old_tree.mkdir()
            extract_old_tree(args.old_rev, old_tree)
            print(f"old command ({args.old_rev}) ...", file=sys.stderr, flush=True)
            runs["old"] = timed([sys.executable, "-m", "recsys", *command], old_tree, env, timeout=args.old_timeout)
            print(f"old: {runs['old']['wall_s']:.1f} s (rc {runs['old']['rc']})", file=sys.stderr, flush=True)

    def wall(r: dict) -> str:
        if r["rc"] is None:
            return f"> {args.old_timeout:.0f} s (stopped)"
        return f"{r['wall_s']:.1f} s" + ("" if r["rc"] == 0 else f" (exit {r['rc']})")

    lines = ["| command | wall | 1-min load before → after |", "|---|---|---|"]
    for name, r in runs.items():
        what = "new (this checkout)" if name == "new" else f"old (`{args.old_rev}`)"
        lines.append(f"| {what} | {wall(r)} | {r['load_before']:.1f} → {r['load_after']:.1f} |")
    new = runs["new"]
    if "old" in runs:
        old = runs["old"]
        ratio = new["wall_s"] / old["wall_s"]
        bound = "≤ " if old["rc"] is None else ""  # the old time is a lower bound when it was stopped
        lines.append(f"| **ratio new / old** | {bound}{ratio:.3f} | |")
    table = "\n".join(lines)
    verdict = "met" if new["rc"] == 0 and new["wall_s"] < GOAL_S else "NOT met"
    notes = "\n".join(
        [
            f"Goal: the new command under {GOAL_S:.0f} s on 2 cores: **{verdict}**.",
            "",
            f"Data: {described}, written as CSV and read with `--dataset csv:FOLDER` (H = 10 % of users).",
            f"Each command: `python -m recsys {' '.join(command[:2])} csv:FOLDER {' '.join(command[3:])}`, "
            "a fresh subprocess, the same environment with `$RECSYS_TORCH_THREADS` and `*_NUM_THREADS` unset. "
            f"Old = `recsys/` of commit `{args.old_rev}` (`git archive`), run with the same interpreter: "
            "default thread pools, EASE's grid re-chosen per seed, torch families at their class defaults "
            "(Multi-VAE 20 epochs, Flow 40 + 40 flow epochs). New = thread limits of `recsys.threads`, "
            "settings of `recsys/tuning.py` (torch: at most 100 epochs, patience 5), tuned once on seed 0.",
            "",
            "The new command's output:",
            "",
            new["stdout"].strip(),
        ]
    )
    print(table)
    print(notes)
    if args.out:
        from recsys.benchmarking import write_result

        argv_ = ["python", "benchmarks/evaluate_speed.py", *(argv if argv is not None else sys.argv[1:])]
        write_result(args.out, title="`python -m recsys evaluate`: wall time", table=table, argv=argv_, notes=notes)
        print(f"written to {args.out}", file=sys.stderr)
    return 0 if new["rc"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
