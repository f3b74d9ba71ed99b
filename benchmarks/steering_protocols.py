"""Matched-share steering evaluations (issue 12) over registry models, pooled over split seeds.

For each data set, family and split seed (models trained by ``benchmarks/steering_models.sh``, ids
``FAMILY-DATA-sSEED``) this runs :func:`recsys.steering.protocols.run_protocols`: tune+post's latent
step chosen on validation users, then E1 (random non-dominant tag), E2 (the tag the held-out items
carry more), E3 (E2 with 50 % / 80 % of item-tag entries hidden, uniform or popularity-biased) at
matched shares 0.3 / 0.5 / 0.7, and E5 (tags-only cold start). Per-user rows of all seeds are pooled
and every difference against the postfilter gets a paired bootstrap CI over users.

    RECSYS_MODELS_DIR=/tmp/steer_models python benchmarks/steering_protocols.py \
        --datasets lastfm-2k,ml-1m --families multvae,mlp_flow,svd --seeds 0,1,2

Writes ``benchmarks/results/steering/incomplete_tags.md``, ``cold_start_tags.md``,
``matched_share_e1.md`` and the summary CSVs beside them.
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
from recsys.data import load_dataset  # noqa: E402
from recsys.registry import Registry  # noqa: E402
from recsys.steering import Steerer  # noqa: E402
from recsys.steering.evaluation import split_of, sweep_table  # noqa: E402
from recsys.steering.protocols import ProtocolConfig, bootstrap_ci, run_protocols  # noqa: E402
from recsys.threads import training_torch_threads  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "steering"


def pooled_rows(frames: list[pd.DataFrame], cfg: ProtocolConfig, metric: str) -> list[dict]:
    """Summary rows (mode x target share) of per-user frames pooled over seeds, Δ metric vs postfilter."""
    df = pd.concat(frames, ignore_index=True)
    steered = df[df["mode"] != "standard"]
    rows = []
    for (mode, share), g in steered.groupby(["mode", "target share"], sort=False):
        post = steered[(steered["mode"] == "postfilter") & (steered["target share"] == share)]
        merged = g.merge(post, on=["seed", "user"], suffixes=("", "_post"))
        diff = (merged[metric] - merged[f"{metric}_post"]).to_numpy()
        lo, hi = bootstrap_ci(diff, cfg.n_boot, cfg.seed)
        rows.append(
            {
                "mode": mode,
                "target": share,
                "users": len(g),
                "reached": g["reached"].mean(),
                "share": g["share"].mean(),
                "true share": g["true share"].mean(),
                "tag recall": g["tag recall"].mean(),
                f"tag recall@{cfg.k}": g[f"tag recall@{cfg.k}"].mean(),
                f"NDCG@{cfg.n}": g[f"NDCG@{cfg.n}"].mean(),
                "jaccard": g["jaccard"].mean(),
                "taste": g["taste"].mean(),
                "delta": diff.mean() if len(diff) else np.nan,
                "CI low": lo,
                "CI high": hi,
            }
        )
    return rows


def fmt(v: float, d: int = 3, sign: bool = False) -> str:
    if v != v:
        return "–"
    return f"{v:+.{d}f}" if sign else f"{v:.{d}f}"


def main() -> None:
    with training_torch_threads():
        run()


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="lastfm-2k,ml-1m")
    p.add_argument("--families", default="multvae,mlp_flow,svd")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--merge", nargs="+", type=Path, help="only combine the CSVs of earlier runs in these directories")
    args = p.parse_args()
    if args.merge:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        merge(args.merge, out, sys.argv[1:])
        return
    cfg = ProtocolConfig(n_users=args.users)
    registry = Registry()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    datasets = [d for d in args.datasets.split(",") if d]
    families = [f for f in args.families.split(",") if f]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    e1_rows, e3_rows, e5_rows, steps = [], [], [], []
    t_start = time.time()
    for data in datasets:
        cache: dict[str, object] = {}

        def load(name: str, _cache=cache):
            if name not in _cache:
                _cache[name] = load_dataset(name, args.data_dir)
            return _cache[name]

        for family in families:
            per: dict[str, list[pd.DataFrame]] = {}
            e5_frames = []
            for seed in seeds:
                model_id = f"{family}-{data}-s{seed}"
                t0 = time.time()
                loaded = registry.load(model_id)
                steerer = Steerer.from_loaded(loaded)
                split = split_of(loaded, load)
                res = run_protocols(
                    steerer, split, cfg, progress=lambda m, _id=model_id: print(f"  {_id}: {m}", flush=True)
                )
                steps.append({"data": data, "model": family, "seed": seed, **res.step_rule.to_json()})
                if not res.step_table.empty:
                    print(res.step_table.head(8).round(4).to_string(index=False))
                per.setdefault("e1", []).append(res.e1.assign(seed=seed))
                for (hidden, bias), frame in res.e3.items():
                    per.setdefault(f"{hidden}|{bias}", []).append(frame.assign(seed=seed))
                if not res.e5.empty:
                    e5_frames.append(res.e5.assign(seed=seed))
                print(f"{model_id}: done in {time.time() - t0:.0f} s ({res.step_rule.describe()})", flush=True)
            for row in pooled_rows(per["e1"], cfg, f"NDCG@{cfg.n}"):
                e1_rows.append({"data": data, "model": family, **row})
            for key, frames in per.items():
                if key == "e1":
                    continue
                hidden, bias = key.split("|")
                for row in pooled_rows(frames, cfg, "tag recall"):
                    e3_rows.append({"data": data, "model": family, "hidden": float(hidden), "bias": bias, **row})
            if e5_frames:
                e5 = pd.concat(e5_frames, ignore_index=True)
                piv = e5.pivot_table(index=["seed", "user"], columns="method", values=f"NDCG@{cfg.n}")
                diff = (piv["centroids"] - piv["postfiltered popularity"]).to_numpy()
                lo, hi = bootstrap_ci(diff, cfg.n_boot, cfg.seed)
                diff_f = (piv["centroids, tag-filtered"] - piv["tag-filtered popularity"]).to_numpy()
                lo_f, hi_f = bootstrap_ci(diff_f, cfg.n_boot, cfg.seed)
                for method, g in e5.groupby("method", sort=False):
                    e5_rows.append(
                        {
                            "data": data,
                            "model": family,
                            "method": method,
                            "users": len(g),
                            f"NDCG@{cfg.n}": g[f"NDCG@{cfg.n}"].mean(),
                            f"recall@{cfg.k}": g[f"recall@{cfg.k}"].mean(),
                            f"share@{cfg.k}": g[f"share@{cfg.k}"].mean(),
                            "Δ NDCG centroids vs postfiltered popularity": diff.mean(),
                            "CI low": lo,
                            "CI high": hi,
                            "Δ NDCG tag-filtered: centroids vs popularity": diff_f.mean(),
                            "CI low (filtered)": lo_f,
                            "CI high (filtered)": hi_f,
                        }
                    )
    elapsed = time.time() - t_start
    out_e3, out_e1, out_e5 = pd.DataFrame(e3_rows), pd.DataFrame(e1_rows), pd.DataFrame(e5_rows)
    steps_df = pd.DataFrame(steps)
    for name, df in (("incomplete_tags", out_e3), ("matched_share_e1", out_e1), ("cold_start_tags", out_e5)):
        df.to_csv(out / f"{name}.csv", index=False)
    steps_df.to_csv(out / "latent_steps.csv", index=False)
    (out / "elapsed_s.txt").write_text(f"{elapsed:.0f}\n")
    (out / "command.txt").write_text(" ".join(["python", "benchmarks/steering_protocols.py", *sys.argv[1:]]) + "\n")
    write_markdown(out, out_e3, out_e1, out_e5, steps_df, cfg, elapsed, sys.argv[1:])
    print(f"written to {out}")


def merge(dirs: list[Path], out: Path, argv: list[str]) -> None:
    """Combine the CSVs of runs over disjoint data sets (summaries pool within a data set) into one set of files."""
    cfg = ProtocolConfig()
    frames = {
        name: pd.concat([pd.read_csv(d / f"{name}.csv") for d in dirs], ignore_index=True)
        for name in ("incomplete_tags", "matched_share_e1", "cold_start_tags", "latent_steps")
    }
    elapsed = max(float((d / "elapsed_s.txt").read_text()) for d in dirs)
    runs = [(d / "command.txt").read_text().strip() for d in dirs if (d / "command.txt").exists()]
    for name, df in frames.items():
        df.to_csv(out / f"{name}.csv", index=False)
    write_markdown(
        out,
        frames["incomplete_tags"],
        frames["matched_share_e1"],
        frames["cold_start_tags"],
        frames["latent_steps"],
        cfg,
        elapsed,
        argv,
        runs,
    )
    print(f"merged {len(dirs)} runs into {out}")


def write_markdown(
    out: Path,
    e3: pd.DataFrame,
    e1: pd.DataFrame,
    e5: pd.DataFrame,
    steps: pd.DataFrame,
    cfg: ProtocolConfig,
    elapsed: float,
    args: list[str],
    runs: list[str] | None = None,
) -> None:
    argv = ["python", "benchmarks/steering_protocols.py", *args]
    lines = [
        "| data | model | hidden | bias | mode | share | tag recall | NDCG@100 "
        "| Δ recall vs postfilter | CI low | CI high |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in e3.iterrows():
        lines.append(
            f"| {r['data']} | {r['model']} | {r['hidden']:g} | {r['bias']} | {r['mode']} | {fmt(r['share'], 2)} "
            f"| {fmt(r['tag recall'])} | {fmt(r[f'NDCG@{cfg.n}'])} | {fmt(r['delta'], 3, True)} "
            f"| {fmt(r['CI low'], 3, True)} | {fmt(r['CI high'], 3, True)} |"
        )
    notes = (
        f"{cfg.n_users} test users per split seed, pooled over the seeds; {elapsed / 60:.0f} min per run. "
        "tune+post's step rule (base + scale x max(0, (1 - completeness) - offset)) chosen on validation users: "
        + ", ".join(f"{r.data} {r.model} s{r.seed}: {r.base:g}/{r.scale:g}/{r.offset:g}" for r in steps.itertuples())
        + "."
    )
    if runs:
        notes += " Merged from the runs `" + "`, `".join(runs) + "` (models: `benchmarks/steering_models.sh`)."
    write_result(
        out / "incomplete_tags.md",
        title="Steering with incomplete tags (E2, E3)",
        table="\n".join(lines),
        argv=argv,
        notes=notes,
    )
    write_result(
        out / "matched_share_e1.md",
        title="Steering at matched share, random non-dominant tag (E1)",
        table=sweep_table(e1.rename(columns={"delta": "Δ NDCG@100 vs postfilter"})),
        argv=argv,
        notes=notes,
    )
    write_result(
        out / "cold_start_tags.md", title="Tags-only cold start (E5)", table=sweep_table(e5), argv=argv, notes=notes
    )


if __name__ == "__main__":
    main()
