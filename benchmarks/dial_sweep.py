"""Goal (a) of issue 12, measured: the share dial on the demo registry (every default model, mode and tag).

    python benchmarks/dial_sweep.py [--listeners 5] [--points 21]

Stored held-out listeners of each model, dial 0..100 %; per model and mode: cases, share of reached
targets within ±0.05, ceilings (tune's limit), floors (above the dial unsteered), monotonicity breaks,
and the page's call time (all four modes, one person) as p50/p95. Writes
``benchmarks/results/steering/dial.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.benchmarking import write_result  # noqa: E402
from recsys.defaults import DEFAULT_MODELS  # noqa: E402
from recsys.model_extras import stored_listener_split, stored_listeners  # noqa: E402
from recsys.registry import Registry  # noqa: E402
from recsys.steering import Steerer  # noqa: E402
from recsys.steering.evaluation import dial_report, dial_sweep, sweep_table  # noqa: E402
from recsys.threads import training_torch_threads  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listeners", type=int, default=5)
    p.add_argument("--points", type=int, default=21)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "steering" / "dial.md"))
    args = p.parse_args()
    registry = Registry()
    dial = np.round(np.linspace(0.0, 1.0, args.points), 3)
    rows = []
    with training_torch_threads():
        for spec in DEFAULT_MODELS:
            loaded = registry.load(spec.model_id)
            steerer = Steerer.from_loaded(loaded)
            foldin, _ = stored_listener_split(loaded.extras, loaded.model.n_items_)
            sweep = dial_sweep(steerer, foldin[: args.listeners], dial)
            picks = [str(v) for v in loaded.items["item_id"].iloc[stored_listeners(loaded.extras)[0]]]
            tag = steerer.steerable_tags[0]
            times = []
            for share in np.tile([0.2, 0.4, 0.6, 0.8], 5):
                t0 = time.perf_counter()
                steerer.recommend(picks, {tag: 1.0}, share=float(share))
                times.append(1000 * (time.perf_counter() - t0))
            for mode, g in sweep.groupby("mode", sort=False):
                rep = dial_report(g)
                rows.append(
                    {
                        "model": spec.model_id,
                        "mode": mode,
                        "tags": g["tag"].nunique(),
                        **rep,
                        "page call p50 ms": float(np.percentile(times, 50)),
                        "page call p95 ms": float(np.percentile(times, 95)),
                    }
                )
            print(spec.model_id, "done", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    notes = (
        f"Dial: {args.points} positions from 0 to 100 %; the first {args.listeners} stored held-out listeners of "
        "each model; every steerable tag (β 1). 'reached' = the mode got to the target count round(share × 20); "
        "'ceiling' = it cannot (tune's path tops out below the target; the page says so and shows its best); "
        "'floor' = the unsteered list already carries more than asked. Page call: Steerer.recommend for one "
        "person, all four modes, 20 calls."
    )
    write_result(
        args.out,
        title="The share dial on the demo registry (issue 12, goal a)",
        table=sweep_table(table),
        argv=["python", "benchmarks/dial_sweep.py", *sys.argv[1:]],
        notes=notes,
    )


if __name__ == "__main__":
    main()
