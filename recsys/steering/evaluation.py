"""Seed 000's "predict": how steering trades accuracy for the target tag, swept over alpha.

(tune+post sweeps the strength of its postfilter after the model's fixed latent step.)

For each test user (fold-in history ``x``, held-out items ``h``) a target tag ``t`` is drawn among
the steerable tags that are *not* the user's dominant tag (uniformly, from ``seed``). For every mode
and alpha the user's list is recomputed toward ``{t: beta}`` and scored:

* ``ndcg_graded@N``: NDCG@N with relevance 1 for held-out items, ``reli`` for (other) items carrying
  ``t``, gain ``2^rel - 1`` (rec-NN's evaluation); the ideal ranking sorts the same relevances.
* ``ndcg@N``: plain held-out NDCG@N (accuracy), and ``delta_ndcg@N`` against the same mode at alpha 0.
* ``share@K``: share of the top K carrying ``t``; ``hits_heldout@K`` / ``hits_target@K`` /
  ``neither@K``: COUNTS, the top K split into held-out hits, target-tag items (not held out), others.
* ``dist_centroid`` / ``dist_heldout``: DIST, latent distance of the (tuned) point to ``c_t`` and to
  ``encode(h)``, the held-out items' own point (the point does not move for postfilter).
* ``jaccard@K``: overlap of the top K with the user's standard top K.

Everything is vectorised over users: one decode per (mode, alpha) for all users of a batch.
:func:`tradeoff_figure` draws share@K against held-out NDCG, one curve per mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .steerer import LATENT_MODES, MODES, Steerer
from .tags import SteeringError, dominant_tags

#: Default alpha grids per mode: postfilter needs far larger alpha than tuning for the same share.
DEFAULT_ALPHAS: dict[str, tuple[float, ...]] = {
    "postfilter": (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0),
    "tune": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "tune+post": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
}


@dataclass(frozen=True)
class SweepConfig:
    """Knobs of a steering sweep (defaults follow seed 000 and DESIGN.md)."""

    n_users: int = 300
    seed: int = 0
    beta: float = 1.0
    reli: float = 0.5
    k: int = 20  # share / COUNTS / Jaccard cut-off
    n: int = 100  # NDCG cut-off
    batch_size: int = 256


def sample_test_users(
    foldin: sp.csr_matrix, holdout: sp.csr_matrix, n_users: int, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """At most ``n_users`` users with both fold-in and held-out items (seeded, in their original order)."""
    foldin, holdout = sp.csr_matrix(foldin), sp.csr_matrix(holdout)
    keep = np.flatnonzero((np.diff(holdout.indptr) > 0) & (np.diff(foldin.indptr) > 0))
    if len(keep) > n_users:
        keep = np.sort(np.random.default_rng(seed).choice(keep, n_users, replace=False))
    return foldin[keep], holdout[keep]


def choose_targets(steerer: Steerer, foldin: sp.csr_matrix, seed: int) -> np.ndarray:
    """Per user, a vocabulary column of a steerable tag that is not their dominant tag (random, seeded)."""
    tags = steerer.steerable_tags
    if len(tags) < 2:
        raise SteeringError(f"a steering sweep needs at least 2 steerable tags, this model has {tags}")
    cols = np.array([steerer.vocabulary.index(t) for t in tags], dtype=np.int64)
    dom = dominant_tags(foldin, steerer.tag_matrix)
    rng = np.random.default_rng(seed)
    out = np.empty(foldin.shape[0], dtype=np.int64)
    for u in range(foldin.shape[0]):
        choices = cols[cols != dom[u]]
        out[u] = rng.choice(choices)
    return out


def _graded_ndcg(top: np.ndarray, rel: np.ndarray, n: int) -> np.ndarray:
    """NDCG@n with graded relevance ``rel`` (n_users, n_items; history items already 0), gain 2^rel - 1."""
    disc = 1.0 / np.log2(np.arange(2, n + 2))
    gain = np.exp2(np.take_along_axis(rel, top[:, :n], axis=1)) - 1.0
    dcg = (gain * disc[: gain.shape[1]]).sum(axis=1)
    ideal = -np.sort(-rel, axis=1)[:, :n]
    idcg = ((np.exp2(ideal) - 1.0) * disc[: ideal.shape[1]]).sum(axis=1)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def _row_sets_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape[0])
    for u in range(a.shape[0]):
        sa, sb = set(a[u].tolist()), set(b[u].tolist())
        out[u] = len(sa & sb) / max(len(sa | sb), 1)
    return out


def steering_sweep(
    steerer: Steerer,
    foldin: sp.csr_matrix,
    holdout: sp.csr_matrix,
    *,
    alphas: Mapping[str, Sequence[float]] | None = None,
    config: SweepConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per (mode, alpha) with the metrics of the module docstring, averaged over users.

    Modes the model cannot do (tune modes of non-latent models) are left out. ``alphas`` per mode
    (default :data:`DEFAULT_ALPHAS`); each grid gets 0 added so deltas have their reference.
    """
    cfg = config or SweepConfig()
    alphas = dict(DEFAULT_ALPHAS if alphas is None else alphas)
    modes = [m for m in MODES if m in alphas and (steerer.latent or m not in LATENT_MODES)]
    foldin, holdout = sample_test_users(foldin, holdout, cfg.n_users, cfg.seed)
    targets = choose_targets(steerer, foldin, cfg.seed)
    grids = {m: sorted({0.0, *map(float, alphas[m])}) for m in modes}
    total = sum(len(g) for g in grids.values()) * int(np.ceil(foldin.shape[0] / cfg.batch_size))
    done = 0
    acc: dict[tuple[str, float], dict[str, float]] = {}
    for lo in range(0, foldin.shape[0], cfg.batch_size):
        x, h, t = foldin[lo : lo + cfg.batch_size], holdout[lo : lo + cfg.batch_size], targets[lo : lo + cfg.batch_size]
        for (mode, alpha), sums in _sweep_batch(steerer, x, h, t, grids, cfg).items():
            row = acc.setdefault((mode, alpha), {})
            for key, v in sums.items():
                row[key] = row.get(key, 0.0) + v
            done += 1
            if progress is not None:
                progress(done, total)
    rows = []
    for (mode, alpha), sums in acc.items():
        n_users = sums.pop("users")
        rows.append({"mode": mode, "alpha": alpha, "users": int(n_users), **{k: v / n_users for k, v in sums.items()}})
    df = pd.DataFrame(rows).sort_values(["mode", "alpha"], key=lambda c: c.map(MODES.index) if c.name == "mode" else c)
    base = df[df["alpha"] == 0].set_index("mode")[f"ndcg@{cfg.n}"]
    df.insert(
        df.columns.get_loc(f"ndcg@{cfg.n}") + 1, f"delta_ndcg@{cfg.n}", df[f"ndcg@{cfg.n}"] - df["mode"].map(base)
    )
    return df.reset_index(drop=True)


