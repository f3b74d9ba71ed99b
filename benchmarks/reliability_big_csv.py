"""Import a big generated interactions CSV and report time and peak memory (``benchmarks/results/reliability.md``).

    python benchmarks/reliability_big_csv.py --rows 10000000 [--work-dir /tmp/recsys_big_csv] [--max-memory BYTES]

Writes ``interactions.csv`` (user, item, weight, timestamp; users ``u<n>``, ``--users`` of them
(default ``rows/50``),
20,000 items with a Zipf-like popularity) and ``items.csv`` into the work dir (reused when present
with the same row count), then imports them in a fresh subprocess and prints one JSON line: rows,
file bytes, wall and CPU seconds, peak RSS (``ru_maxrss``), the RSS before the import (interpreter
and imports) and the peak above it per row, or the error the import refused with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS = 20_000


def generate(work: Path, rows: int, users: int | None = None, seed: int = 0) -> tuple[Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    inter, items = work / "interactions.csv", work / "items.csv"
    stamp = work / "rows.txt"
    n_users = users or max(rows // 50, 1)
    if inter.is_file() and items.is_file() and stamp.is_file() and stamp.read_text() == f"{rows} {n_users}":
        return inter, items
    rng = np.random.default_rng(seed)
    with open(items, "w", encoding="utf-8") as f:
        f.write("item,title,artist,tags\n")
        for i in range(N_ITEMS):
            f.write(f"i{i},Song {i},Artist {i % 997},tag{i % 13}|tag{i % 7}\n")
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    pop /= pop.sum()
    with open(inter, "w", encoding="utf-8") as f:
        f.write("user,item,weight,timestamp\n")
        step = 1_000_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            u = rng.integers(0, n_users, n)
            i = rng.choice(N_ITEMS, n, p=pop)
            w = rng.integers(1, 200, n)
            t = rng.integers(1_100_000_000, 1_700_000_000, n)
            f.write("".join(f"u{a},i{b},{c},{d}\n" for a, b, c, d in zip(u, i, w, t, strict=True)))
    stamp.write_text(f"{rows} {n_users}")
    return inter, items


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(inter: str, items: str, max_memory: int | None) -> None:
    sys.path.insert(0, str(ROOT))
    from recsys.data.csv_import import CsvImportError, import_csv

    before = _rss_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    out: dict = {}
    try:
        kw = {} if max_memory is None else {"max_memory": max_memory}
        ds = import_csv(inter, items, **kw)
        out.update(users=ds.n_users, items=ds.n_items, nnz=int(ds.interactions.nnz))
    except CsvImportError as e:
        out["refused"] = str(e)
    out.update(
        wall_s=round(time.perf_counter() - t0, 1),
        cpu_s=round(time.process_time() - c0, 1),
        rss_before_mb=round(before / 1024, 1),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--work-dir", default="/tmp/recsys_big_csv")
    ap.add_argument("--users", type=int, default=None, help="distinct users (default rows / 50)")
    ap.add_argument("--max-memory", type=int, default=None, help="import_csv(max_memory=...) (bytes)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.max_memory)
        return
    t0 = time.perf_counter()
    inter, items = generate(Path(args.work_dir), args.rows, args.users)
    gen_s = time.perf_counter() - t0
    cmd = [sys.executable, __file__, "--child", str(inter), str(items)]
    if args.max_memory is not None:
        cmd += ["--max-memory", str(args.max_memory)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    res.update(
        rows=args.rows,
        distinct_users=args.users or max(args.rows // 50, 1),
        file_mb=round(os.path.getsize(inter) / 2**20, 1),
        generate_s=round(gen_s, 1),
    )
    if "nnz" in res:
        res["peak_above_baseline_bytes_per_row"] = round(
            (res["peak_rss_mb"] - res["rss_before_mb"]) * 2**20 / args.rows, 1
        )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
