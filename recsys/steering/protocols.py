"""Matched-share steering evaluations: where does the latent space pay?

Every mode is set by the dial to the same target share of the top ``k`` (0.3 / 0.5 / 0.7), so modes
are compared at equal tag mass, not at equal alpha. Per test user and mode:

* ``share``: visible share of the top ``k`` (the tags the steering machinery sees);
* ``true share``: share by the complete tags;
* ``tag recall``: recall@``n`` of the user's held-out items that carry the target tag (complete tags),
  ``hits / min(n, |held-out target items|)`` (and ``tag recall@k``, the same within the dial's list);
* ``NDCG@n``: held-out NDCG@n (binary relevance);
* ``jaccard``: overlap of the top ``k`` with the standard top ``k``;
* ``taste``: cosine between the tag profile of the top ``k`` and of the fold-in, both without the
  target tag (does the rest of the list still look like the person?).

Protocols (issue 12):

* **E1** (:func:`target_random`): a random steerable tag that is not the user's dominant one.
* **E2** (:func:`target_heldout`): the tag the held-out items carry more than the fold-in
  (largest share difference; users with none are left out).
* **E3**: E2's users and tags, but the steering machinery (vocabulary, centroids, boost, share) sees
  only the tags left after :func:`hide_tags` removed 50 % or 80 % of the item-tag entries,
  uniformly or biased toward less popular items; recall and true share use the complete tags.
* **E5** (:func:`cold_start_tags`): tags only, no picks: the tags a user's fold-in carries most,
  decoded tag centroids vs popularity postfiltered to the same share vs tag-filtered popularity.

Differences against the postfilter come with a paired bootstrap over users (:func:`bootstrap_ci`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..metrics import ndcg_at_k, recall_at_k
from .calibration import LATENT_STEP_GRID, StepRule, latent_inputs, latent_start
from .evaluation import choose_targets, sample_test_users
from .steerer import LATENT_MODES, Steerer
from .tags import SteeringError, binary, normalised_item_tags, tag_counts

#: How strongly the popularity-biased hiding prefers rare items: entry weight ``(1 + pop)^-BIAS_POWER``.
BIAS_POWER = 1.0
HIDING_BIASES: tuple[str, ...] = ("uniform", "popularity")


@dataclass(frozen=True)
class ProtocolConfig:
    """Knobs of the matched-share evaluations."""

    n_users: int = 300
    shares: tuple[float, ...] = (0.3, 0.5, 0.7)
    k: int = 20  # the dial's list (share, Jaccard, taste)
    n: int = 100  # NDCG and tag recall cut-off
    beta: float = 1.0
    seed: int = 0
    n_boot: int = 1000
    batch_size: int = 100
    modes: tuple[str, ...] = ("postfilter", "tune", "tune+post")


# ---------------------------------------------------------------------------------------------
# incomplete tags
# ---------------------------------------------------------------------------------------------
def hide_tags(
    items: pd.DataFrame, fraction: float, *, bias: str = "uniform", popularity: np.ndarray | None = None, seed: int = 0
) -> pd.DataFrame:
    """A copy of ``items`` with ``fraction`` of its (item, tag) entries removed.

    ``bias="uniform"``: every entry alike. ``bias="popularity"``: entries of less popular items are
    removed first, each drawn with weight ``(1 + popularity_i)^-BIAS_POWER`` without replacement
    (real catalogues miss tags on the long tail). Tags are normalised first, so what is hidden is
    exactly what steering would have seen.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if bias not in HIDING_BIASES:
        raise ValueError(f"bias must be one of {list(HIDING_BIASES)}, got {bias!r}")
    tags = normalised_item_tags(items)
    owner = np.repeat(np.arange(len(tags)), [len(t) for t in tags])
    n_hide = int(round(fraction * len(owner)))
    rng = np.random.default_rng(seed)
    if bias == "uniform":
        hidden = rng.choice(len(owner), n_hide, replace=False)
    else:
        if popularity is None:
            raise ValueError("popularity-biased hiding needs the items' popularity")
        w = (1.0 + np.asarray(popularity, dtype=np.float64)[owner]) ** -BIAS_POWER
        keys = np.log(rng.random(len(owner))) / w  # weighted sampling without replacement (Efraimidis-Spirakis)
        hidden = np.argsort(-keys)[:n_hide]
    keep = np.ones(len(owner), dtype=bool)
    keep[hidden] = False
    flat = [t for ts in tags for t in ts]
    out_tags: list[list[str]] = [[] for _ in tags]
    for e in np.flatnonzero(keep):
        out_tags[owner[e]].append(flat[e])
    out = items.copy()
    out["tags"] = [tuple(t) for t in out_tags]
    return out