def _sweep_batch(
    steerer: Steerer,
    x: sp.csr_matrix,
    h: sp.csr_matrix,
    targets: np.ndarray,
    grids: dict[str, list[float]],
    cfg: SweepConfig,
) -> dict[tuple[str, float], dict[str, float]]:
    model = steerer.model
    n_users = x.shape[0]
    weights = np.zeros((n_users, len(steerer.vocabulary)))
    weights[np.arange(n_users), targets] = cfg.beta
    has_target = steerer.on_target_rows(weights)  # (n_users, n_items)
    held = h.toarray() > 0
    seen = x.toarray() > 0
    rel = np.where(held, 1.0, np.where(has_target, cfg.reli, 0.0))
    rel[seen] = 0.0
    latent = steerer.latent
    c_t = z_held = None
    if latent:
        c_t = steerer.target_points(weights)
        z_held = model.encode(h).astype(np.float64)
    std = steerer.steer(x, weights, "standard", alpha=0.0, k=cfg.k, n_rank=cfg.n)
    std_top = std.top
    disc = 1.0 / np.log2(np.arange(2, cfg.n + 2))
    n_rel = held.sum(axis=1)
    idcg = np.array([disc[: min(int(r), cfg.n)].sum() for r in n_rel])
    out = {}
    for mode, grid in grids.items():
        for alpha in grid:
            r = std if mode == "standard" else steerer.steer(x, weights, mode, alpha=alpha, k=cfg.k, n_rank=cfg.n)
            top, point = r.top, r.point
            k_top = top[:, : cfg.k]
            tgt_k = np.take_along_axis(has_target, k_top, axis=1)
            held_k = np.take_along_axis(held, k_top, axis=1)
            hits_n = np.take_along_axis(held, top, axis=1).astype(np.float64)
            dcg = (hits_n * disc[: hits_n.shape[1]]).sum(axis=1)
            sums = {
                "users": float(n_users),
                f"ndcg_graded@{cfg.n}": float(_graded_ndcg(top, rel, cfg.n).sum()),
                f"ndcg@{cfg.n}": float(np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0).sum()),
                f"share@{cfg.k}": float(tgt_k.mean(axis=1).sum()),
                f"hits_heldout@{cfg.k}": float(held_k.sum()),
                f"hits_target@{cfg.k}": float((tgt_k & ~held_k).sum()),
                f"neither@{cfg.k}": float((~tgt_k & ~held_k).sum()),
                f"jaccard@{cfg.k}": float(_row_sets_jaccard(k_top, std_top[:, : cfg.k]).sum()),
            }
            if latent:
                if point is None:
                    point = std.point
                sums["dist_centroid"] = float(np.linalg.norm(point - c_t, axis=1).sum())
                sums["dist_heldout"] = float(np.linalg.norm(point - z_held, axis=1).sum())
            out[(mode, alpha)] = sums
    return out


