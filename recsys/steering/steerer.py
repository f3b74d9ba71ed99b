"""The Steerer: a model plus what steering needs, and the one call a page makes.

Notation (../shared/DESIGN.md, seed 000 "rec-NN"): ``x`` a person's picks, ``T`` the chosen tags
with weights ``beta_t > 0`` (``w_t = beta_t / sum(beta)``), ``alpha`` a mode's strength.

Modes (picked items are never recommended; strength 0 is the standard list in every mode):

* **standard**: ``decode(encode(x))`` (``score(x)`` for non-latent models).
* **postfilter**: ``p_i * b_i(alpha)`` (:mod:`.postfilter`).
* **tune**: decode the moved point ``z + alpha (target - own)`` (:mod:`.tune`).
* **tune+post**: a capped latent step ``z + s (target - own)``, then the postfilter with ``alpha``.
  ``s`` follows :attr:`Steerer.step_rule` (:class:`.calibration.StepRule`, chosen on validation users
  by :func:`.protocols.choose_step_rule`; not tied to alpha): longer for a tag that looks incomplete
  (:meth:`Steerer.tag_completeness`). The step brings in items the latent space relates to the tags
  even when they are untagged; the postfilter then meets the share.

**The dial.** A person sets a *target tag share* of the list (``share``), not alpha: alpha means
different things per mode and model. Each mode solves, per person, the smallest strength that puts
``round(share * k)`` items carrying a chosen tag in the top ``k`` (:mod:`.calibration`); the alpha
used is a readout. Where a mode cannot get there (tune's ceiling for a rare tag) it returns its best
list and says so (``ModeList.status == "ceiling"``); where the unsteered list already carries more
than asked, strength 0 (``"floor"``).

**Cold start.** No picks but tags: the person starts at the average training user ``zbar``;
*standard* and *postfilter* are the training popularity list (postfiltered), *tune* moves ``zbar``
toward the tags' centroids (strength 1 decodes the centroids themselves), *tune+post* decodes the
centroids and postfilters them. No picks and no tags: every column is the popularity list, labelled.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import tag_matrix as item_tag_matrix
from ..models.base import LatentRecommender, Recommender, top_k
from .calibration import Inputs, Solution, StepRule, latent_inputs, latent_start, solve
from .centroids import TagCentroids, compute_tag_centroids
from .postfilter import target_count
from .tags import (
    DEFAULT_MAX_TAGS,
    DEFAULT_MIN_ITEMS,
    DEFAULT_MIN_USERS,
    SteeringError,
    binary,
    curate_vocabulary,
    normalise_tag,
    normalised_item_tags,
    tag_counts,
)

MODES: tuple[str, ...] = ("standard", "postfilter", "tune", "tune+post")
LATENT_MODES: tuple[str, ...] = ("tune", "tune+post")

#: Documented ranges of the knobs (inclusive). alpha is a strength toward the tags; steering away
#: from a tag is not offered (pick other tags instead).
ALPHA_RANGE: tuple[float, float] = (0.0, 100.0)
BETA_RANGE: tuple[float, float] = (1e-3, 100.0)
SHARE_RANGE: tuple[float, float] = (0.0, 1.0)

#: Items per tag that :attr:`Steerer.tag_completeness` looks at (the ones the tag's centroid lifts most).
COMPLETENESS_TOP = 50

MODE_LABELS = {"standard": "standard", "postfilter": "postfiltered", "tune": "tuned", "tune+post": "tune+post"}


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class ModeList:
    """One column of the page: a ranked list for one mode, and how it met the dial."""

    mode: str
    items: pd.DataFrame  # rank, item_index, item_id, title, artist, tags, score, on_target
    tag_share: float  # share of the list carrying at least one chosen tag (nan without tags)
    label: str  # what this column is ("tuned", "popular (no picks)", ...)
    note: str = ""
    alpha: float = 0.0  # the strength this mode used (solved from the dial, or given)
    step: float | None = None  # tune+post: the latent step taken before its postfilter
    status: str = ""  # "reached", "ceiling" (best it can do), "floor" (above target unsteered), "" (no dial)


@dataclass
class SteeringResult:
    """All modes for one person: ``lists[mode]`` (modes the model cannot do are absent, see ``unavailable``)."""

    lists: dict[str, ModeList]
    alpha: float | None  # the strength given (None when the dial set each mode's)
    tags: dict[str, float]
    share: float | None = None  # the dial's target tag share (None: strength given)
    z: np.ndarray | None = None  # the person's latent point (None: no picks or not latent)
    z_tuned: np.ndarray | None = None  # the tune column's point
    unavailable: dict[str, str] = field(default_factory=dict)  # mode -> why
    cold_start: str | None = None  # None, "tags" or "popularity"

    def top_item_ids(self, mode: str) -> list[str]:
        return list(self.lists[mode].items["item_id"])


@dataclass
class Ranked:
    """What :meth:`Steerer.steer` returns for a batch of people and one mode."""

    top: np.ndarray  # (n, n_rank) item indices, best first
    scores: np.ndarray  # (n, n_rank) log-scores (-inf past the catalogue)
    alpha: np.ndarray  # (n,) strength used
    count: np.ndarray  # (n,) items carrying a target tag in the top k
    status: np.ndarray  # (n,) "reached" / "ceiling" / "floor" / "" (strength given)
    point: np.ndarray | None  # (n, d) decoded latent point (latent modes), else None
    step: np.ndarray | None = None  # (n,) tune+post's latent step


# ---------------------------------------------------------------------------------------------
# the steerer
# ---------------------------------------------------------------------------------------------
def _check_range(name: str, value: float, bounds: tuple[float, float]) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SteeringError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise SteeringError(f"{name} must be finite, got {v}")
    lo, hi = bounds
    if not lo <= v <= hi:
        raise SteeringError(f"{name} must be in [{lo:g}, {hi:g}], got {v:g}")
    return v


def _suggest(word: str, options: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(str(word), list(options), n=n, cutoff=0.6)


class Steerer:
    """A model plus what steering needs: tags of items, tag centroids, item popularity, latent step.

    Parameters
    ----------
    model : Recommender
        Fitted; a :class:`LatentRecommender` for the tune modes.
    items : DataFrame
        The model's item table (``item_id``, ``title``, ``artist``, ``tags``), row i = column i.
    vocabulary : sequence of str
        Curated tags (normalised) usable for postfiltering.
    centroids : TagCentroids or None
        Tag centroids (latent models); the tags usable for tuning.
    item_popularity : ndarray (n_items,)
        Training users per item, for the cold-start list.
    population_point : ndarray (d,), optional
        Mean latent point of the training users (cold start's starting point).
    step_rule : StepRule
        tune+post's latent step per tag (chosen on validation users at training time).
    """

    def __init__(
        self,
        model: Recommender,
        items: pd.DataFrame,
        *,
        vocabulary: Sequence[str],
        centroids: TagCentroids | None,
        item_popularity: np.ndarray,
        population_point: np.ndarray | None = None,
        step_rule: StepRule | None = None,
    ):
        if not model.is_fitted:
            raise ValueError("the model is not fitted")
        if len(items) != model.n_items_:
            raise ValueError(f"{len(items)} items for a model of {model.n_items_}")
        self.model = model
        self.items = items.reset_index(drop=True)
        self.item_tags = normalised_item_tags(self.items)
        self.vocabulary = list(vocabulary)
        self.tag_matrix = item_tag_matrix(self.item_tags, self.vocabulary)
        self._vocab_index = {t: j for j, t in enumerate(self.vocabulary)}
        self.centroids = centroids if isinstance(model, LatentRecommender) else None
        self.item_popularity = np.asarray(item_popularity, dtype=np.float64)
        self.population_point = population_point
        self.step_rule = step_rule or StepRule()
        for name, v in self.step_rule.to_json().items():
            _check_range(f"step rule {name}", v, (0.0, 100.0))
        self._completeness: np.ndarray | None = None
        self._item_index = {str(v): i for i, v in enumerate(self.items["item_id"])}
        # the list columns as arrays, so a list is fancy indexing, not a DataFrame slice (20k items: ~1 ms a list)
        self._ids = self.items["item_id"].astype(str).to_numpy()
        self._titles = self.items["title"].to_numpy()
        self._artists = self.items["artist"].to_numpy()
        if self.centroids is not None:
            self._cent_index = self.centroids.index()
            # centroid rows in vocabulary column order, for u_t c_t sums
            self._cent_cols = np.array([self._vocab_index[t] for t in self.centroids.tags], dtype=np.int64)
        else:
            self._cent_index = {}
            self._cent_cols = np.zeros(0, dtype=np.int64)

    # ---- construction -------------------------------------------------------------------
    @property
    def latent(self) -> bool:
        """Whether the tune modes are available (a latent model with tag centroids)."""
        return self.centroids is not None and len(self.centroids.tags) > 0

    @property
    def steerable_tags(self) -> list[str]:
        """Tags a person may choose: with a centroid for latent models, else the vocabulary."""
        return list(self.centroids.tags) if self.latent else list(self.vocabulary)

    @classmethod
    def from_training(
        cls,
        model: Recommender,
        train_histories: sp.csr_matrix,
        items: pd.DataFrame,
        *,
        rule: str = "share",
        max_tags: int = DEFAULT_MAX_TAGS,
        min_items: int = DEFAULT_MIN_ITEMS,
        min_users: int = DEFAULT_MIN_USERS,
        step_rule: StepRule | None = None,
        latent: np.ndarray | None = None,
    ) -> Steerer:
        """Curate the vocabulary and compute centroids from the training users (at training time).

        ``latent``: the training users' latent points when already computed (the evaluations rebuild
        steerers from other tags over the same points).
        """
        item_tags = normalised_item_tags(items)
        x = binary(train_histories)
        vocab = curate_vocabulary(item_tags, x, max_tags=max_tags, min_items=min_items, min_users=min_users)
        popularity = np.diff(x.tocsc().indptr).astype(np.float64)
        centroids, population = None, None
        if isinstance(model, LatentRecommender):
            z = model.encode(x) if latent is None else latent
            population = np.asarray(z).mean(axis=0)
            centroids = compute_tag_centroids(
                z, x, item_tag_matrix(item_tags, vocab), vocab, rule=rule, min_users=min_users
            )
        return cls(
            model,
            items,
            vocabulary=vocab,
            centroids=centroids,
            item_popularity=popularity,
            population_point=population,
            step_rule=step_rule,
        )

    def to_registry(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(extras arrays, JSON info) to store with the model: ``Registry.save(extras=..., info={"steering": ...})``."""
        arrays: dict[str, np.ndarray] = {"steering.item_popularity": self.item_popularity.astype(np.float64)}
        info: dict[str, Any] = {
            "vocabulary": self.vocabulary,
            "centroid_tags": [],
            "rule": None,
            "min_users": None,
            "latent_step": self.step_rule.base,
            "latent_step_rule": self.step_rule.to_json(),
        }
        if self.centroids is not None:
            arrays["steering.centroids"] = self.centroids.centroids
            arrays["steering.support"] = self.centroids.support
            info.update(
                centroid_tags=list(self.centroids.tags), rule=self.centroids.rule, min_users=self.centroids.min_users
            )
        if self.population_point is not None:
            arrays["steering.population_point"] = np.asarray(self.population_point, dtype=np.float32)
        return arrays, info

    @classmethod
    def from_parts(
        cls, model: Recommender, items: pd.DataFrame, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any]
    ) -> Steerer:
        """Rebuild from what :meth:`to_registry` returned."""
        centroids = None
        if "steering.centroids" in arrays and info.get("centroid_tags"):
            centroids = TagCentroids(
                tags=tuple(info["centroid_tags"]),
                centroids=np.asarray(arrays["steering.centroids"], dtype=np.float32),
                support=np.asarray(arrays["steering.support"], dtype=np.int64),
                rule=str(info.get("rule") or "share"),
                min_users=int(info.get("min_users") or DEFAULT_MIN_USERS),
            )
        rule = info.get("latent_step_rule", info.get("latent_step"))
        return cls(
            model,
            items,
            vocabulary=list(info.get("vocabulary") or []),
            centroids=centroids,
            item_popularity=arrays["steering.item_popularity"],
            population_point=arrays.get("steering.population_point"),
            step_rule=None if rule is None else StepRule.from_json(rule),
        )

    @classmethod
    def from_loaded(cls, loaded: Any) -> Steerer:
        """From a registry :class:`~recsys.registry.LoadedModel`; raises SteeringError if it has no steering data."""
        info = (loaded.manifest.get("info") or {}).get("steering")
        if info is None or "steering.item_popularity" not in loaded.extras:
            raise SteeringError(
                f"model {loaded.model_id!r} was saved without steering data (tag centroids); retrain it with "
                "this version (`python -m recsys train ...` or `registry build-defaults --force`)"
            )
        return cls.from_parts(loaded.model, loaded.items, loaded.extras, info)

    # ---- input checks -------------------------------------------------------------------
    def item_indices(self, picks: Sequence[Any], *, ordered: bool = False) -> np.ndarray:
        """Column indices of picked item ids; unknown ids raise with near matches (by id and title).

        Sorted and unique by default; ``ordered=True`` keeps the picks' order (first occurrence), the
        session order sequential models read.
        """
        out, unknown = [], []
        for p in picks:
            i = self._item_index.get(str(p))
            (unknown if i is None else out).append(p if i is None else i)
        if unknown:
            hints = []
            for p in unknown[:5]:
                near = _suggest(str(p), self._item_index)
                titles = _suggest(str(p), self.items["title"].astype(str))
                if titles:
                    ids = self.items.loc[self.items["title"].astype(str).isin(titles), "item_id"].astype(str)
                    near = near + [f"{t} (id {i})" for t, i in zip(titles, ids, strict=False)]
                hints.append(f"{p!r}" + (f" (did you mean {', '.join(near[:3])}?)" if near else ""))
            raise SteeringError(
                f"unknown item ids: {'; '.join(hints)}; {self.model.n_items_} items are known, e.g. "
                f"{', '.join(map(str, self.items['item_id'][:3]))}"
            )
        if ordered:
            return np.asarray(list(dict.fromkeys(out)), dtype=np.int64)
        return np.unique(np.asarray(out, dtype=np.int64))

    @property
    def sequential(self) -> bool:
        """Whether the model reads the order of the picks (oldest first, the last pick most recent)."""
        from ..models.sequential import SequentialRecommender

        return isinstance(self.model, SequentialRecommender)

    def history(self, picks: Sequence[Any]) -> sp.csr_matrix:
        """A one-row CSR history from picked item ids: 0/1, or for sequential models the pick positions.

        Sequential models read stored values as the order (larger = later:
        :meth:`recsys.data.sequences.OrderedHistories.from_csr`), so the picks' order reaches their
        ``encode``/``score``; everything else here only looks at which items are picked.
        """
        if self.sequential:
            ordered = self.item_indices(picks, ordered=True)
            cols = np.sort(ordered)
            position = {int(i): p for p, i in enumerate(ordered, start=1)}
            values = np.array([position[int(i)] for i in cols], dtype=np.float32)
        else:
            cols = self.item_indices(picks)
            values = np.ones(len(cols), np.float32)
        return sp.csr_matrix((values, (np.zeros(len(cols), np.int64), cols)), shape=(1, self.model.n_items_))

    def check_tags(self, tags: Mapping[str, float] | None, *, need_centroids: bool) -> dict[str, float]:
        """Normalised tag -> beta; unknown tags, tags without centroid, bad weights raise SteeringError."""
        out: dict[str, float] = {}
        for raw, beta in (tags or {}).items():
            t = normalise_tag(raw)
            if t not in self._vocab_index:
                near = _suggest(t, self.vocabulary)
                raise SteeringError(
                    f"unknown tag {raw!r}"
                    + (f" (did you mean {', '.join(near)}?)" if near else "")
                    + f"; valid tags: {', '.join(self.vocabulary)}"
                )
            if need_centroids and t not in self._cent_index:
                raise SteeringError(
                    f"tag {raw!r} has no centroid in this model: fewer than {self.centroids.min_users} training "
                    f"users support it, so it cannot be tuned toward (postfilter still works); tags with a centroid: "
                    f"{', '.join(self.centroids.tags)}"
                )
            out[t] = out.get(t, 0.0) + _check_range(f"weight of tag {raw!r}", beta, BETA_RANGE)
        return out

    # ---- core computations (vectorised) ---------------------------------------------------
    def tag_weights(self, tags: Mapping[str, float]) -> np.ndarray:
        """(1, n_vocabulary) row of betas (0 = not chosen) from checked, normalised tags."""
        w = np.zeros((1, len(self.vocabulary)))
        for t, beta in tags.items():
            w[0, self._vocab_index[t]] = beta
        return w

    def target_points(self, weights: np.ndarray) -> np.ndarray:
        """(n, d): ``sum_t w_t c_t`` per row of betas (normalised over the tags with a centroid)."""
        w = np.asarray(weights, dtype=np.float64)[:, self._cent_cols]
        total = w.sum(axis=1, keepdims=True)
        if (total <= 0).any():
            raise SteeringError("every row needs at least one chosen tag with a centroid to tune toward")
        return (w / total) @ self.centroids.centroids.astype(np.float64)

    def target_point(self, tags: Mapping[str, float]) -> np.ndarray:
        """``sum_t w_t c_t`` for checked tags with centroids (weights normalised to sum 1)."""
        return self.target_points(self.tag_weights(tags))[0]

    def own_points(self, histories: sp.csr_matrix, z: np.ndarray) -> np.ndarray:
        """``sum_t u_t c_t`` per user (tag occurrences among their items); ``z`` for users with none."""
        counts = tag_counts(histories, self.tag_matrix)[:, self._cent_cols]  # (n, T_c)
        total = counts.sum(axis=1, keepdims=True)
        own = (counts / np.maximum(total, 1.0)) @ self.centroids.centroids.astype(np.float64)
        return np.where(total > 0, own, np.asarray(z, dtype=np.float64))

    @property
    def tag_completeness(self) -> np.ndarray:
        """(n_centroid_tags,) how complete each tag looks: of the items its centroid lifts most over the
        average listener (``log p(c_t) - log p(zbar)``, the top :data:`COMPLETENESS_TOP`), the share that
        carry the tag. Complete tags score high; a tag missing from most of its items scores low.
        """
        if self._completeness is None:
            from .calibration import _decode_log_p

            cents = self.centroids.centroids.astype(np.float64)
            zbar = np.asarray(
                cents.mean(axis=0) if self.population_point is None else self.population_point, dtype=np.float64
            )
            lift = _decode_log_p(self, cents) - _decode_log_p(self, zbar[None])
            top_n = int(min(COMPLETENESS_TOP, max(1, self.model.n_items_ // 10)))
            top = np.argpartition(-lift, top_n - 1, axis=1)[:, :top_n]
            tagged = self.tag_matrix[:, self._cent_cols].toarray().T > 0  # (T_c, n_items)
            self._completeness = np.take_along_axis(tagged, top, axis=1).mean(axis=1)
        return self._completeness

    def row_steps(self, weights: np.ndarray) -> np.ndarray:
        """(n,) tune+post's latent step per row of betas: the rule's steps of the chosen tags, weight-averaged."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if not self.latent:
            return np.full(weights.shape[0], self.step_rule.base)
        w = weights[:, self._cent_cols]
        total = w.sum(axis=1)
        per_tag = self.step_rule.steps(self.tag_completeness)
        steps = (w @ per_tag) / np.where(total > 0, total, 1.0)
        return np.where(total > 0, steps, self.step_rule.base)

    def on_target_rows(self, weights: np.ndarray) -> np.ndarray:
        """(n, n_items) bool: the item carries at least one tag chosen in that row of betas."""
        chosen = sp.csr_matrix((np.asarray(weights) > 0).astype(np.float64))
        return np.asarray((chosen @ self.tag_matrix.T).todense()) > 0

    def on_target(self, item_indices: np.ndarray, tags: Iterable[str]) -> np.ndarray:
        """Boolean mask of the same shape: the item carries at least one of ``tags``."""
        return self._target_mask(tags)[np.asarray(item_indices, dtype=np.int64)]

    def _target_mask(self, tags: Iterable[str]) -> np.ndarray:
        """(n_items,) bool: the item carries at least one of ``tags``."""
        cols = [self._vocab_index[t] for t in tags]
        if not cols:
            return np.zeros(self.model.n_items_, dtype=bool)
        return np.asarray(self.tag_matrix[:, cols].sum(axis=1)).ravel() > 0

    def popularity_scores(self, n: int = 1) -> np.ndarray:
        """(n, n_items) the training popularity as the cold-start list's scores."""
        base = self.item_popularity[None, :].astype(np.float64)
        return np.repeat(base / max(base.max(), 1.0), n, axis=0)

    # ---- the batched core -----------------------------------------------------------------
    def steer(
        self,
        histories: sp.csr_matrix | None,
        weights: np.ndarray,
        mode: str,
        *,
        share: float | np.ndarray | None = None,
        alpha: float | np.ndarray | None = None,
        k: int = 20,
        n_rank: int | None = None,
        latent_step: float | None = None,
        exclude: sp.csr_matrix | None = None,
        tune: Ranked | None = None,
        inputs: Inputs | None = None,
    ) -> Ranked:
        """Rank for a batch of people in one mode, steered by a target ``share`` (the dial) or ``alpha``.

        ``histories``: (n, n_items) CSR of picks, or None for people with no picks (cold start from
        ``weights``: the popularity list, or the tag centroids for the latent modes). ``weights``:
        (n, n_vocabulary) betas of the chosen tags (0 = not chosen); a row without tags is not
        steered. ``share`` (per row or one) sets ``round(share * k)`` on-target items in the top
        ``k``; ``alpha`` sets the strength instead. ``n_rank``: list length returned (default ``k``).
        ``exclude``: items never listed (default: the histories). ``tune``: tune's result for the same
        rows and share, which tune+post reuses for its early stop (one latent path walked, not two).
        ``inputs``: the mode's :func:`.calibration.latent_inputs` when already built for these rows
        (``histories``, ``latent_step`` and ``exclude`` are then not read again).
        """
        if mode not in MODES:
            raise SteeringError(f"unknown mode {mode!r}; valid: {list(MODES)}")
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        n_rank = k if n_rank is None else n_rank
        if inputs is None:
            mask = None if exclude is None else binary(exclude).toarray() > 0
            inputs = latent_inputs(self, histories, weights, mode, latent_step, mask)
        tune_alpha = None
        if tune is not None and mode == "tune+post" and share is not None:
            tune_alpha = np.where(tune.status == "ceiling", np.nan, tune.alpha)
        sol: Solution = solve(self, inputs, weights, mode, share=share, alpha=alpha, k=k, tune_alpha=tune_alpha)
        top, sc = top_k(sol.log_scores, n_rank)
        return Ranked(
            top=top, scores=sc, alpha=sol.alpha, count=sol.count, status=sol.status, point=sol.point, step=sol.step
        )

    # ---- the page's call ------------------------------------------------------------------
    def recommend(
        self,
        picks: Sequence[Any] = (),
        tags: Mapping[str, float] | None = None,
        alpha: float = 0.0,
        *,
        share: float | None = None,
        k: int = 20,
        modes: Sequence[str] = MODES,
    ) -> SteeringResult:
        """Ranked lists of every mode for one person.

        ``picks``: item ids the person likes; ``tags``: tag -> weight beta (> 0). ``share`` (the
        dial, in [0, 1]): each mode solves its own strength to put that share of the top ``k`` on
        the chosen tags; without it every mode uses ``alpha`` (in :data:`ALPHA_RANGE`). Modes the
        model cannot do (tune modes of non-latent models) are reported in ``unavailable``.
        """
        given_alpha = None if share is not None else _check_range("alpha", alpha, ALPHA_RANGE)
        if share is not None:
            share = _check_range("target share", share, SHARE_RANGE)
        if not isinstance(k, int | np.integer) or k < 1:
            raise SteeringError(f"k must be a positive integer, got {k!r}")
        bad = [m for m in modes if m not in MODES]
        if bad:
            raise SteeringError(f"unknown modes {bad}; valid: {list(MODES)}")
        unavailable = {}
        if not self.latent:
            why = (
                "needs a latent model"
                if not isinstance(self.model, LatentRecommender)
                else "this model has no tag centroids"
            )
            unavailable = {m: why for m in modes if m in LATENT_MODES}
        modes = [m for m in modes if m not in unavailable]
        need_centroids = any(m in LATENT_MODES for m in modes)
        tags = self.check_tags(tags, need_centroids=need_centroids)
        x = self.history(picks) if len(picks) else None
        weights = self.tag_weights(tags)
        cold = None if x is not None else ("tags" if tags else "popularity")
        steered = bool(tags) and (share is not None or given_alpha > 0)

        # one encode + decode for standard and postfilter, one encode for the latent path of tune and tune+post
        base = latent_inputs(self, x, weights, "standard", None)
        z = base.point[0] if x is not None and base.point is not None else None
        z_tuned = path = None
        lists: dict[str, ModeList] = {}
        on_target = self._target_mask(tags)
        r_std = tuned = None
        for m in modes:
            step = None
            if not steered or m == "standard":
                r_std = r_std or self.steer(x, weights * 0, "standard", alpha=0.0, k=k, inputs=base)
                r, alpha_used, status = r_std, 0.0, ""
            else:
                if m in LATENT_MODES:
                    path = path or latent_start(self, x, weights)
                    inputs = latent_inputs(self, x, weights, m, None, path=path)
                else:
                    inputs = base
                r = self.steer(x, weights, m, share=share, alpha=given_alpha, k=k, tune=tuned, inputs=inputs)
                tuned = r if m == "tune" else tuned
                alpha_used, status = float(r.alpha[0]), str(r.status[0])
                step = None if r.step is None else float(r.step[0])
                if m == "tune" and r.point is not None:
                    z_tuned = r.point[0]
            frame = self._frame(r.top[0], r.scores[0], on_target)
            tag_share = float(frame["on_target"].mean()) if tags and len(frame) else float("nan")
            label, note = self._label(m, cold, steered, status, share, tag_share, k)
            lists[m] = ModeList(
                mode=m,
                items=frame,
                tag_share=tag_share,
                label=label,
                note=note,
                alpha=alpha_used,
                step=step,
                status=status,
            )
        if z_tuned is None and z is not None:
            z_tuned = z
        return SteeringResult(
            lists=lists,
            alpha=given_alpha,
            tags=tags,
            share=share,
            z=z,
            z_tuned=z_tuned,
            unavailable=unavailable,
            cold_start=cold,
        )

    def _label(
        self,
        mode: str,
        cold: str | None,
        steered: bool,
        status: str,
        share: float | None,
        got: float,
        k: int,
    ) -> tuple[str, str]:
        """(column label, note) of one mode's list."""
        if cold == "popularity" or (cold == "tags" and (mode in ("standard",) or not steered)):
            what = "popular (no picks)" if cold == "tags" else "popular (no picks, no tags)"
            return what, "nothing picked: training popularity"
        if cold == "tags":
            label = {
                "postfilter": "popular (no picks), postfiltered",
                "tune": "from your tags",
                "tune+post": "from your tags, postfiltered",
            }[mode]
            note = {
                "postfilter": "nothing picked: training popularity, postfiltered",
                "tune": "cold start: the average listener moved toward your tags' centroids",
                "tune+post": "cold start: your tags' centroids decoded, then postfiltered",
            }[mode]
        else:
            label, note = MODE_LABELS[mode], ""
        if share is not None and mode != "standard":
            want = target_count(share, k)
            if status == "ceiling":
                note = (
                    f"cannot reach {want}/{k} ({share:.0%}) here: {got:.0%} is the most this mode gets"
                    + (" within its range" if mode == "tune" else "")
                    + (note and f"; {note}")
                )
            elif status == "floor":
                note = f"already {got:.0%} without steering (above the dial)" + (note and f"; {note}")
        return label, note

    def _frame(self, idx: np.ndarray, scores: np.ndarray, on_target: np.ndarray) -> pd.DataFrame:
        """One ranked list; ``on_target`` is the (n_items,) mask of :meth:`_target_mask`."""
        keep = np.isfinite(scores)  # fewer candidates than k (tiny catalogues) leave -inf tails
        idx, scores = idx[keep], scores[keep]
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(idx) + 1),
                "item_index": idx,
                "item_id": self._ids[idx],
                "title": self._titles[idx],
                "artist": self._artists[idx],
                "tags": [self.item_tags[i] for i in idx],
                "score": scores,
                "on_target": on_target[idx],
            }
        )

    # ---- strengths and trajectories (calibration readouts, the map page) ---------------------
    def shares_over_alpha(
        self,
        picks: Sequence[Any],
        tags: Mapping[str, float],
        alphas: Sequence[float],
        *,
        mode: str = "tune",
        k: int = 20,
    ) -> np.ndarray:
        """Share of the top ``k`` carrying a chosen tag, for every alpha (one batched pass)."""
        if mode not in MODES or mode == "standard":
            raise SteeringError(f"mode must be one of {list(MODES[1:])}, got {mode!r}")
        if mode in LATENT_MODES and not self.latent:
            raise SteeringError(f"{mode} needs a latent model with tag centroids")
        alphas = np.array([_check_range("alpha", a, ALPHA_RANGE) for a in alphas])
        tags = self.check_tags(tags, need_centroids=mode in LATENT_MODES)
        if not tags:
            raise SteeringError("choose at least one tag to calibrate toward")
        x = self.history(picks) if len(picks) else None
        n = len(alphas)
        xs = sp.csr_matrix(sp.vstack([x] * n)) if x is not None else None
        r = self.steer(xs, np.repeat(self.tag_weights(tags), n, axis=0), mode, alpha=alphas, k=k)
        return r.count / k

    def alpha_for_share(
        self, picks: Sequence[Any], tags: Mapping[str, float], share: float, *, mode: str = "tune", k: int = 20
    ) -> float | None:
        """The strength a mode uses to reach a target tag ``share`` (None where it cannot)."""
        share = _check_range("target share", share, SHARE_RANGE)
        tags = self.check_tags(tags, need_centroids=mode in LATENT_MODES)
        if not tags:
            raise SteeringError("choose at least one tag to calibrate toward")
        x = self.history(picks) if len(picks) else None
        r = self.steer(x, self.tag_weights(tags), mode, share=share, k=k)
        return None if r.status[0] == "ceiling" else float(r.alpha[0])

    def trajectory(self, picks: Sequence[Any], tags: Mapping[str, float], alphas: Sequence[float]) -> np.ndarray:
        """Tuned latent points (len(alphas), d) of a person for each alpha (the map's trajectory)."""
        if not self.latent:
            raise SteeringError("trajectories need a latent model with tag centroids")
        alphas = np.array([_check_range("alpha", a, ALPHA_RANGE) for a in alphas])
        tags = self.check_tags(tags, need_centroids=True)
        if not tags:
            raise SteeringError("choose at least one tag to see a trajectory")
        x = self.history(picks) if len(picks) else None
        start, direction = latent_start(self, x, self.tag_weights(tags))
        return start[0][None, :] + alphas[:, None] * direction[0][None, :]
