"""The dial: from a target tag share to each mode's strength, for a batch of people at once.

A person sets the share of the top ``k`` that should carry the chosen tags; the target is
``m = round(share * k)`` items (:func:`~.postfilter.target_count`). Per mode:

* **postfilter** and the postfilter of **tune+post**: the count never falls as alpha grows, so the
  smallest alpha with ``m`` on-target items is a threshold, exact in closed form for one tag weight
  (:func:`~.postfilter.solve_postfilter`). Every share the catalogue allows is reached.
* **tune**: decoded points are not monotone in alpha; the first alpha along the path that reaches
  ``m`` is found on batched grids (:func:`~.tune.solve_trajectory`), up to
  :data:`~.tune.TUNE_ALPHA_MAX`. Beyond the path's best count the mode reports its ceiling.

Both give a share that never falls as the dial rises (the smallest strength reaching a larger count
is at least the one reaching a smaller count, and each mode's list at its solved strength holds at
least the target) and lands within ``1 / (2k)`` of the dial wherever the mode can reach it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .postfilter import count_on_target, log_tag_boost, solve_postfilter, target_count, to_log_probabilities
from .tags import binary
from .tune import TUNE_ALPHA_MAX, solve_trajectory

if TYPE_CHECKING:
    from .steerer import Steerer

#: tune+post's latent step when none was chosen on validation users (the issue's measurement on
#: Last.fm 2K: a step of 0.25 before the postfilter gains tag recall with half the tags hidden and
#: ties the postfilter with complete tags).
DEFAULT_LATENT_STEP = 0.25
#: Range of latent steps (the rule's output is clipped to it), and the fixed steps the rule is chosen over.
LATENT_STEP_RANGE: tuple[float, float] = (0.0, 2.0)
LATENT_STEP_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)


@dataclass(frozen=True)
class StepRule:
    """tune+post's latent step for a tag: ``base + scale * max(0, (1 - f_t) - offset)``, in LATENT_STEP_RANGE.

    ``f_t`` is how complete the tag looks (:meth:`Steerer.tag_completeness`: the share of the items
    its centroid lifts most that carry it visibly). Complete tags leave little for the latent space to
    add, so the step stays near ``base``; a tag that misses most of its items gets a longer step. The
    three numbers are chosen on validation users with simulated hiding
    (:func:`recsys.steering.protocols.choose_step_rule`); ``scale = 0`` is a fixed step.
    """

    base: float = DEFAULT_LATENT_STEP
    scale: float = 0.0
    offset: float = 0.5

    def steps(self, completeness: np.ndarray) -> np.ndarray:
        f = np.asarray(completeness, dtype=np.float64)
        raw = self.base + self.scale * np.maximum(0.0, (1.0 - f) - self.offset)
        return np.clip(raw, *LATENT_STEP_RANGE)

    def to_json(self) -> dict[str, float]:
        return {"base": self.base, "scale": self.scale, "offset": self.offset}

    @classmethod
    def from_json(cls, data) -> StepRule:
        """From :meth:`to_json`; a plain number (older models stored a fixed step) is a fixed step."""
        if isinstance(data, int | float):
            return cls(base=float(data), scale=0.0)
        return cls(**{k: float(data[k]) for k in ("base", "scale", "offset")})

    def describe(self) -> str:
        if self.scale == 0:
            return f"fixed step {self.base:g}"
        return f"step {self.base:g} + {self.scale:g} x max(0, (1 - completeness) - {self.offset:g})"


@dataclass
class Inputs:
    """What a mode starts from, per person: log-probabilities to tilt, or a latent path to walk."""

    log_p: np.ndarray | None  # (n, n_items) history at -inf: the list standard/postfilter/tune+post tilt
    start: np.ndarray | None  # (n, d) tune's path start (the person's point, or zbar with no picks)
    direction: np.ndarray | None  # (n, d) tune's path direction (target - own)
    point: np.ndarray | None  # (n, d) the latent point of the list (standard: z; tune+post: the step)
    exclude: np.ndarray | None  # (n, n_items) bool: never listed
    cap: np.ndarray | float = 0.0  # tune+post: (n,) the largest latent step per row (log_p is decoded there)


@dataclass
class Solution:
    """A mode's ranking scores and strength per person, and how the dial was met."""

    log_scores: np.ndarray  # (n, n_items)
    alpha: np.ndarray  # (n,)
    count: np.ndarray  # (n,) on-target items in the top k
    status: np.ndarray  # (n,) "reached" / "ceiling" / "floor" / "" (no dial)
    point: np.ndarray | None  # (n, d)
    step: np.ndarray | None = None  # (n,) tune+post: the latent step taken before the postfilter