def alpha_to_reach(sweep: pd.DataFrame, share: float, k: int = 20) -> dict[str, float | None]:
    """Per mode, the smallest swept alpha whose mean share@k reaches ``share`` (None if none does)."""
    out: dict[str, float | None] = {}
    for mode, g in sweep.groupby("mode", sort=False):
        hit = g[g[f"share@{k}"] >= share]
        out[mode] = float(hit["alpha"].min()) if len(hit) else None
    return out


def tradeoff_figure(sweeps: Mapping[str, pd.DataFrame], *, k: int = 20, n: int = 100, title: str = ""):
    """Plotly figure: target-tag share@k (x) vs held-out NDCG@n (y), one curve per (model, mode).

    ``sweeps`` maps a model label to its :func:`steering_sweep` table. One model: one panel. Several:
    one panel per model (shared axes, at most three across), each mode in the same colour and dash
    everywhere, so a mode's cost can be compared across models at a glance; traces are named
    ``"<model>: <mode>"``. Markers show alpha and the change in NDCG on hover.
    """
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dash = {"standard": "dot", "postfilter": "dash", "tune": "solid", "tune+post": "dashdot"}
    colour = dict(zip(MODES, px.colors.qualitative.D3, strict=False))
    labels = list(sweeps)
    cols = min(len(labels), 3) or 1
    rows = max(1, -(-len(labels) // cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        shared_xaxes=True,
        shared_yaxes=True,
        subplot_titles=labels if len(labels) > 1 else None,
        horizontal_spacing=0.04,
        vertical_spacing=0.12 if rows > 1 else 0.0,
    )
    shown: set[str] = set()
    for i, label in enumerate(labels):
        df = sweeps[label]
        for mode, g in df.groupby("mode", sort=False):
            if mode == "standard":
                continue
            name = f"{label}: {mode}" if len(labels) > 1 else mode
            fig.add_trace(
                go.Scatter(
                    x=g[f"share@{k}"],
                    y=g[f"ndcg@{n}"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=mode,
                    showlegend=len(labels) == 1,
                    line={"dash": dash.get(mode, "solid"), "color": colour.get(mode)},
                    customdata=np.stack([g["alpha"], g[f"delta_ndcg@{n}"]], axis=1),
                    hovertemplate=(
                        f"{name}<br>alpha %{{customdata[0]:.2f}}<br>target share@{k} %{{x:.2f}}"
                        f"<br>NDCG@{n} %{{y:.3f}} (Δ %{{customdata[1]:+.3f}})<extra></extra>"
                    ),
                ),
                row=i // cols + 1,
                col=i % cols + 1,
            )
            shown.add(mode)
    if len(labels) > 1:  # one legend entry per mode (colour and dash are per mode); hover names the model
        for mode in (m for m in MODES if m in shown):
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="lines+markers",
                    name=mode,
                    legendgroup=mode,
                    line={"dash": dash.get(mode, "solid"), "color": colour.get(mode)},
                    hoverinfo="skip",
                )
            )
    fig.update_xaxes(title_text=f"target-tag share of the top {k}", row=rows)
    fig.update_yaxes(title_text=f"held-out NDCG@{n}", col=1)
    fig.update_layout(
        title=title or "Steering trade-off",
        template="plotly_white",
        legend_title="mode",
        width=max(900, 380 * cols),
        height=420 * rows + 80,
    )
    return fig


