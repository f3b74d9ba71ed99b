"""Steering: standard, postfiltered, tuned and tune+post recommendations, and tag cold start.

Notation (../shared/DESIGN.md, seed 000 "rec-NN"): ``x`` a person's picks, ``T`` the chosen tags
with weights ``beta_t > 0`` and normalised weights ``w_t = beta_t / sum(beta)``, ``alpha`` the slider.

* **tag centroid** ``c_t``: mean of ``encode(x_u)`` over training users. Rule ``"share"`` (default)
  weighs every training user by the share of their items that carry ``t``; rule ``"dominant"`` (seed
  000's) averages only users whose most frequent tag is ``t``. A tag gets a centroid when at least
  ``min_users`` training users support it (have one of its items / have it as dominant tag).
* **standard**: ``s = decode(encode(x))``.
* **postfilter**: scores become probabilities the way the model was trained (``score_kind``:
  softmax for multinomial CE, sigmoid for BCE/focal/MSE, per-user min-max to [0, 1] for similarity
  scores of EASE/SVD/Popularity), then ``p'_i = p_i * mean_{t in T, i has t} (1 + beta_t)^alpha``;
  items with none of the chosen tags keep ``p_i``.
* **tune**: ``z' = z + alpha * (sum_t w_t c_t - sum_t u_t c_t)`` with ``u`` the person's own tag
  distribution (tag occurrences among the picks, over tags that have a centroid). When the picks
  carry none of those tags, ``sum_t u_t c_t`` is replaced by ``z`` itself, so ``alpha = 1`` lands on the
  target. ``s' = decode(z')``.
* **tune+post**: tune with ``alpha``, then postfilter with ``alpha * post_factor``.

Picked items are never recommended; ``alpha = 0`` reproduces the standard list exactly (every mode).
Non-latent models (Popularity, EASE) get standard and postfilter only.

**Cold start.** No picks but tags: there is no own point, so the person starts at the average
training user ``zbar`` (the mean latent point) and moves toward the weighted tag centroids,
``z' = zbar + alpha * (sum_t w_t c_t - zbar)``: at ``alpha = 1`` *tune* decodes exactly the weighted
tag centroids, larger alpha goes further. *standard* and *postfilter* are the training popularity
list (postfiltered), labelled as such, and at ``alpha = 0`` every column is that popularity list. No
picks and no tags: every column is the popularity list, labelled.

The tag vocabulary is curated (:func:`curate_vocabulary`): tags are normalised (lower case,
``-``/``_`` as spaces), and the ``max_tags`` most frequent ones that describe at least ``min_items``
items and have ``min_users`` supporting training users are kept.

:class:`Steerer` bundles a model with what steering needs (item-tag matrix, centroids, popularity);
it is built at training time (:meth:`Steerer.from_training`), stored in the registry
(:meth:`Steerer.to_registry`) and rebuilt from a loaded model (:meth:`Steerer.from_loaded`).
:meth:`Steerer.recommend` is the one call a page makes: picks + tags + weights + alpha -> the ranked
lists of all modes, computed in one vectorised pass.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.dataset import tag_matrix as item_tag_matrix
from .models.base import LatentRecommender, Recommender, top_k

MODES: tuple[str, ...] = ("standard", "postfilter", "tune", "tune+post")
LATENT_MODES: tuple[str, ...] = ("tune", "tune+post")
CENTROID_RULES: tuple[str, ...] = ("share", "dominant")

#: Documented ranges of the knobs (inclusive). alpha is a strength toward the tags; steering away
#: from a tag is not offered (pick other tags instead).
ALPHA_RANGE: tuple[float, float] = (0.0, 100.0)
BETA_RANGE: tuple[float, float] = (1e-3, 100.0)
POST_FACTOR_RANGE: tuple[float, float] = (0.0, 100.0)

#: Curation defaults (DESIGN.md): keep at most this many tags ...
DEFAULT_MAX_TAGS = 50
#: ... each on at least this many items ...
DEFAULT_MIN_ITEMS = 5
#: ... with at least this many supporting training users (to form a centroid).
DEFAULT_MIN_USERS = 20


class SteeringError(ValueError):
    """Bad steering input: unknown item or tag, a tag without centroid, a knob out of range, NaN."""


# ---------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------
_SPACES = re.compile(r"[\s_\-]+")


def normalise_tag(tag: str) -> str:
    """Canonical spelling of a tag: lower case, ``-``/``_``/runs of spaces as one space ("Hip-Hop" -> "hip hop")."""
    return _SPACES.sub(" ", str(tag).strip().lower()).strip()


def normalised_item_tags(items: pd.DataFrame) -> list[tuple[str, ...]]:
    """Each item's tags normalised, duplicates after normalisation dropped, order kept."""
    out = []
    for tags in items["tags"]:
        seen: dict[str, None] = {}
        for t in tags:
            n = normalise_tag(t)
            if n:
                seen.setdefault(n, None)
        out.append(tuple(seen))
    return out


