"""Wall time of ``python -m recsys evaluate`` before and after it got thread limits and tuning once.

    python benchmarks/evaluate_speed.py --out benchmarks/results/evaluate_speed.md

One run, on a ~1,000-user data set (the synthetic generator with ``n_users=1000``, its other
defaults and seed, written as ``interactions.csv`` + ``items.csv`` and read back with
``--dataset csv:FOLDER``; 10 % of the users are validation users and 10 % test users), times the
same command line

    python -m recsys evaluate --dataset csv:FOLDER --models popularity,ease,svd,multvae,flow --seeds 0,1,2

four times (the new command, the new command with ``--jobs 1`` and with ``--no-search``, then the
old one), each in a fresh subprocess with the same environment (``$RECSYS_TORCH_THREADS`` and the
``*_NUM_THREADS`` variables removed, so each command uses its own thread policy):

- **new**: this checkout: torch, numba and BLAS limited by ``recsys.threads`` (1 thread on <= 2
  cores), settings from ``recsys/tuning.py`` (torch families ``epochs`` <= 100 with patience 5);
  every family's grid tried once, on seed 0's validation users (EASE 7 points, SVD 2, Multi-VAE 5,
  Flow 2), the chosen point used for seeds 0-2.
- **new --jobs 1**: the same, every fit in one process one after another (the command before
  ``--jobs``; the default spreads the fits over 2 worker processes on 2 cores).
- **new --no-search**: the same with each family's first grid point only (no validation search).
- **old**: ``recsys/`` of ``--old-rev`` (the commit before the change), extracted with
  ``git archive`` into a temporary folder and run from there with the same interpreter: default
  thread pools, the EASE grid re-chosen per seed, torch families at their class defaults
  (Multi-VAE 20 epochs, Flow 40 + 40 flow epochs, patience 5). It is stopped after ``--old-timeout``
  seconds and then reported as "> N s".

The result file gives the wall times, each new command's ratio to the old one, the machine's load
averages (``uptime``'s 1/5/15-minute figures) before and after each command, and each new command's
own table.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
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
    """Run ``cmd``; wall and CPU seconds, exit status, stdout, load averages before/after (stderr: the bars, discarded).

    CPU seconds are user + system time of the command and its children (``getrusage`` of this
    process's waited-for children, before and after): on a shared machine the wall time grows with the
    load, the CPU time much less, so it says what the command would take alone on idle cores.
    """
    load0 = os.getloadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, stdout, err = out.returncode, out.stdout, out.stderr
    except subprocess.TimeoutExpired as e:
        rc, stdout, err = None, (e.stdout or b"").decode(errors="replace"), ""
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if rc not in (0, None):
        print(err[-3000:], file=sys.stderr)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rc": rc,
        "stdout": stdout,
        "load_before": load0,
        "load_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1000, help="users of the synthetic data set (default 1000)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic generator")
    p.add_argument("--models", default=MODELS)
    p.add_argument("--seeds", default=SEEDS)
    p.add_argument("--old-rev", default=OLD_REV, help="commit whose recsys/ is the old command")
    p.add_argument("--old-timeout", type=float, default=900.0, help="stop the old command after this many seconds")
    p.add_argument("--skip-old", action="store_true", help="time the new commands only")
    p.add_argument("--skip-search", action="store_true", help="time the new command with --no-search only")
    p.add_argument("--out", help="markdown result file")
    p.add_argument("--note", action="append", default=[], help="extra paragraph for the notes (repeatable)")
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
        variants = {"new --no-search": ["--no-search"]}
        if not args.skip_search:
            variants = {"new": [], "new --jobs 1": ["--jobs", "1"], **variants}
        for name, extra in variants.items():
            print(f"{name} ...", file=sys.stderr, flush=True)
            runs[name] = timed([sys.executable, "-m", "recsys", *command, *extra], ROOT, env, timeout=3600)
            print(f"{name}: {runs[name]['wall_s']:.1f} s (rc {runs[name]['rc']})", file=sys.stderr, flush=True)
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

    def loads(values: tuple[float, ...]) -> str:
        return " / ".join(f"{v:.1f}" for v in values)

    what = {
        "new": "new (this checkout; grid search; default --jobs)",
        "new --jobs 1": "new, `--jobs 1` (every fit in one process, as before --jobs)",
        "new --no-search": "new, `--no-search` (first grid point)",
    }
    lines = ["| command | wall | CPU (user + sys) | load 1 / 5 / 15 min before → after |", "|---|---|---|---|"]
    for name, r in runs.items():
        label = what.get(name, f"old (`{args.old_rev}`)")
        cpu = f"{r['cpu_s']:.1f} s" if r["rc"] is not None else "– (stopped)"
        lines.append(f"| {label} | {wall(r)} | {cpu} | {loads(r['load_before'])} → {loads(r['load_after'])} |")
    new_names = [n for n in runs if n != "old"]
    if "old" in runs:
        old = runs["old"]
        bound = "≤ " if old["rc"] is None else ""  # the old time is a lower bound when it was stopped
        for name in new_names:
            cpu_ratio = "" if old["rc"] is None else f"{runs[name]['cpu_s'] / old['cpu_s']:.3f}"
            lines.append(
                f"| **ratio {name} / old** | {bound}{runs[name]['wall_s'] / old['wall_s']:.3f} | {cpu_ratio} | |"
            )
    if "new" in runs and "new --jobs 1" in runs and runs["new --jobs 1"]["rc"] == 0:
        r = runs["new"]["wall_s"] / runs["new --jobs 1"]["wall_s"]
        lines.append(f"| **ratio new / new --jobs 1** | {r:.3f} | | |")
    table = "\n".join(lines)
    verdicts = [
        f"`{name}` {'met' if runs[name]['rc'] == 0 and runs[name]['wall_s'] < GOAL_S else 'NOT met'}"
        for name in new_names
    ]
    outputs = []
    for name in new_names:
        outputs += ["", f"The output of `{name}`:", "", runs[name]["stdout"].strip()]
    notes = "\n".join(
        [
            f"Goal: the new command under {GOAL_S:.0f} s on 2 cores: **{'; '.join(verdicts)}**.",
            "",
            f"Data: {described}, written as CSV and read with `--dataset csv:FOLDER` (H = 10 % of users).",
            f"Each command: `python -m recsys {' '.join(command[:2])} csv:FOLDER {' '.join(command[3:])}`, "
            "a fresh subprocess, the same environment with `$RECSYS_TORCH_THREADS` and `*_NUM_THREADS` unset. "
            f"Old = `recsys/` of commit `{args.old_rev}` (`git archive`), run with the same interpreter: "
            "default thread pools, EASE's grid re-chosen per seed, torch families at their class defaults "
            "(Multi-VAE 20 epochs, Flow 40 + 40 flow epochs). New = thread limits of `recsys.threads`, "
            "settings of `recsys/tuning.py` (torch: at most 100 epochs, patience 5), each family's grid tried "
            "once on seed 0's validation users; `--no-search` fits each family's first grid point only. "
            "`new` runs its fits in `--jobs` worker processes (default: cores / threads per fit: 2 here); "
            "`--jobs 1` runs them one after another in one process. The rows do not depend on --jobs.",
            *outputs,
            *[line for n in args.note for line in ("", n)],
        ]
    )
    print(table)
    print(notes)
    if args.out:
        from recsys.benchmarking import write_result

        argv_ = ["python", "benchmarks/evaluate_speed.py", *(argv if argv is not None else sys.argv[1:])]
        write_result(args.out, title="`python -m recsys evaluate`: wall time", table=table, argv=argv_, notes=notes)
        print(f"written to {args.out}", file=sys.stderr)
    return 0 if all(runs[n]["rc"] == 0 for n in new_names) else 1


if __name__ == "__main__":
    raise SystemExit(main())