#: Seconds a PNG export may take before it is abandoned (kaleido drives a headless Chromium, which
#: has been seen to hang on a heavily loaded machine).
PNG_TIMEOUT_S = 120

_PNG_SCRIPT = """
import sys
import plotly.io as pio
fig = pio.from_json(sys.stdin.read())
sys.stdout.buffer.write(fig.to_image(format="png", scale=1))
"""


def figure_png(fig, timeout_s: float | None = None) -> bytes:
    """PNG bytes of a plotly figure, rendered by kaleido in a child process that is killed on timeout.

    Raises RuntimeError (with kaleido's message) when there is no engine, or TimeoutError.
    """
    import os
    import signal
    import subprocess
    import sys

    timeout_s = PNG_TIMEOUT_S if timeout_s is None else timeout_s
    env = dict(os.environ)
    if os.path.exists("/usr/bin/chromium") and not env.get("BROWSER_PATH"):
        env["BROWSER_PATH"] = "/usr/bin/chromium"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PNG_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # kaleido's browser too: the whole group is killed on timeout
    )
    try:
        out, err = proc.communicate(fig.to_json().encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"PNG export took more than {timeout_s:g} s and was stopped") from None
    if proc.returncode != 0 or not out.startswith(b"\x89PNG"):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"kaleido could not render the figure: {last[0]}")
    return out


def write_figure(fig, stem: str) -> list[str]:
    """Write ``stem.html`` and, where a static-image engine works (kaleido + Chromium), ``stem.png``."""
    import logging

    from ..io import atomic_write_bytes, atomic_write_text

    written = [f"{stem}.html"]
    atomic_write_text(written[0], fig.to_html(include_plotlyjs="cdn", full_html=True))
    try:
        png = figure_png(fig)
    except (RuntimeError, TimeoutError, OSError) as e:  # no kaleido, no browser, or a hang: the HTML is the figure
        logging.getLogger("recsys").warning("PNG not written (%s); the HTML figure is", e)
        return written
    atomic_write_bytes(f"{stem}.png", png)
    written.append(f"{stem}.png")
    return written


def split_of(loaded, load_dataset: Callable[[str], object]):
    """The strong-generalization split a registry model was trained on, rebuilt and checked.

    The split is rebuilt from the manifest (data set name, split seed, users per held-out group) and
    checked against the stored training fingerprint, so a changed data set is an error, not a
    silently different evaluation.
    """
    from ..data.splits import strong_generalization_split

    manifest = loaded.manifest
    info = manifest.get("info") or {}
    split_info = info.get("split") or {}
    name = (info.get("source_dataset") or {}).get("name") or manifest["dataset"]["name"]
    seed = split_info.get("seed", info.get("split_seed"))
    if seed is None:
        raise SteeringError(f"model {loaded.model_id!r} does not record the split it was trained on")
    ds = load_dataset(name)
    split = strong_generalization_split(ds, int(seed), split_info.get("val_users"))
    if split.train.fingerprint != manifest["dataset"]["fingerprint"]:
        raise SteeringError(
            f"the data set {name!r} is not the one model {loaded.model_id!r} was trained on "
            "(training fingerprint differs); retrain the model on the current data"
        )
    return split