def _binary(x: sp.csr_matrix) -> sp.csr_matrix:
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    return x


def tag_counts(histories: sp.csr_matrix, tag_matrix: sp.csr_matrix) -> np.ndarray:
    """(n_users, n_tags): how many of each user's items carry each tag (dense float64)."""
    return np.asarray((_binary(histories) @ tag_matrix).todense(), dtype=np.float64)


def tag_shares(histories: sp.csr_matrix, tag_matrix: sp.csr_matrix) -> np.ndarray:
    """(n_users, n_tags): share of each user's items that carry each tag (0 for empty histories)."""
    counts = tag_counts(histories, tag_matrix)
    n = np.diff(sp.csr_matrix(histories).indptr).astype(np.float64)
    return counts / np.maximum(n, 1.0)[:, None]


def dominant_tags(histories: sp.csr_matrix, tag_matrix: sp.csr_matrix) -> np.ndarray:
    """Index of each user's most frequent tag (-1 for users whose items carry none)."""
    counts = tag_counts(histories, tag_matrix)
    dom = counts.argmax(axis=1)
    dom[counts.max(axis=1) <= 0] = -1
    return dom


def curate_vocabulary(
    item_tags: Sequence[Sequence[str]],
    train_histories: sp.csr_matrix,
    *,
    max_tags: int = DEFAULT_MAX_TAGS,
    min_items: int = DEFAULT_MIN_ITEMS,
    min_users: int = DEFAULT_MIN_USERS,
) -> list[str]:
    """The steering vocabulary: the most frequent (normalised) tags with enough items and users.

    A tag is kept if it is on at least ``min_items`` items and at least ``min_users`` training users
    have one of its items; the ``max_tags`` most frequent (by items, ties alphabetical) of those.
    """
    counts: dict[str, int] = {}
    for tags in item_tags:
        for t in tags:
            counts[t] = counts.get(t, 0) + 1
    candidates = sorted((t for t, c in counts.items() if c >= min_items), key=lambda t: (-counts[t], t))
    if not candidates:
        return []
    users = (tag_counts(train_histories, item_tag_matrix(item_tags, candidates)) > 0).sum(axis=0)
    return [t for t, n in zip(candidates, users, strict=True) if n >= min_users][:max_tags]


# ---------------------------------------------------------------------------------------------
# centroids
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TagCentroids:
    """Latent centroids of tags: ``centroids[j]`` belongs to ``tags[j]``; ``support[j]`` training users."""

    tags: tuple[str, ...]
    centroids: np.ndarray  # (n_tags, d) float32
    support: np.ndarray  # (n_tags,) int64: users that formed the centroid
    rule: str = "share"
    min_users: int = DEFAULT_MIN_USERS

    def index(self) -> dict[str, int]:
        return {t: j for j, t in enumerate(self.tags)}


def compute_tag_centroids(
    latent: np.ndarray,
    train_histories: sp.csr_matrix,
    tag_matrix: sp.csr_matrix,
    vocabulary: Sequence[str],
    *,
    rule: str = "share",
    min_users: int = DEFAULT_MIN_USERS,
) -> TagCentroids:
    """Tag centroids from training users' latent points ``latent`` (n_users, d).

    ``rule="share"``: ``c_t = sum_u s_ut z_u / sum_u s_ut`` with ``s_ut`` the share of user u's items
    carrying t; support = users with ``s_ut > 0``. ``rule="dominant"``: mean of ``z_u`` over users
    whose most frequent tag is t. Tags with fewer than ``min_users`` supporting users get no centroid.
    """
    if rule not in CENTROID_RULES:
        raise SteeringError(f"centroid rule must be one of {list(CENTROID_RULES)}, got {rule!r}")
    latent = np.asarray(latent, dtype=np.float64)
    if latent.shape[0] != train_histories.shape[0]:
        raise ValueError(f"{latent.shape[0]} latent points for {train_histories.shape[0]} training users")
    if rule == "share":
        weights = tag_shares(train_histories, tag_matrix)  # (n_users, n_tags)
    else:
        dom = dominant_tags(train_histories, tag_matrix)
        weights = np.zeros((len(dom), tag_matrix.shape[1]))
        ok = dom >= 0
        weights[np.flatnonzero(ok), dom[ok]] = 1.0
    support = (weights > 0).sum(axis=0)
    keep = np.flatnonzero(support >= min_users)
    w = weights[:, keep]
    cents = (w.T @ latent) / w.sum(axis=0)[:, None]
    return TagCentroids(
        tags=tuple(vocabulary[j] for j in keep),
        centroids=cents.astype(np.float32),
        support=support[keep].astype(np.int64),
        rule=rule,
        min_users=int(min_users),
    )


