"""tune+post's step rule for each of the demo's latent default models, chosen on validation users.

    python benchmarks/demo_step_rules.py [--users 200]

The demo's first start would spend 20-45 s a latent model choosing the rule
(:func:`recsys.steering.protocols.choose_step_rule`); its models are deterministic (same data,
seeds and settings), so the rules are chosen here once, on the models of the demo registry
(``models_store/``), and committed in :data:`recsys.defaults.DEFAULT_MODELS`. Rerun this after
changing a default model or the rule's grid, and paste the printed rules there. Writes
``benchmarks/results/steering/demo_step_rules.md`` (with ``--models A,B``: only those models, written
to ``demo_step_rules_A_B.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.benchmarking import write_result  # noqa: E402
from recsys.defaults import DEFAULT_MODELS, default_dataset  # noqa: E402
from recsys.registry import Registry  # noqa: E402
from recsys.steering import Steerer  # noqa: E402
from recsys.steering.evaluation import split_of, sweep_table  # noqa: E402
from recsys.steering.protocols import ProtocolConfig, choose_step_rule  # noqa: E402
from recsys.threads import training_torch_threads  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=200, help="validation users (default 200)")
    p.add_argument("--models", help="only these default model ids (comma-separated); default: every latent one")
    p.add_argument("--out", help="result file (default: results/steering/demo_step_rules[_IDS].md)")
    args = p.parse_args()
    only = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    if args.out is None:
        suffix = "_" + "_".join(only) if only else ""
        args.out = str(ROOT / "benchmarks" / "results" / "steering" / f"demo_step_rules{suffix}.md")
    registry = Registry()
    data = default_dataset()
    rows, parts = [], []
    with training_torch_threads():
        for spec in DEFAULT_MODELS:
            if only is not None and spec.model_id not in only:
                continue
            loaded = registry.load(spec.model_id)
            steerer = Steerer.from_loaded(loaded)
            if not steerer.latent:
                continue
            split = split_of(loaded, lambda _name: data)
            t0 = time.perf_counter()
            rule, table = choose_step_rule(
                steerer,
                split.train.interactions,
                split.train.items,
                split.val_foldin,
                split.val_holdout,
                cfg=ProtocolConfig(n_users=args.users),
            )
            seconds = time.perf_counter() - t0
            rows.append({"model": spec.model_id, **rule.to_json(), "rule": rule.describe(), "seconds": seconds})
            parts.append(f"### {spec.model_id}\n\n" + sweep_table(table.head(6)))
            print(f"{spec.model_id}: step_rule={rule.to_json()!r}  ({seconds:.0f} s)", flush=True)
    write_result(
        args.out,
        title="tune+post's step rule for the demo's default models",
        table=sweep_table(pd.DataFrame(rows)) + "\n\nBest rules per model (validation users):\n\n" + "\n\n".join(parts),
        argv=["python", "benchmarks/demo_step_rules.py", *sys.argv[1:]],
        notes="Committed in recsys/defaults.py (DEFAULT_MODELS); 'seconds' is what the demo's first start saves.",
    )


if __name__ == "__main__":
    main()
