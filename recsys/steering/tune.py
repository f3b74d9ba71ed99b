"""Tune: move the person's latent point toward the chosen tags' centroids and decode it.

``z' = z + alpha * (sum_t w_t c_t - sum_t u_t c_t)`` with ``w`` the chosen tags' normalised weights
and ``u`` the person's own tag distribution (tag occurrences among the picks, over tags with a
centroid); when the picks carry none of those tags, ``sum_t u_t c_t`` is ``z`` itself, so
``alpha = 1`` lands on the target. Cold start (no picks): ``z' = zbar + alpha (target - zbar)`` from
the average training user ``zbar``; ``alpha = 1`` decodes the tag centroids themselves.

Decoding a moved point is not monotone in alpha (the list can gain tagged items and lose them
again), so :func:`solve_trajectory` looks for the *first* alpha along the path that reaches the
target count: grids of points decoded in one batch, refined around the first hit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .postfilter import count_on_target

#: Largest tune strength the dial searches (beyond it decoded points leave the data's region and
#: lists stop resembling anybody's taste).
TUNE_ALPHA_MAX = 4.0
#: Points per grid of :func:`solve_trajectory`, and refinement passes after the first grid.
GRID_POINTS = 9
REFINE_PASSES = 2
#: Extra passes for rows whose first hit overshoots the count (each decodes only those rows).
OVERSHOOT_PASSES = 4


def solve_trajectory(
    start: np.ndarray,
    direction: np.ndarray,
    decode_log_p: Callable[[np.ndarray], np.ndarray],
    exclude_mask: np.ndarray | None,
    on_target: np.ndarray,
    counts: np.ndarray,
    k: int,
    *,
    alpha_max: float | np.ndarray = TUNE_ALPHA_MAX,
    grid_points: int = GRID_POINTS,
    refine_passes: int = REFINE_PASSES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the first alpha in [0, alpha_max] along ``start + alpha * direction`` reaching ``counts``.

    ``start``, ``direction``: (n, d). ``decode_log_p(points (m, d)) -> (m, n_items)`` log-probabilities.
    ``exclude_mask`` (n, n_items) bool: items never listed (history); ``on_target`` (n, n_items)
    bool. Returns ``(alpha, achieved, reached)``: where a row never reaches its count, ``alpha`` is
    the first alpha of its best count (its ceiling) and ``achieved`` that count. Every pass is one batched decode of
    ``n x grid_points`` points; a pass narrows each row's bracket ``(last miss, first hit]`` to one
    grid step, so three passes resolve alpha to ``alpha_max / 8^3`` (~8e-3 at the default).
    """
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    n = start.shape[0]
    counts = np.asarray(counts, dtype=np.int64)
    lo = np.zeros(n)
    hi = np.broadcast_to(np.asarray(alpha_max, dtype=np.float64), (n,)).copy()
    frac = np.linspace(0.0, 1.0, grid_points)

    def counts_on(grid: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:  # grid (m, G) -> (m, G)
        rows = np.arange(n) if rows is None else rows
        m = len(rows)
        pts = start[rows, None, :] + grid[:, :, None] * direction[rows, None, :]
        log_p = decode_log_p(pts.reshape(m * grid.shape[1], -1)).reshape(m, grid.shape[1], -1)
        if exclude_mask is not None:
            log_p = np.where(exclude_mask[rows][:, None, :], -np.inf, log_p)
        targets = np.broadcast_to(on_target, (n, log_p.shape[2]))[rows]
        mask = np.repeat(targets, grid.shape[1], axis=0)
        return count_on_target(log_p.reshape(m * grid.shape[1], -1), mask, k).reshape(m, -1)

    grid = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
    got = counts_on(grid)
    reached = (got >= counts[:, None]).any(axis=1)
    best = got.max(axis=1)
    # unreachable rows aim at their best count (the ceiling): the first alpha that attains it
    aim = np.where(reached, counts, best)
    first = np.argmax(got >= aim[:, None], axis=1)
    alpha = grid[np.arange(n), first]
    achieved = got[np.arange(n), first]
    for _ in range(refine_passes):
        need = first > 0
        if not need.any():
            break
        lo = np.where(need, grid[np.arange(n), np.maximum(first - 1, 0)], alpha)
        grid = lo[:, None] + (alpha - lo)[:, None] * frac[None, :]
        got = counts_on(grid)
        hit = got >= aim[:, None]
        hit[:, -1] = True  # the bracket's right end is the earlier hit (decoding is deterministic)
        first = np.where(need, np.argmax(hit, axis=1), 0)
        alpha = np.where(need, grid[np.arange(n), first], alpha)
        achieved = np.where(need, got[np.arange(n), first], achieved)
    # A row whose first hit overshoots its count (two songs entered within one grid step) narrows
    # its bracket further, decoding only those rows, until the step is tiny or the count is exact.
    last_miss = np.where(first > 0, grid[np.arange(n), np.maximum(first - 1, 0)], alpha)
    for _ in range(OVERSHOOT_PASSES):
        rows = np.flatnonzero((achieved > aim) & (alpha - last_miss > 1e-9))
        if rows.size == 0:
            break
        sub = last_miss[rows, None] + (alpha - last_miss)[rows, None] * frac[None, :]
        got = counts_on(sub, rows)
        hit = got >= aim[rows, None]
        hit[:, -1] = True
        pick = np.argmax(hit, axis=1)
        last_miss[rows] = np.where(pick > 0, sub[np.arange(rows.size), np.maximum(pick - 1, 0)], last_miss[rows])
        alpha[rows] = sub[np.arange(rows.size), pick]
        achieved[rows] = got[np.arange(rows.size), pick]
    return alpha, achieved, reached