def visible_steerer(
    full: Steerer, train_histories: sp.csr_matrix, items: pd.DataFrame, latent: np.ndarray | None
) -> Steerer:
    """A steerer of the same model built from other tags (``items``), over the same training points."""
    return Steerer.from_training(
        full.model, train_histories, items, latent=latent, step_rule=full.step_rule, min_users=_min_users(full)
    )


def _min_users(steerer: Steerer) -> int:
    return steerer.centroids.min_users if steerer.centroids is not None else 20


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def target_random(steerer: Steerer, foldin: sp.csr_matrix, seed: int) -> list[str | None]:
    """E1: per user, a random steerable tag that is not their dominant tag (the alpha sweeps' draw)."""
    return [steerer.vocabulary[int(c)] for c in choose_targets(steerer, foldin, seed)]


def target_heldout(steerer: Steerer, foldin: sp.csr_matrix, holdout: sp.csr_matrix) -> list[str | None]:
    """E2: per user, the steerable tag whose share among held-out items most exceeds its fold-in share."""
    cols = np.array([steerer.vocabulary.index(t) for t in steerer.steerable_tags])

    def shares(x: sp.csr_matrix) -> np.ndarray:
        c = tag_counts(x, steerer.tag_matrix)[:, cols]
        return c / np.maximum(np.diff(sp.csr_matrix(x).indptr), 1)[:, None]

    gain = shares(holdout) - shares(foldin)
    best = gain.argmax(axis=1)
    ok = gain[np.arange(len(best)), best] > 0
    return [steerer.vocabulary[int(cols[b])] if o else None for b, o in zip(best, ok, strict=True)]


# ---------------------------------------------------------------------------------------------
# per-user metrics
# ---------------------------------------------------------------------------------------------
def _ndcg(top: np.ndarray, held: np.ndarray, n: int) -> np.ndarray:
    """NDCG@n of ranked lists against a dense held-out mask (0 for users with nothing held out)."""
    n_held = held.sum(axis=1)
    out = ndcg_at_k(np.take_along_axis(held, top[:, :n], axis=1), np.maximum(n_held, 1), n)
    return np.where(n_held > 0, out, 0.0)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def list_metrics(
    top: np.ndarray,
    held: np.ndarray,
    on_visible: np.ndarray,
    on_true: np.ndarray,
    std_top: np.ndarray,
    full_tags: sp.csr_matrix,
    foldin_profile: np.ndarray,
    target_cols: np.ndarray,
    k: int,
    n: int,
) -> dict[str, np.ndarray]:
    """Per-user metrics of ranked lists ``top`` (n_users, >= n) (see the module docstring)."""
    rows = np.arange(top.shape[0])
    k_top = top[:, :k]
    held_target = held & on_true
    n_ht = held_target.sum(axis=1)
    hits_t = np.take_along_axis(held_target, top[:, :n], axis=1).sum(axis=1)
    hits_k = np.take_along_axis(held_target, k_top, axis=1).sum(axis=1)
    profile = np.asarray(full_tags[k_top.ravel()].todense()).reshape(top.shape[0], k, -1).sum(axis=1)
    profile[rows, target_cols] = 0.0
    own = foldin_profile.copy()
    own[rows, target_cols] = 0.0
    jac = np.array(
        [len(set(a) & set(b)) / max(len(set(a) | set(b)), 1) for a, b in zip(k_top, std_top[:, :k], strict=True)]
    )
    return {
        "share": np.take_along_axis(on_visible, k_top, axis=1).mean(axis=1),
        "true share": np.take_along_axis(on_true, k_top, axis=1).mean(axis=1),
        "tag recall": np.divide(hits_t, np.minimum(n_ht, n), out=np.zeros(len(rows)), where=n_ht > 0),
        f"tag recall@{k}": np.divide(hits_k, np.minimum(n_ht, k), out=np.zeros(len(rows)), where=n_ht > 0),
        f"NDCG@{n}": _ndcg(top, held, n),
        "jaccard": jac,
        "taste": _cosine(profile, own),
    }