# ---------------------------------------------------------------------------------------------
# scores -> probabilities, postfilter
# ---------------------------------------------------------------------------------------------
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


def tag_boost(tag_matrix: sp.csr_matrix, tag_cols: np.ndarray, betas: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """(len(alphas), n_items): mean over the chosen tags an item has of ``(1 + beta_t)^alpha``; 1 if none.

    ``tag_cols`` index the chosen tags' columns of ``tag_matrix``; ``betas`` their weights. A row
    whose largest factor would pass ``e^600`` (e.g. tune+post at alpha 100 x factor 100: 2^10000) is
    divided by a constant that brings it to ``e^600``: the ranking is unchanged and every score
    stays finite (factors that end up below ~1e-308 become 0).
    """
    sel = tag_matrix[:, tag_cols]  # (n_items, T)
    count = np.asarray(sel.sum(axis=1)).ravel()
    log_f = np.asarray(alphas, dtype=np.float64)[:, None] * np.log1p(betas[None, :])  # (A, T)
    shift = np.maximum(log_f.max(axis=1, initial=0.0) - _MAX_LOG_BOOST, 0.0)[:, None]  # (A, 1)
    factors = np.exp(log_f - shift)
    total = np.asarray(sel @ factors.T).T  # (A, n_items)
    return np.where(count > 0, total / np.maximum(count, 1.0), np.exp(-shift))


#: Largest log boost factor :func:`tag_boost` returns (scores are probabilities, so products stay finite).
_MAX_LOG_BOOST = 600.0


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass
class ModeList:
    """One column of the page: a ranked list for one mode."""

    mode: str
    items: pd.DataFrame  # rank, item_index, item_id, title, artist, tags, score, on_target
    tag_share: float  # share of the list carrying at least one chosen tag (nan without tags)
    label: str  # what this column is ("tuned", "popular (no picks)", ...)
    note: str = ""


@dataclass
class SteeringResult:
    """All modes for one person: ``lists[mode]`` (modes the model cannot do are absent, see ``unavailable``)."""

    lists: dict[str, ModeList]
    alpha: float
    tags: dict[str, float]
    z: np.ndarray | None = None  # the person's latent point (None: no picks or not latent)
    z_tuned: np.ndarray | None = None  # the tuned point for this alpha
    unavailable: dict[str, str] = field(default_factory=dict)  # mode -> why
    cold_start: str | None = None  # None, "tags" or "popularity"

    def top_item_ids(self, mode: str) -> list[str]:
        return list(self.lists[mode].items["item_id"])


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
    """A model plus what steering needs: tags of items, tag centroids and item popularity.

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
        Mean latent point of the training users (shown on maps; not used for ranking).
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
    ) -> Steerer:
        """Curate the vocabulary and compute centroids from the training users (at training time)."""
        item_tags = normalised_item_tags(items)
        x = _binary(train_histories)
        vocab = curate_vocabulary(item_tags, x, max_tags=max_tags, min_items=min_items, min_users=min_users)
        popularity = np.diff(x.tocsc().indptr).astype(np.float64)
        centroids, population = None, None
        if isinstance(model, LatentRecommender):
            z = model.encode(x)
            population = z.mean(axis=0)
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
        )

    def to_registry(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(extras arrays, JSON info) to store with the model: ``Registry.save(extras=..., info={"steering": ...})``."""
        arrays: dict[str, np.ndarray] = {"steering.item_popularity": self.item_popularity.astype(np.float64)}
        info: dict[str, Any] = {"vocabulary": self.vocabulary, "centroid_tags": [], "rule": None, "min_users": None}
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
        return cls(
            model,
            items,
            vocabulary=list(info.get("vocabulary") or []),
            centroids=centroids,
            item_popularity=arrays["steering.item_popularity"],
            population_point=arrays.get("steering.population_point"),
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
        from .models.sequential import SequentialRecommender

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
    def target_point(self, tags: Mapping[str, float]) -> np.ndarray:
        """``sum_t w_t c_t`` for normalised tags with centroids (weights normalised to sum 1)."""
        rows = np.array([self._cent_index[t] for t in tags], dtype=np.int64)
        w = np.array(list(tags.values()), dtype=np.float64)
        return (w / w.sum()) @ self.centroids.centroids[rows].astype(np.float64)

    def cold_start_points(self, tags: Mapping[str, float], alphas: np.ndarray) -> np.ndarray:
        """(len(alphas), d): ``zbar + alpha (target - zbar)``, the tuned points of a person with no picks."""
        target = self.target_point(tags)
        start = target if self.population_point is None else np.asarray(self.population_point, dtype=np.float64)
        return start[None] + np.asarray(alphas, dtype=np.float64)[:, None] * (target - start)[None]

    def own_points(self, histories: sp.csr_matrix, z: np.ndarray) -> np.ndarray:
        """``sum_t u_t c_t`` per user (tag occurrences among their items); ``z`` for users with none."""
        counts = tag_counts(histories, self.tag_matrix)[:, self._cent_cols]  # (n, T_c)
        total = counts.sum(axis=1, keepdims=True)
        own = (counts / np.maximum(total, 1.0)) @ self.centroids.centroids.astype(np.float64)
        return np.where(total > 0, own, np.asarray(z, dtype=np.float64))

    def tuned_points(self, z: np.ndarray, own: np.ndarray, target: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        """(len(alphas), n, d): ``z + alpha (target - own)`` for every alpha."""
        direction = np.asarray(target, dtype=np.float64)[None, :] - own  # (n, d) (target broadcast per user)
        a = np.asarray(alphas, dtype=np.float64)[:, None, None]
        return np.asarray(z, dtype=np.float64)[None] + a * direction[None]

    def postfilter(self, scores: np.ndarray, tags: Mapping[str, float], alpha: float) -> np.ndarray:
        """Postfiltered probabilities of ``scores`` (n, n_items) toward ``tags`` with strength ``alpha``."""
        p = to_probabilities(scores, self.model.score_kind)
        if not tags or alpha == 0:
            return p
        cols = np.array([self._vocab_index[t] for t in tags], dtype=np.int64)
        return p * tag_boost(self.tag_matrix, cols, np.array(list(tags.values())), np.array([alpha]))[0][None, :]

    def on_target(self, item_indices: np.ndarray, tags: Iterable[str]) -> np.ndarray:
        """Boolean mask of the same shape: the item carries at least one of ``tags``."""
        return self._target_mask(tags)[np.asarray(item_indices, dtype=np.int64)]

    def _target_mask(self, tags: Iterable[str]) -> np.ndarray:
        """(n_items,) bool: the item carries at least one of ``tags``."""
        cols = [self._vocab_index[t] for t in tags]
        if not cols:
            return np.zeros(self.model.n_items_, dtype=bool)
        return np.asarray(self.tag_matrix[:, cols].sum(axis=1)).ravel() > 0

    # ---- the page's call ------------------------------------------------------------------
    def recommend(
        self,
        picks: Sequence[Any] = (),
        tags: Mapping[str, float] | None = None,
        alpha: float = 0.0,
        *,
        k: int = 20,
        post_factor: float = 1.0,
        modes: Sequence[str] = MODES,
    ) -> SteeringResult:
        """Ranked lists of every mode for one person, in one vectorised pass.

        ``picks``: item ids the person likes; ``tags``: tag -> weight beta (> 0); ``alpha`` in
        :data:`ALPHA_RANGE`; ``post_factor`` scales alpha for tune+post's postfilter. Modes the model
        cannot do (tune modes of non-latent models) are reported in ``unavailable``.
        """
        alpha = _check_range("alpha", alpha, ALPHA_RANGE)
        post_factor = _check_range("post_factor", post_factor, POST_FACTOR_RANGE)
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

        z = z_tuned = None
        rows: dict[str, np.ndarray] = {}
        labels: dict[str, tuple[str, str]] = {}
        cold = None
        if x is None:
            cold = "tags" if tags else "popularity"
            base = self.item_popularity[None, :].astype(np.float64)
            pop_p = base / max(base.max(), 1.0)
            what = "popular (no picks)" if tags else "popular (no picks, no tags)"
            for m in ("standard", "postfilter"):
                if m in modes:
                    rows[m] = pop_p if m == "standard" or not tags else pop_p * self._boost(tags, alpha)
                    labels[m] = (
                        what,
                        "nothing picked: training popularity" + (", postfiltered" if m != "standard" else ""),
                    )
            tuned_modes = [m for m in modes if m in LATENT_MODES]
            if tuned_modes and tags and alpha > 0:
                z_tuned = self.cold_start_points(tags, np.array([alpha]))[0]
                p = to_probabilities(self.model.decode(z_tuned[None].astype(np.float32)), self.model.score_kind)
                note = "cold start: the average listener moved toward your tags' centroids (alpha 1 = on them)"
                if "tune" in modes:
                    rows["tune"] = p
                    labels["tune"] = ("from your tags", note)
                if "tune+post" in modes:
                    rows["tune+post"] = p * self._boost(tags, alpha * post_factor)
                    labels["tune+post"] = ("from your tags, postfiltered", note + ", then postfiltered")
            else:
                for m in tuned_modes:
                    rows[m] = pop_p
                    labels[m] = (what, "nothing picked and no tags: training popularity")
        else:
            if self.latent and isinstance(self.model, LatentRecommender):
                z = self.model.encode(x).astype(np.float64)  # (1, d)
                points = [z]
                if tags and alpha > 0 and any(m in LATENT_MODES for m in modes):
                    own = self.own_points(x, z)
                    z_tuned = self.tuned_points(z, own, self.target_point(tags), np.array([alpha]))[0]
                    points.append(z_tuned)
                scores = self.model.decode(np.concatenate(points).astype(np.float32))
                std_scores, tuned_scores = scores[:1], scores[-1:]
                z = z[0]
                z_tuned = z_tuned[0] if z_tuned is not None else z
            else:
                std_scores = self._plain_scores(picks, x)
                tuned_scores = std_scores
            p_std = to_probabilities(std_scores, self.model.score_kind)
            p_tuned = to_probabilities(tuned_scores, self.model.score_kind) if tuned_scores is not std_scores else p_std
            row_of = {
                "standard": lambda: p_std,
                "postfilter": lambda: p_std * self._boost(tags, alpha),
                "tune": lambda: p_tuned,
                "tune+post": lambda: p_tuned * self._boost(tags, alpha * post_factor),
            }
            names = {"standard": "standard", "postfilter": "postfiltered", "tune": "tuned", "tune+post": "tune+post"}
            for m in modes:
                rows[m] = row_of[m]()
                labels[m] = (names[m], "")
        order = [m for m in modes if m in rows]
        stacked = np.concatenate([rows[m] for m in order])
        exclude = None
        if x is not None:
            exclude = sp.csr_matrix(sp.vstack([x] * len(order)))
        idx, sc = top_k(stacked, k, exclude=exclude)
        lists = {}
        on_target = self._target_mask(tags)
        for r, m in enumerate(order):
            frame = self._frame(idx[r], sc[r], on_target)
            share = float(frame["on_target"].mean()) if tags else float("nan")
            lists[m] = ModeList(mode=m, items=frame, tag_share=share, label=labels[m][0], note=labels[m][1])
        return SteeringResult(
            lists=lists, alpha=alpha, tags=tags, z=z, z_tuned=z_tuned, unavailable=unavailable, cold_start=cold
        )

    def _plain_scores(self, picks: Sequence[Any], x: sp.csr_matrix) -> np.ndarray:
        """``model.score`` of the picks; sequential models get them as an ordered session."""
        if self.sequential:
            from .models.sequential import score_sequences

            return score_sequences(self.model, [self.item_indices(picks, ordered=True).tolist()])
        return self.model.score(x)

    def _boost(self, tags: Mapping[str, float], alpha: float) -> np.ndarray:
        if not tags or alpha == 0:
            return np.ones((1, self.model.n_items_))
        cols = np.array([self._vocab_index[t] for t in tags], dtype=np.int64)
        return tag_boost(self.tag_matrix, cols, np.array(list(tags.values()), dtype=np.float64), np.array([alpha]))

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

    # ---- calibrated strength ------------------------------------------------------------------
    def shares_over_alpha(
        self,
        picks: Sequence[Any],
        tags: Mapping[str, float],
        alphas: Sequence[float],
        *,
        mode: str = "tune",
        k: int = 20,
        post_factor: float = 1.0,
    ) -> np.ndarray:
        """Share of the top ``k`` carrying a chosen tag, for every alpha (one batched decode)."""
        if mode not in MODES or mode == "standard":
            raise SteeringError(f"mode must be one of {list(MODES[1:])}, got {mode!r}")
        if mode in LATENT_MODES and not self.latent:
            raise SteeringError(f"{mode} needs a latent model with tag centroids")
        alphas = np.array([_check_range("alpha", a, ALPHA_RANGE) for a in alphas])
        tags = self.check_tags(tags, need_centroids=mode in LATENT_MODES)
        if not tags:
            raise SteeringError("choose at least one tag to calibrate toward")
        x = self.history(picks) if len(picks) else None
        if mode == "postfilter":
            base = self._plain_scores(picks, x) if x is not None else self.item_popularity[None, :]
            p = to_probabilities(base, self.model.score_kind)
            cols = np.array([self._vocab_index[t] for t in tags], dtype=np.int64)
            p = p * tag_boost(self.tag_matrix, cols, np.array(list(tags.values())), alphas)
        else:
            points = self.trajectory(picks, tags, alphas).astype(np.float32)
            p = to_probabilities(self.model.decode(points), self.model.score_kind)
            if mode == "tune+post":
                cols = np.array([self._vocab_index[t] for t in tags], dtype=np.int64)
                p = p * tag_boost(self.tag_matrix, cols, np.array(list(tags.values())), alphas * post_factor)
        exclude = sp.csr_matrix(sp.vstack([x] * len(alphas))) if x is not None else None
        idx, _ = top_k(p, k, exclude=exclude)
        return self.on_target(idx, tags).mean(axis=1)

    def alpha_for_share(
        self,
        picks: Sequence[Any],
        tags: Mapping[str, float],
        share: float,
        *,
        mode: str = "tune",
        k: int = 20,
        max_alpha: float = 8.0,
        post_factor: float = 1.0,
    ) -> float | None:
        """The smallest alpha (to 0.01, up to ``max_alpha``) whose list reaches the target tag ``share``.

        The calibrated strength of DESIGN.md: alpha means different things per mode and model, a
        share does not. Returns None when even ``max_alpha`` does not reach it. Two batched passes:
        a coarse grid of 41 alphas, then 41 between the last miss and the first hit.
        """
        share = _check_range("target share", share, (0.0, 1.0))
        max_alpha = _check_range("max_alpha", max_alpha, ALPHA_RANGE)
        lo, hi = 0.0, max_alpha
        for _ in range(2):
            grid = np.linspace(lo, hi, 41)
            got = self.shares_over_alpha(picks, tags, grid, mode=mode, k=k, post_factor=post_factor)
            hit = np.flatnonzero(got >= share)
            if not len(hit):
                return None
            j = int(hit[0])
            if j == 0:
                return float(round(grid[0], 2))
            lo, hi = float(grid[j - 1]), float(grid[j])
        return float(np.ceil(hi * 100) / 100)

    # ---- trajectories (the map page) -------------------------------------------------------
    def trajectory(self, picks: Sequence[Any], tags: Mapping[str, float], alphas: Sequence[float]) -> np.ndarray:
        """Tuned latent points (len(alphas), d) of a person for each alpha (the map's trajectory)."""
        if not self.latent:
            raise SteeringError("trajectories need a latent model with tag centroids")
        alphas = np.array([_check_range("alpha", a, ALPHA_RANGE) for a in alphas])
        tags = self.check_tags(tags, need_centroids=True)
        if not tags:
            raise SteeringError("choose at least one tag to see a trajectory")
        if not len(picks):
            return self.cold_start_points(tags, alphas)
        target = self.target_point(tags)
        x = self.history(picks)
        z = self.model.encode(x).astype(np.float64)
        return self.tuned_points(z, self.own_points(x, z), target, alphas)[:, 0]


def steering_registry_parts(
    model: Recommender, train_histories: sp.csr_matrix, items: pd.DataFrame, **kwargs: Any
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute and package the steering data of a freshly trained model for ``Registry.save``."""
    return Steerer.from_training(model, train_histories, items, **kwargs).to_registry()
