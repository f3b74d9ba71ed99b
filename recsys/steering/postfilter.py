"""Postfilter: tilt a model's probabilities toward items carrying the chosen tags.

``p'_i = p_i * b_i(alpha)`` with ``b_i(alpha) = mean over the chosen tags t that item i has of
(1 + beta_t)^alpha`` (1 for items with none): seed 000's postfilter. With complete tags this tilt is
the list closest to ``p`` (minimum KL) for a given tag mass, which is why it is the yardstick every
latent mode is measured against.

Ranking is done in log space, ``log p_i + log b_i(alpha)``: a peaked softmax (the flow's) leaves
most items with ``p_i`` that underflow to 0 in float64, and ``0 * b`` can never surface, whatever
alpha. In log space every item stays reachable, so the postfilter reaches every share the
catalogue allows (:func:`solve_postfilter`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

#: Floor of log-probabilities (a min-max normalised minimum is exactly 0; log 0 would never move).
_LOG_FLOOR = -690.0


def to_probabilities(scores: np.ndarray, score_kind: str) -> np.ndarray:
    """Scores as the model's probabilities (float64, row-wise): softmax, sigmoid or min-max."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if score_kind == "softmax":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if score_kind == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * s))  # overflow-free sigmoid
    lo, hi = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
    return (s - lo) / np.where(hi > lo, hi - lo, 1.0)


def to_log_probabilities(scores: np.ndarray, score_kind: str) -> np.ndarray:
    """``log`` of :func:`to_probabilities`, computed without underflow (same ranking, float64)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if score_kind == "softmax":
        shifted = s - s.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if score_kind == "sigmoid":
        return -np.logaddexp(0.0, -s)
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(to_probabilities(s, score_kind)), _LOG_FLOOR)


def log_tag_boost(tag_matrix: sp.csr_matrix, tag_cols: np.ndarray, betas: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """(len(alphas), n_items): ``log b_i(alpha)``, exact for any alpha (0 for items without a chosen tag)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    sel = sp.csc_matrix(tag_matrix[:, tag_cols], dtype=np.float64)  # (n_items, T)
    has = sel.toarray() > 0  # T is a handful of tags
    count = has.sum(axis=1)
    log_l = np.log1p(np.asarray(betas, dtype=np.float64))
    out = np.zeros((len(alphas), tag_matrix.shape[0]))
    if not has.any():
        return out
    if np.allclose(log_l, log_l[0]):  # one weight: the mean of equal factors is the factor
        return alphas[:, None] * log_l[0] * (count > 0)[None, :]
    terms = alphas[:, None, None] * log_l[None, None, :] + np.where(has, 0.0, -np.inf)[None]  # (A, I, T)
    top = terms.max(axis=2, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # items with none of the tags: log 0, replaced below
        lse = top[..., 0] + np.log(np.exp(terms - top).sum(axis=2))
    return np.where(count > 0, lse - np.log(np.maximum(count, 1)), 0.0)


def target_count(share: float, k: int) -> int:
    """Items of a ``k`` list that a target ``share`` asks for: the nearest whole number (0..k)."""
    return int(min(max(round(float(share) * k), 0), k))


def count_on_target(log_scores: np.ndarray, on_target: np.ndarray, k: int) -> np.ndarray:
    """(n,) how many of each row's top ``k`` (by ``log_scores``, -inf excluded) carry a chosen tag.

    ``on_target``: (n_items,) for every row alike, or (n, n_items) per row.
    """
    k = min(k, log_scores.shape[1])
    top = np.argpartition(-log_scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(log_scores, top, axis=1)
    mask = np.broadcast_to(on_target, log_scores.shape)
    return (np.take_along_axis(mask, top, axis=1) & np.isfinite(vals)).sum(axis=1)


def solve_postfilter(
    log_p: np.ndarray,
    on_target: np.ndarray,
    log_boost_of: Callable[[np.ndarray], np.ndarray],
    counts: np.ndarray,
    k: int,
    *,
    uniform_log_factor: np.ndarray | None = None,
    alpha_max: float = 1e8,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest alpha whose postfiltered top ``k`` holds ``counts[row]`` on-target items.

    ``log_p`` (n, n_items): log-probabilities, excluded items (history) at -inf. ``on_target``
    (n, n_items) bool. ``log_boost_of(alphas (n,)) -> (n, n_items)`` gives row r's ``log b(alphas[r])``.
    Returns ``(alpha, achieved_count)``; a row whose target exceeds what its catalogue allows gets
    the alpha of its largest reachable count.

    The count of on-target items in the top ``k`` never decreases in alpha (boosts only lift
    on-target items past fixed off-target ones), so the answer is a threshold. With one tag weight
    (``uniform_log_factor = log(1 + beta)``) it is exact: the ``m``-th best on-target item must pass
    the ``(k - m + 1)``-th best off-target one, ``alpha_m = (u_{k-m+1} - t_m) / log(1 + beta)``
    (``uniform_log_factor``: (n,) ``log(1 + beta)`` per row).
    Otherwise a vectorised bisection over all rows at once (60 halvings: alpha to ~1e-14 relative).
    """
    n, n_items = log_p.shape
    on_target = np.broadcast_to(on_target, log_p.shape)
    finite = np.isfinite(log_p)
    avail_on = (finite & on_target).sum(axis=1)
    avail_off = (finite & ~on_target).sum(axis=1)
    k_eff = np.minimum(k, avail_on + avail_off)
    # the fewest on-target items any alpha leaves in the list (all off-target ones kept) and the most
    m = np.clip(np.asarray(counts, dtype=np.int64), k_eff - avail_off, np.minimum(avail_on, k_eff))
    m = np.maximum(m, 0)
    if uniform_log_factor is not None:
        on_sorted = -np.sort(-np.where(on_target, log_p, -np.inf), axis=1)
        off_sorted = -np.sort(-np.where(on_target, -np.inf, log_p), axis=1)
        rows = np.arange(n)
        t_m = on_sorted[rows, np.maximum(m - 1, 0)]
        j = k_eff - m  # the off-target item the m-th on-target one must pass (0-based index k-m)
        u = np.where(j < off_sorted.shape[1], off_sorted[rows, np.minimum(j, n_items - 1)], -np.inf)
        gap = np.where((m > 0) & np.isfinite(u), u - t_m, -np.inf)
        alpha = np.maximum(gap, 0.0) / np.asarray(uniform_log_factor, dtype=np.float64)
        # strictly past the tie, so the threshold item is in (ties in log_p are broken by index)
        alpha = np.where(alpha > 0, np.nextafter(alpha * (1 + 1e-12), np.inf) + 1e-12, 0.0)
    else:
        lo = np.zeros(n)
        hi = np.ones(n)
        for _ in range(64):  # doubling: find a reaching upper bound
            got = count_on_target(log_p + log_boost_of(hi), on_target, k)
            short = got < m
            if not short.any() or hi.max() >= alpha_max:
                break
            hi = np.where(short, hi * 2.0, hi)
        base = count_on_target(log_p, on_target, k)
        done = base >= m
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            got = count_on_target(log_p + log_boost_of(mid), on_target, k)
            hi = np.where(got >= m, mid, hi)
            lo = np.where(got >= m, lo, mid)
        alpha = np.where(done, 0.0, hi)
    achieved = count_on_target(log_p + log_boost_of(alpha), on_target, k)
    return alpha, achieved