def _decode_log_p(steerer: Steerer, points: np.ndarray) -> np.ndarray:
    model = steerer.model
    return to_log_probabilities(model.decode(np.asarray(points, dtype=np.float32)), model.score_kind)


def latent_start(
    steerer: Steerer, histories: sp.csr_matrix | None, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(start, direction), each (n, d): ``z`` and ``target - own`` (no picks: ``zbar`` and ``target - zbar``).

    Rows without a chosen tag that has a centroid get a zero direction (they do not move).
    """
    n = weights.shape[0]
    has = np.asarray(weights, dtype=np.float64)[:, steerer._cent_cols].sum(axis=1) > 0
    d = steerer.centroids.centroids.shape[1]
    target = np.zeros((n, d))
    if has.any():
        target[has] = steerer.target_points(weights[has])
    if histories is None:
        zbar = steerer.population_point
        start = np.broadcast_to(np.asarray(target if zbar is None else zbar[None], dtype=np.float64), (n, d)).copy()
        own = start
    else:
        start = steerer.model.encode(histories).astype(np.float64)
        own = steerer.own_points(histories, start)
    direction = np.where(has[:, None], target - own, 0.0)
    return start, direction


def latent_inputs(
    steerer: Steerer,
    histories: sp.csr_matrix | None,
    weights: np.ndarray,
    mode: str,
    latent_step: float | None,
    exclude: np.ndarray | None = None,
    path: tuple[np.ndarray, np.ndarray] | None = None,
) -> Inputs:
    """The starting list or path of ``mode`` for each row (one encode, at most one decode).

    ``exclude`` (n, n_items) bool: items never listed (default: the histories' items). ``path``:
    :func:`latent_start` of the same rows when already computed (tune and tune+post share it).
    The inputs of "standard" serve the postfilter too (they do not depend on the tags).
    """
    n = weights.shape[0]
    if exclude is None and histories is not None:
        exclude = binary(histories).toarray() > 0
    if mode in ("tune", "tune+post"):
        if not steerer.latent:
            from .tags import SteeringError

            raise SteeringError(f"{mode} needs a latent model with tag centroids")
        start, direction = path if path is not None else latent_start(steerer, histories, weights)
        if mode == "tune":
            return Inputs(None, start, direction, start, exclude)
        # tune+post: a capped step, or with no picks the tag centroids themselves (strength 1)
        if histories is None:
            cap = np.ones(n)
        else:
            cap = steerer.row_steps(weights) if latent_step is None else np.full(n, float(latent_step))
        point = start + cap[:, None] * direction
        log_p = _decode_log_p(steerer, point)
        return Inputs(_excluded(log_p, exclude), start, direction, point, exclude, cap)
    if histories is None:
        log_p = to_log_probabilities(steerer.popularity_scores(n), "minmax")
        return Inputs(_excluded(log_p, exclude), None, None, None, exclude)
    if steerer.latent:
        z = steerer.model.encode(histories).astype(np.float64)
        return Inputs(_excluded(_decode_log_p(steerer, z), exclude), None, None, z, exclude)
    log_p = to_log_probabilities(steerer.model.score(histories), steerer.model.score_kind)
    return Inputs(_excluded(log_p, exclude), None, None, None, exclude)


def _excluded(log_p: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    return log_p if exclude is None else np.where(exclude, -np.inf, log_p)


def _row_boosts(steerer: Steerer, weights: np.ndarray):
    """(log_boost_of, uniform_log_factor or None) for rows of betas (see :func:`solve_postfilter`)."""
    on_target = steerer.on_target_rows(weights)
    rows = [np.flatnonzero(w > 0) for w in weights]
    betas = [weights[r, c] for r, c in enumerate(rows)]
    uniform = all(len(b) == 0 or np.allclose(b, b[0]) for b in betas)
    log_l = np.array([np.log1p(b[0]) if len(b) else 0.0 for b in betas])

    def log_boost_of(alphas: np.ndarray) -> np.ndarray:
        alphas = np.broadcast_to(np.asarray(alphas, dtype=np.float64), (len(rows),))
        if uniform:
            return (alphas * log_l)[:, None] * on_target
        out = np.zeros(on_target.shape)
        for r, (cols, b) in enumerate(zip(rows, betas, strict=True)):
            if len(cols):
                out[r] = log_tag_boost(steerer.tag_matrix, cols, b, alphas[r : r + 1])[0]
        return out

    return on_target, log_boost_of, (np.where(log_l > 0, log_l, np.inf) if uniform else None)


def solve(
    steerer: Steerer,
    inputs: Inputs,
    weights: np.ndarray,
    mode: str,
    *,
    share: float | np.ndarray | None,
    alpha: float | np.ndarray | None,
    k: int,
    tune_alpha: np.ndarray | None = None,
) -> Solution:
    """Each row's ranking scores in ``mode`` at the strength given (``alpha``) or solved from ``share``.

    ``tune_alpha``: for tune+post, tune's solution for the same rows and share (status ceiling as
    NaN), so its early stop reuses that path instead of walking it again: the first strength reaching
    the target along ``[0, cap]`` is tune's whenever tune's is at most ``cap``.
    """
    n = weights.shape[0]
    on_target, log_boost_of, uniform = _row_boosts(steerer, weights)
    blank = np.full(n, "", dtype=object)
    if mode == "standard":
        log_p = inputs.log_p
        return Solution(log_p, np.zeros(n), count_on_target(log_p, on_target, k), blank, inputs.point)
    if share is not None:
        shares = np.broadcast_to(np.asarray(share, dtype=np.float64), (n,))
        want = np.array([target_count(s, k) for s in shares], dtype=np.int64)
    if mode == "tune":
        decode = lambda pts: _decode_log_p(steerer, pts)
        if share is None:
            a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n,)).copy()
            point = inputs.start + a[:, None] * inputs.direction
            log_scores = _excluded(decode(point), inputs.exclude)
            return Solution(log_scores, a, count_on_target(log_scores, on_target, k), blank, point)
        a, got, _ = solve_trajectory(
            inputs.start, inputs.direction, decode, inputs.exclude, on_target, want, k, alpha_max=TUNE_ALPHA_MAX
        )
        point = inputs.start + a[:, None] * inputs.direction
        log_scores = _excluded(decode(point), inputs.exclude)
        got = count_on_target(log_scores, on_target, k)
        return Solution(log_scores, a, got, _status(got, want, a), point)
    # postfilter, tune+post: tilt the starting list
    log_p = inputs.log_p
    step = np.broadcast_to(np.asarray(inputs.cap, dtype=np.float64), (n,)).copy() if mode == "tune+post" else None
    if share is None:
        a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n,)).copy()
        log_scores = log_p + log_boost_of(a)
        return Solution(log_scores, a, count_on_target(log_scores, on_target, k), blank, inputs.point, step)
    a, got = solve_postfilter(log_p, on_target, log_boost_of, want, k, uniform_log_factor=uniform)
    a = np.where(np.isfinite(a), a, 0.0)
    log_scores = log_p + log_boost_of(a)
    point = inputs.point
    if mode == "tune+post":
        # the latent step stops where the target is met (a dial below the step's own share is not overshot)
        decode = lambda pts: _decode_log_p(steerer, pts)
        if tune_alpha is None:
            a_t, _, early = solve_trajectory(
                inputs.start, inputs.direction, decode, inputs.exclude, on_target, want, k, alpha_max=inputs.cap
            )
        else:
            a_t = np.where(np.isfinite(tune_alpha), tune_alpha, np.inf)
            early = a_t <= inputs.cap
        if early.any():
            p_early = inputs.start[early] + a_t[early, None] * inputs.direction[early]
            log_scores[early] = _excluded(decode(p_early), None if inputs.exclude is None else inputs.exclude[early])
            a[early], step[early] = 0.0, a_t[early]
            point = point.copy()
            point[early] = p_early
    got = count_on_target(log_scores, on_target, k)
    return Solution(log_scores, a, got, _status(got, want, np.maximum(a, 0 if step is None else step)), point, step)


def _status(got: np.ndarray, want: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per row: "reached", "floor" (above the target with no steering at all) or "ceiling"."""
    return np.where(got < want, "ceiling", np.where((got > want) & (alpha == 0), "floor", "reached")).astype(object)
