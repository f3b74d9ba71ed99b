"""Summarise the committed steering sweeps (benchmarks/results/steering/*/steering_*.csv) in one table.

With ``--figures`` it also redraws the committed trade-off figures from the CSVs (the groupings in
:data:`FIGURES`), so a change to the figure's layout does not need the sweeps run again.

For every model and mode: held-out NDCG@100 with no steering, the smallest swept alpha whose mean
target-tag share@20 reaches 0.5, and the NDCG@100 left at a share of 0.5 (linear interpolation
between the two swept alphas around it). Writes benchmarks/results/steering/alpha_sweeps.md.

    python benchmarks/steering_summary.py [--figures]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent / "results" / "steering"
TARGET = 0.5

#: (data set folder, figure stem, models) of the committed trade-off figures.
FIGURES = [
    ("synthetic", "tradeoff_synthetic_latent_families",
     ["svd-synthetic", "mlp-synthetic", "multvae-synthetic", "flow-synthetic", "mlp_flow-synthetic",
      "autoencoder-synthetic"]),
    ("synthetic", "tradeoff_synthetic_yardsticks", ["popularity-synthetic", "ease-synthetic"]),
    ("synthetic", "tradeoff_synthetic_autoencoder", ["autoencoder-synthetic"]),
    ("lastfm-2k", "tradeoff_lastfm-2k", ["multvae-lastfm-2k", "mlp_flow-lastfm-2k", "svd-lastfm-2k"]),
    ("ml-1m", "tradeoff_ml-1m", ["multvae-ml-1m", "mlp_flow-ml-1m", "svd-ml-1m"]),
]  # fmt: skip


def redraw_figures() -> None:
    from recsys.steering.evaluation import tradeoff_figure, write_figure

    for folder, stem, models in FIGURES:
        sweeps = {m: pd.read_csv(ROOT / folder / f"steering_{m}.csv") for m in models}
        fig = tradeoff_figure(sweeps, title=f"Steering trade-off on {folder}: {', '.join(models)}")
        print("written:", ", ".join(write_figure(fig, str(ROOT / folder / stem))))


def ndcg_at_share(g: pd.DataFrame, share: float) -> float:
    """NDCG@100 where the share curve crosses ``share`` (nan if it never does)."""
    s, n = g["share@20"].to_numpy(), g["ndcg@100"].to_numpy()
    above = np.flatnonzero(s >= share)
    if not len(above):
        return float("nan")
    j = int(above[0])
    if j == 0:
        return float(n[0])
    t = (share - s[j - 1]) / max(s[j] - s[j - 1], 1e-12)
    return float(n[j - 1] + t * (n[j] - n[j - 1]))


def summary() -> pd.DataFrame:
    rows = []
    for csv in sorted(ROOT.glob("*/steering_*.csv")):
        df = pd.read_csv(csv)
        model = csv.stem.removeprefix("steering_")
        for mode, g in df.groupby("mode", sort=False):
            g = g.sort_values("alpha")
            hit = g[g["share@20"] >= TARGET]
            rows.append(
                {
                    "data": csv.parent.name,
                    "model": model,
                    "mode": mode,
                    "users": int(g["users"].iloc[0]),
                    "share@20 at α=0": g["share@20"].iloc[0],
                    "NDCG@100 at α=0": g["ndcg@100"].iloc[0],
                    "α for share 0.5": float(hit["alpha"].min()) if len(hit) else float("nan"),
                    "NDCG@100 at share 0.5": ndcg_at_share(g, TARGET),
                    "max share@20": g["share@20"].max(),
                }
            )
    return pd.DataFrame(rows)


def main() -> int:
    if "--figures" in sys.argv[1:]:
        redraw_figures()
    df = summary()
    df["kept NDCG at share 0.5"] = df["NDCG@100 at share 0.5"] / df["NDCG@100 at α=0"]
    shown = df.copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f":
            shown[c] = shown[c].map(lambda v: "—" if np.isnan(v) else f"{v:.3f}")
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.itertuples(index=False)]
    text = (ROOT / "alpha_sweeps.header.md").read_text() + "\n" + "\n".join(lines) + "\n"
    (ROOT / "alpha_sweeps.md").write_text(text)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