def matched_share_eval(
    full: Steerer,
    visible: Steerer,
    foldin: sp.csr_matrix,
    holdout: sp.csr_matrix,
    targets: Sequence[str | None],
    cfg: ProtocolConfig,
    *,
    latent_step: float | None = None,
    require_heldout_target: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Per-user rows (user, mode, target share, metrics) of every mode steered by ``visible`` to each share.

    Users whose target tag the visible steerer cannot steer toward (no centroid, or not in its
    vocabulary) are left out, and with ``require_heldout_target`` those who hold no held-out item
    with the target tag (``user`` keeps the row's position in ``foldin``).
    """
    modes = [m for m in ("standard", *cfg.modes) if visible.latent or m not in LATENT_MODES]
    steerable = set(visible.steerable_tags)
    full_index = {t: j for j, t in enumerate(full.vocabulary)}
    users = [u for u, t in enumerate(targets) if t is not None and t in steerable and t in full_index]
    users = np.array(users, dtype=np.int64)
    if len(users) == 0:
        return pd.DataFrame()
    foldin, holdout = sp.csr_matrix(foldin)[users], sp.csr_matrix(holdout)[users]
    tcols_full = np.array([full_index[targets[u]] for u in users])
    tcols_vis = np.array([visible.vocabulary.index(targets[u]) for u in users])
    on_true_all = full.on_target_rows(_one_hot(tcols_full, len(full.vocabulary)))
    has_held_target = ((holdout.toarray() > 0) & on_true_all).any(axis=1)
    keep = np.flatnonzero(has_held_target | (not require_heldout_target))
    users, foldin, holdout = users[keep], foldin[keep], holdout[keep]
    tcols_full, tcols_vis = tcols_full[keep], tcols_vis[keep]
    frames = []
    total = len(range(0, len(users), cfg.batch_size)) * (1 + (len(modes) - 1) * len(cfg.shares))
    done = 0
    full_tags = sp.csr_matrix(full.tag_matrix)
    for lo in range(0, len(users), cfg.batch_size):
        sl = slice(lo, lo + cfg.batch_size)
        x, h = foldin[sl], holdout[sl]
        w_vis = _one_hot(tcols_vis[sl], len(visible.vocabulary)) * cfg.beta
        on_visible = visible.on_target_rows(w_vis)
        on_true = full.on_target_rows(_one_hot(tcols_full[sl], len(full.vocabulary)))
        held = h.toarray() > 0
        profile = tag_counts(x, full.tag_matrix)
        # the standard inputs serve the postfilter at every share; the latent path serves tune and tune+post
        base = latent_inputs(visible, x, w_vis, "standard", None)
        path = latent_start(visible, x, w_vis) if visible.latent else None
        inputs = {
            m: base if m in ("standard", "postfilter") else latent_inputs(visible, x, w_vis, m, latent_step, path=path)
            for m in modes
        }
        std = visible.steer(x, w_vis, "standard", alpha=0.0, k=cfg.k, n_rank=cfg.n, inputs=base)
        done += 1
        tuned: dict[float, object] = {}
        for mode in modes:
            for share in (0.0,) if mode == "standard" else cfg.shares:
                if mode == "standard":
                    r = std
                else:
                    r = visible.steer(
                        x, w_vis, mode, share=share, k=cfg.k, n_rank=cfg.n, tune=tuned.get(share),
                        inputs=inputs[mode],
                    )  # fmt: skip
                    if mode == "tune":
                        tuned[share] = r
                    done += 1
                met = list_metrics(
                    r.top, held, on_visible, on_true, std.top, full_tags, profile, tcols_full[sl], cfg.k, cfg.n
                )
                frames.append(
                    pd.DataFrame(
                        {
                            "user": users[sl],
                            "mode": mode,
                            "target share": share if mode != "standard" else np.nan,
                            "alpha": r.alpha,
                            "reached": r.status != "ceiling",
                            **met,
                        }
                    )
                )
                if progress is not None:
                    progress(done, total)
    return pd.concat(frames, ignore_index=True)


def _one_hot(cols: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(cols), width))
    out[np.arange(len(cols)), cols] = 1.0
    return out


def bootstrap_ci(diff: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of paired per-user differences (resampling users)."""
    diff = np.asarray(diff, dtype=np.float64)
    if len(diff) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def summarise(per_user: pd.DataFrame, cfg: ProtocolConfig, metric: str = "tag recall") -> pd.DataFrame:
    """Mean metrics per (mode, target share), with ``metric``'s paired difference to the postfilter and its CI."""
    rows = []
    steered = per_user[per_user["mode"] != "standard"]
    for (mode, share), g in steered.groupby(["mode", "target share"], sort=False):
        post = steered[(steered["mode"] == "postfilter") & (steered["target share"] == share)].set_index("user")
        g = g.set_index("user")
        common = g.index.intersection(post.index)
        diff = (g.loc[common, metric] - post.loc[common, metric]).to_numpy()
        lo, hi = bootstrap_ci(diff, cfg.n_boot, cfg.seed)
        rows.append(
            {
                "mode": mode,
                "target share": share,
                "users": len(g),
                "reached": float(g["reached"].mean()),
                **{
                    c: float(g[c].mean())
                    for c in (
                        "share",
                        "true share",
                        "tag recall",
                        f"tag recall@{cfg.k}",
                        f"NDCG@{cfg.n}",
                        "jaccard",
                        "taste",
                    )
                },
                f"Δ {metric} vs postfilter": float(diff.mean()) if len(diff) else float("nan"),
                "CI low": lo,
                "CI high": hi,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# the latent step, chosen on validation users
# ---------------------------------------------------------------------------------------------
#: The rules :func:`choose_step_rule` tries (base, scale, offset); scale 0 rows are fixed steps.
STEP_RULE_GRID: tuple[StepRule, ...] = tuple(
    [StepRule(base=b, scale=0.0) for b in LATENT_STEP_GRID]
    + [
        StepRule(base=b, scale=s, offset=o)
        for b in (0.0, 0.1, 0.2)
        for s in (1.0, 2.0, 4.0)
        for o in (0.3, 0.45, 0.6, 0.75)
    ]
)


def choose_step_rule(
    full: Steerer,
    train_histories: sp.csr_matrix,
    train_items: pd.DataFrame,
    val_foldin: sp.csr_matrix,
    val_holdout: sp.csr_matrix,
    *,
    latent: np.ndarray | None = None,
    hidden: Sequence[float] = (0.5, 0.8),
    share: float = 0.5,
    ndcg_tolerance: float = 0.005,
    rules: Sequence[StepRule] = STEP_RULE_GRID,
    cfg: ProtocolConfig | None = None,
) -> tuple[StepRule, pd.DataFrame]:
    """tune+post's step rule, chosen on validation users (every mode at ``share``).

    Every fixed step of :data:`LATENT_STEP_GRID` is evaluated once per condition: complete tags with
    E2 targets (the tag the held-out items carry more) and with E1 targets (a random tag that is not
    the user's dominant one: a person asking for something new), and E2 targets with each ``hidden``
    fraction of the tags hidden uniformly (seeded). A rule then maps each user's target tag, by how
    complete it looks in that condition, to a step (snapped to the nearest evaluated one), so any
    number of rules is compared without steering again. The chosen rule has the best mean tag recall
    over the hidden conditions among rules whose complete-tag NDCG@n stays within ``ndcg_tolerance``
    of the postfilter's (step 0, which always qualifies) for both kinds of target. Returns (rule,
    table of every rule tried).
    """
    cfg = cfg or ProtocolConfig()
    if not full.latent:
        return StepRule(base=0.0), pd.DataFrame()
    scfg = ProtocolConfig(**{**cfg.__dict__, "shares": (share,), "modes": ("tune+post",)})
    x = binary(train_histories)
    z = full.model.encode(x) if latent is None else latent
    pop = np.diff(x.tocsc().indptr)
    conditions: dict = {0.0: full, "random": full}
    for h in hidden:
        conditions[h] = visible_steerer(full, x, hide_tags(train_items, h, popularity=pop, seed=cfg.seed), z)
    foldin, holdout = sample_test_users(val_foldin, val_holdout, cfg.n_users, cfg.seed)
    targets = target_heldout(full, foldin, holdout)
    random_targets = target_random(full, foldin, cfg.seed)
    steps = np.asarray(LATENT_STEP_GRID, dtype=np.float64)
    recall: dict = {}
    ndcg: dict = {}
    completeness: dict = {}
    for h, vis in conditions.items():
        cols_r, cols_n = {}, {}
        wanted = random_targets if h == "random" else targets
        for s in steps:
            frame = matched_share_eval(
                full, vis, foldin, holdout, wanted, scfg, latent_step=float(s), require_heldout_target=h != "random"
            )
            frame = frame[frame["mode"] == "tune+post"].set_index("user")
            cols_r[s], cols_n[s] = frame["tag recall"], frame[f"NDCG@{cfg.n}"]
        recall[h], ndcg[h] = pd.DataFrame(cols_r), pd.DataFrame(cols_n)
        index = {t: j for j, t in enumerate(vis.centroids.tags)}
        completeness[h] = pd.Series(
            [vis.tag_completeness[index[wanted[u]]] for u in recall[h].index], index=recall[h].index
        )

    def mean_at(table: pd.DataFrame, f: pd.Series, rule: StepRule) -> float:
        snapped = np.abs(rule.steps(f.to_numpy())[:, None] - steps[None, :]).argmin(axis=1)
        return float(table.to_numpy()[np.arange(len(table)), snapped].mean())

    floor = float(ndcg[0.0][0.0].mean()) - ndcg_tolerance
    floor_random = float(ndcg["random"][0.0].mean()) - ndcg_tolerance
    rows = []
    for rule in rules:
        rows.append(
            {
                "rule": rule.describe(),
                "base": rule.base,
                "scale": rule.scale,
                "offset": rule.offset,
                f"NDCG@{cfg.n} (complete)": mean_at(ndcg[0.0], completeness[0.0], rule),
                f"NDCG@{cfg.n} (complete, random tag)": mean_at(ndcg["random"], completeness["random"], rule),
                "tag recall (complete)": mean_at(recall[0.0], completeness[0.0], rule),
                **{f"tag recall (hidden {h:g})": mean_at(recall[h], completeness[h], rule) for h in hidden},
            }
        )
    table = pd.DataFrame(rows)
    hidden_cols = [f"tag recall (hidden {h:g})" for h in hidden]
    table["tag recall (hidden, mean)"] = table[hidden_cols].mean(axis=1)
    table["within budget"] = (table[f"NDCG@{cfg.n} (complete)"] >= floor) & (
        table[f"NDCG@{cfg.n} (complete, random tag)"] >= floor_random
    )
    ok = table[table["within budget"]]
    best = ok.loc[ok["tag recall (hidden, mean)"].idxmax()] if len(ok) else table.iloc[0]
    rule = StepRule(base=float(best["base"]), scale=float(best["scale"]), offset=float(best["offset"]))
    return rule, table.sort_values("tag recall (hidden, mean)", ascending=False).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# E5: tags only
# ---------------------------------------------------------------------------------------------
def cold_start_tags(
    steerer: Steerer, foldin: sp.csr_matrix, holdout: sp.csr_matrix, cfg: ProtocolConfig, *, n_tags: int = 3
) -> pd.DataFrame:
    """E5: per user, lists from the ``n_tags`` steerable tags their fold-in carries most (weights by
    count), with no picks: ``centroids`` (decode the weighted tag centroids), ``postfiltered
    popularity`` (popularity postfiltered to the centroid list's own share), ``centroids,
    tag-filtered`` (the decoded centroids postfiltered until the top ``n`` all carry a chosen tag:
    tune+post's cold start at share 1), ``tag-filtered popularity`` (the same for popularity) and
    ``popularity``. Fold-in items are not ranked (as in every protocol here); relevance is the
    held-out items.
    """
    if not steerer.latent:
        raise SteeringError("tags-only cold start from centroids needs a latent model with tag centroids")
    foldin, holdout = sample_test_users(foldin, holdout, cfg.n_users, cfg.seed)
    cols = np.array([steerer.vocabulary.index(t) for t in steerer.steerable_tags])
    counts = tag_counts(foldin, steerer.tag_matrix)[:, cols]
    order = np.argsort(-counts, axis=1, kind="stable")[:, :n_tags]
    weights = np.zeros((foldin.shape[0], len(steerer.vocabulary)))
    for u in range(foldin.shape[0]):
        for j in order[u]:
            if counts[u, j] > 0:
                weights[u, cols[j]] = counts[u, j] / counts[u, order[u, 0]]
    ok = weights.sum(axis=1) > 0
    foldin, holdout, weights = foldin[ok], holdout[ok], weights[ok]
    held = holdout.toarray() > 0
    on_t = steerer.on_target_rows(weights)
    n = foldin.shape[0]
    cent = steerer.steer(None, weights, "tune", alpha=np.ones(n), k=cfg.k, n_rank=cfg.n, exclude=foldin)
    cent_share = np.take_along_axis(on_t, cent.top[:, : cfg.k], axis=1).mean(axis=1)
    post = steerer.steer(None, weights, "postfilter", share=cent_share, k=cfg.k, n_rank=cfg.n, exclude=foldin)
    popular = steerer.steer(None, weights, "standard", alpha=0.0, k=cfg.k, n_rank=cfg.n, exclude=foldin)
    filt = steerer.steer(None, weights, "postfilter", share=1.0, k=cfg.n, n_rank=cfg.n, exclude=foldin)
    cent_filt = steerer.steer(None, weights, "tune+post", share=1.0, k=cfg.n, n_rank=cfg.n, exclude=foldin)
    frames = []
    for name, r in (
        ("centroids", cent),
        ("postfiltered popularity", post),
        ("centroids, tag-filtered", cent_filt),
        ("tag-filtered popularity", filt),
        ("popularity", popular),
    ):
        frames.append(
            pd.DataFrame(
                {
                    "user": np.arange(n),
                    "method": name,
                    f"NDCG@{cfg.n}": _ndcg(r.top, held, cfg.n),
                    f"recall@{cfg.k}": _recall(r.top, held, cfg.k),
                    f"share@{cfg.k}": np.take_along_axis(on_t, r.top[:, : cfg.k], axis=1).mean(axis=1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _recall(top: np.ndarray, held: np.ndarray, k: int) -> np.ndarray:
    """Recall@k of ranked lists against a dense held-out mask (0 for users with nothing held out)."""
    n_held = held.sum(axis=1)
    out = recall_at_k(np.take_along_axis(held, top[:, :k], axis=1), np.maximum(n_held, 1), k)
    return np.where(n_held > 0, out, 0.0)


# ---------------------------------------------------------------------------------------------
# everything for one model
# ---------------------------------------------------------------------------------------------
#: (hidden fraction, bias) of the incomplete-tag conditions; (0, "none") is complete tags.
CONDITIONS: tuple[tuple[float, str], ...] = (
    (0.0, "none"),
    (0.5, "uniform"),
    (0.5, "popularity"),
    (0.8, "uniform"),
    (0.8, "popularity"),
)


@dataclass
class ProtocolResults:
    """Per-user tables of one model: E1, E2/E3 per condition, E5, and the latent step chosen."""

    e1: pd.DataFrame
    e3: dict[tuple[float, str], pd.DataFrame]  # (hidden, bias) -> per-user rows; (0, "none") is E2
    e5: pd.DataFrame
    step_rule: StepRule
    step_table: pd.DataFrame


def run_protocols(
    steerer: Steerer,
    split,
    cfg: ProtocolConfig | None = None,
    *,
    protocols: Sequence[str] = ("e1", "e2", "e3", "e5"),
    choose_step: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ProtocolResults:
    """Run the matched-share protocols on a model's split (test users; the step on validation users).

    ``steerer`` is the model's stored steerer (complete tags); the split is the one it was trained
    on (:func:`recsys.steering.evaluation.split_of`). Hidden tags are drawn with the split's seed.
    """
    cfg = cfg or ProtocolConfig()
    say = progress or (lambda _msg: None)
    train_x = binary(split.train.interactions)
    items = split.train.items
    z = steerer.model.encode(train_x) if steerer.latent else None
    rule, step_table = steerer.step_rule, pd.DataFrame()
    if choose_step and steerer.latent:
        say("choosing tune+post's step rule on validation users")
        rule, step_table = choose_step_rule(
            steerer, train_x, items, split.val_foldin, split.val_holdout, latent=z, cfg=cfg
        )
    steerer.step_rule = rule
    foldin, holdout = sample_test_users(split.test_foldin, split.test_holdout, cfg.n_users, cfg.seed)
    e1 = pd.DataFrame()
    if "e1" in protocols:
        say("E1: random non-dominant tag")
        e1 = matched_share_eval(
            steerer,
            steerer,
            foldin,
            holdout,
            target_random(steerer, foldin, cfg.seed),
            cfg,
            require_heldout_target=False,
        )
    e3: dict[tuple[float, str], pd.DataFrame] = {}
    targets = target_heldout(steerer, foldin, holdout)
    pop = np.diff(train_x.tocsc().indptr)
    for hidden, bias in CONDITIONS:
        if (hidden == 0.0 and "e2" not in protocols) or (hidden > 0 and "e3" not in protocols):
            continue
        say(f"E{2 if hidden == 0 else 3}: hidden {hidden:g} ({bias})")
        vis = (
            steerer
            if hidden == 0
            else visible_steerer(
                steerer, train_x, hide_tags(items, hidden, bias=bias, popularity=pop, seed=cfg.seed), z
            )
        )
        e3[(hidden, bias)] = matched_share_eval(steerer, vis, foldin, holdout, targets, cfg)
    e5 = pd.DataFrame()
    if "e5" in protocols and steerer.latent:
        say("E5: tags-only cold start")
        e5 = cold_start_tags(steerer, split.test_foldin, split.test_holdout, cfg)
    return ProtocolResults(e1=e1, e3=e3, e5=e5, step_rule=rule, step_table=step_table)