def test_users_of(loaded, load_dataset: Callable[[str], object]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(fold-in, held-out) of the test users of the split a registry model was trained on (:func:`split_of`)."""
    split = split_of(loaded, load_dataset)
    return split.test_foldin, split.test_holdout


def sweep_table(df: pd.DataFrame) -> str:
    """Markdown table of a sweep (rounded for reading)."""
    shown = df.copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f" and c != "alpha":
            shown[c] = shown[c].map(lambda v: f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}")
    return shown.to_markdown(index=False) if _has_tabulate() else _plain_markdown(shown)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _plain_markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the dial, swept
# ---------------------------------------------------------------------------------------------
def dial_sweep(
    steerer: Steerer,
    histories: sp.csr_matrix,
    dial: Sequence[float],
    *,
    tags: Sequence[str] | None = None,
    k: int = 20,
    modes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Every (listener, tag, mode) steered to every dial position: one row per target with the share got.

    Columns: ``listener, tag, mode, target, share, status, alpha, step``. One batched
    :meth:`Steerer.steer` per (tag, mode) over all listeners x dial positions.
    """
    dial = np.asarray(dial, dtype=np.float64)
    histories = sp.csr_matrix(histories)
    n_users = histories.shape[0]
    tags = list(steerer.steerable_tags if tags is None else tags)
    modes = [m for m in (modes or MODES) if m != "standard" and (steerer.latent or m not in LATENT_MODES)]
    rows = np.repeat(np.arange(n_users), len(dial))
    xs = histories[rows]
    targets = np.tile(dial, n_users)
    frames = []
    for tag in tags:
        w = np.zeros((len(rows), len(steerer.vocabulary)))
        w[:, steerer.vocabulary.index(tag)] = 1.0
        for mode in modes:
            r = steerer.steer(xs, w, mode, share=targets, k=k)
            frames.append(
                pd.DataFrame(
                    {
                        "listener": rows,
                        "tag": tag,
                        "mode": mode,
                        "target": targets,
                        "share": r.count / k,
                        "status": r.status.astype(str),
                        "alpha": r.alpha,
                        "step": np.nan if r.step is None else r.step,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def dial_report(sweep: pd.DataFrame, tolerance: float = 0.05) -> dict[str, float]:
    """Counts of a :func:`dial_sweep`: cases, how many are on the dial where reachable, monotonicity breaks."""
    reach = sweep[sweep["status"] == "reached"]
    ordered = sweep.sort_values(["listener", "tag", "mode", "target"])
    drops = ordered.groupby(["listener", "tag", "mode"], sort=False)["share"].apply(
        lambda s: int((s.diff() < -1e-12).sum())
    )
    return {
        "cases": len(sweep),
        "reached": len(reach),
        "on target (±tol) where reached": float((np.abs(reach["share"] - reach["target"]) <= tolerance + 1e-9).mean()),
        "ceiling": int((sweep["status"] == "ceiling").sum()),
        "floor": int((sweep["status"] == "floor").sum()),
        "monotonicity breaks": int(drops.sum()),
    }


def incomplete_tags_figure(summary: pd.DataFrame):
    """Plotly bars: tag recall per mode (left) and its paired difference to the postfilter with CI (right)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("tag recall (complete tags)", "Δ tag recall vs postfilter (95 % CI)")
    )
    fig.add_trace(go.Bar(x=summary["mode"], y=summary["tag recall"], name="tag recall", showlegend=False), 1, 1)
    delta = summary["Δ tag recall vs postfilter"]
    fig.add_trace(
        go.Bar(
            x=summary["mode"],
            y=delta,
            name="Δ vs postfilter",
            showlegend=False,
            marker_color=["#2ca02c" if lo > 0 else "#d62728" if hi < 0 else "#7f7f7f"
                          for lo, hi in zip(summary["CI low"], summary["CI high"], strict=True)],
            error_y={"type": "data", "symmetric": False, "array": summary["CI high"] - delta,
                     "arrayminus": delta - summary["CI low"]},
        ),
        1,
        2,
    )  # fmt: skip
    fig.update_layout(template="plotly_white", height=320, margin={"t": 40, "b": 10})
    return fig
