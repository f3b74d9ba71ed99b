"""The UMAP map of a model's latent space: computed at training time, stored with the model.

What is on the map
------------------
A :class:`~recsys.models.base.LatentRecommender` puts every history at a latent point
``encode(history)``. The map shows two kinds of stored points, fitted together by one UMAP to 2-D:

* **items**: an item's latent point is the encoding of a one-item history (:func:`item_points`);
* **training users**: the encoding of their whole history.

When there are more than ``max_items`` items, the most popular ones (most training users) are kept:
they make up most of every history, so the map is detailed where user points land, and the one-item
encodings of rare items rest on weights that saw few gradients and are mostly noise. Ties in
popularity, and the sample of ``max_users`` training users, are drawn from ``seed``, so the same
inputs always give the same map.

How a new point is placed
-------------------------
The fitted UMAP object is not stored (it would be a pickle), so points that were not fitted (a
person's picks, their tuned point at every α, tag centroids) are placed by a fixed rule
(:func:`place`): **find the k = 10 stored points (items and users) nearest to the new point in the
latent space (Euclidean distance), and put it at the mean of their 2-D map positions weighted by
inverse latent distance.** A point that coincides with a stored one gets exactly that point's map
position (the mean position, if several stored points coincide with it). The rule moves continuously
as long as the k nearest neighbours stay the same, and the placed point always lies inside the
convex hull of its neighbours' positions, so a point moving through the latent space moves through
the map without jumping off it. It is an interpolation, not UMAP's own ``transform``: a point far
from everything stored still lands among its nearest stored points.

Which space is mapped
---------------------
By default (``space="scores"``) the map shows the space the model's recommendations come from
(:func:`map_space`). For most latent models that is the latent space itself. A flow model's latent
point is ``z = f(u)``, a Glow ``f`` applied to the code ``u`` the scores are computed from (the pooled
item embeddings of ``flow``, the MLP bottleneck of ``mlp_flow``): ``f`` Gaussianises the codes and in
doing so spreads them into a uniform cloud in which tags no longer form neighbourhoods (on the demo's
flow model, 22 % of a song's 10 nearest songs share its first tag in ``z`` against 90 % in ``u``;
``benchmarks/results/map_quality.md``). Its map is therefore fitted on ``u = f^{-1}(z)``, and every
point placed on it (a person's tuned ``z``, the tag centroids) is first taken through ``f^{-1}``
(:func:`to_map_space`); ``space="latent"`` maps ``z`` itself. ``LatentMap.space`` records which.
The low-rank DLAE scores ``z @ W`` with no bias, so its ranking depends only on the direction of
``z`` while the length of an item's code follows its popularity: Euclidean neighbours in ``z`` are
songs of similar popularity (9 % share a tag), neighbours in ``z / ||z||`` songs of one style (62 %).
Its map is of the direction (``"direction"``).

Map quality
-----------
:func:`neighbour_tag_agreement`: for each item, the share of its k nearest items (Euclidean) that
share its first tag, averaged over items; computed on the 2-D map and on the mapped space, beside a
random layout's figure (``benchmarks/map_quality.py``).

Tag centroids (``extra_points`` of :func:`build_map`) are placed with the same rule rather than
fitted jointly: a centroid is an average of many item points and has no neighbourhood of its own
for UMAP to preserve, and placing it the way a person's point is placed keeps "my point is near the
jazz centroid" on the map consistent with what the rule does everywhere else.

Storage
-------
:meth:`LatentMap.to_arrays` gives float/int arrays under keys ``map.*`` for
``Registry.save(..., extras=...)``; :meth:`LatentMap.from_arrays` reads them back from
``LoadedModel.extras``. UMAP (``umap-learn``) is imported only when a map is built with the default
reducer; its first use in a process costs several seconds of numba compilation.

Example
-------
>>> m = build_map(model, split.train.interactions)                        # doctest: +SKIP
>>> registry.save(model, dataset=split.train, extras=m.to_arrays())       # doctest: +SKIP
>>> m = LatentMap.from_arrays(registry.load(model_id).extras)             # doctest: +SKIP
>>> xy = m.place(model.encode(histories))                                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from .models.base import LatentRecommender

logger = logging.getLogger("recsys")

#: Prefix of every key :meth:`LatentMap.to_arrays` writes.
PREFIX = "map."

#: Defaults of :func:`build_map`: the whole demo catalogue (2400 training users, 4828 songs) minus
#: 400 users; the demo's five latent models get their maps in ~35 s on 2 shared CPU cores, numba
#: compilation included (measurements in the ``build_map`` docstring).
DEFAULT_MAX_USERS = 2000
DEFAULT_MAX_ITEMS = 5000
DEFAULT_N_EPOCHS = 200
DEFAULT_K = 10
#: Items whose mean map position places a person's point on a direction map (:meth:`LatentMap.place_path`).
PATH_TOP_K = 20

#: Up to this many query points, :func:`place` and :func:`to_map_space` stay on one thread (no BLAS
#: call, one torch thread): a slider move places one point.
SMALL_QUERY = 64

#: ``build_map(space=...)``: the space the model's scores come from, or the steering latent ``z``.
SPACES = ("scores", "latent")
#: ``LatentMap.space``: what the stored latent points are (stored as the index in this tuple).
MAP_SPACES = ("latent", "pre-flow", "direction")

#: Families whose scores are a linear function of ``z`` without a bias (``decode(z) = z @ W``): their
#: ranking depends only on the direction of ``z``, so their map is of ``z / ||z||``.
DIRECTION_FAMILIES = ("dlae",)

#: Steps reported to ``progress`` by :func:`build_map`, in order.
MAP_STEPS = ("encode items", "encode users", "fit 2-D layout", "place extra points")

#: ``progress(step, elapsed_seconds, info)``: ``step`` of ``info["steps"]`` is done; ``info["stage"]``
#: names it (one of :data:`MAP_STEPS`).
MapProgress = Callable[[int, float, dict], None]


class Reducer(Protocol):
    def fit_transform(self, x: np.ndarray) -> np.ndarray: ...


#: ``reducer_factory(n_neighbors=, min_dist=, n_epochs=, random_state=)`` -> an object with
#: ``fit_transform(x) -> (n, 2)``.
ReducerFactory = Callable[..., Reducer]


class ExactKnnUMAP:
    """``umap.UMAP`` to 2-D on an exact Euclidean k-nearest-neighbour graph computed by scikit-learn.

    UMAP's own neighbour search is either pynndescent (above 4096 points; its numba compilation is
    most of the 25-45 s a process's first UMAP costs) or, below, a pairwise-distance loop that calls
    a Python function per pair (~13 s for 4000 points). A brute-force BLAS search of a few thousand
    points takes well under a second, is exact and deterministic, and UMAP accepts it as
    ``precomputed_knn``; only the graph and layout code is then compiled.
    """

    def __init__(self, *, n_neighbors: int, min_dist: float, n_epochs: int, random_state: int):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.random_state = random_state

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        import warnings

        from sklearn.neighbors import NearestNeighbors

        x = np.ascontiguousarray(x, dtype=np.float32)
        k = max(2, min(self.n_neighbors, x.shape[0]))
        # querying the fitted set itself: each point is its own first neighbour, as in UMAP's search
        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors(x)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(knn_search_index|n_jobs|precomputed_knn).*")
            import umap

            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=k,
                min_dist=self.min_dist,
                n_epochs=self.n_epochs,
                metric="euclidean",
                random_state=self.random_state,
                precomputed_knn=(idx.astype(np.int32), np.maximum(dist, 0).astype(np.float32)),
            )
            return reducer.fit_transform(x)


def umap_reducer(*, n_neighbors: int, min_dist: float, n_epochs: int, random_state: int) -> Reducer:
    """The default reducer: :class:`ExactKnnUMAP` (seeded, hence single-threaded UMAP optimisation)."""
    return ExactKnnUMAP(n_neighbors=n_neighbors, min_dist=min_dist, n_epochs=n_epochs, random_state=random_state)


def pca_reducer(*, n_neighbors: int, min_dist: float, n_epochs: int, random_state: int) -> Reducer:
    """A cheap stand-in for tests: PCA to 2-D (no numba compilation). Ignores the UMAP parameters."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=random_state)


# ---- latent points ----------------------------------------------------------------------------
def item_points(
    model: LatentRecommender, n_items: int | None = None, *, items: np.ndarray | None = None, batch_size: int = 1024
) -> np.ndarray:
    """Latent points of items: ``encode`` of one-item histories (rows of the identity), in batches.

    Returns ``(n_items, d)`` float32, or ``(len(items), d)`` for the item indices ``items``.
    ``n_items`` defaults to the model's.
    """
    if not isinstance(model, LatentRecommender):
        raise TypeError(f"item_points needs a LatentRecommender (with encode), got {type(model).__name__}")
    model._check_fitted()
    n_items = int(model.n_items_ if n_items is None else n_items)
    if n_items != model.n_items_:
        raise ValueError(f"n_items={n_items} but the model knows {model.n_items_} items")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    idx = np.arange(n_items) if items is None else np.asarray(items, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise IndexError(f"item indices must be in [0, {n_items}), got range [{idx.min()}, {idx.max()}]")
    eye = sp.identity(n_items, dtype=np.float32, format="csr")
    parts = [model.encode(eye[idx[s : s + batch_size]]) for s in range(0, len(idx), batch_size)]
    if not parts:
        return np.zeros((0, model.encode(eye[:1]).shape[1]), np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _encode_batches(model: LatentRecommender, x: sp.csr_matrix, batch_size: int) -> np.ndarray:
    return np.concatenate([model.encode(x[s : s + batch_size]) for s in range(0, x.shape[0], batch_size)])


# ---- which space is mapped ----------------------------------------------------------------------
def _flow_of(model: Any):
    net = getattr(model, "module_", None)
    flow = getattr(net, "flow", None)
    return flow if flow is not None and callable(getattr(flow, "inverse", None)) else None


def map_space(model: LatentRecommender) -> str:
    """The space a map of ``model``'s recommendations is fitted in (module docstring).

    ``"pre-flow"`` when the model's latent point is a flow of the code its scores come from (a
    ``module_.flow`` with ``inverse``: the ``flow`` and ``mlp_flow`` families); ``"direction"`` for
    :data:`DIRECTION_FAMILIES` (scores linear in ``z``, no bias); else ``"latent"``.
    """
    if _flow_of(model) is not None:
        return "pre-flow"
    return "direction" if getattr(model, "family", None) in DIRECTION_FAMILIES else "latent"


def to_map_space(model: LatentRecommender, points: np.ndarray, space: str, *, batch_size: int = 4096) -> np.ndarray:
    """Latent points ``z`` ``(n, d)`` in a map's ``space``: ``f^{-1}(z)`` for ``"pre-flow"``, ``z / ||z||``
    for ``"direction"`` (a zero row stays zero), else ``z``.

    Returns float32 ``(n, d)`` (``(1, d)`` for a single point).
    """
    if space not in MAP_SPACES:
        raise ValueError(f"space must be one of {MAP_SPACES}, got {space!r}")
    z = np.asarray(points, dtype=np.float32)
    if z.ndim == 1:
        z = z[None, :]
    if space == "latent" or len(z) == 0:
        return z
    if space == "direction":
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return np.ascontiguousarray(z / np.where(norm > 0, norm, 1.0), dtype=np.float32)
    flow = _flow_of(model)
    if flow is None:
        raise ValueError(f"a pre-flow map needs a flow model, got {type(model).__name__}")
    import torch

    param = next(flow.parameters(), None)
    device = param.device if param is not None else "cpu"
    # a few points (a slider move): one thread; two wait on each other on a busy 2-core machine
    # (measured 2-40 ms with one thread against 60-1300 ms with two at load 12)
    threads = torch.get_num_threads()
    if len(z) <= SMALL_QUERY and threads > 1:
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            parts = [
                flow.inverse(torch.from_numpy(np.ascontiguousarray(z[s : s + batch_size])).to(device)).cpu().numpy()
                for s in range(0, len(z), batch_size)
            ]
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


# ---- map quality ----------------------------------------------------------------------------------
def neighbour_tag_agreement(points: np.ndarray, labels, k: int = 10, *, chunk: int = 1024) -> np.ndarray:
    """Per point, the share of its ``k`` nearest other points (Euclidean) whose label equals its own.

    ``points`` ``(n, m)`` (a 2-D map or a latent space), ``labels`` ``(n,)`` (an item's first tag).
    Brute force in float64, ``chunk`` rows at a time; a point is never its own neighbour, and ties
    at the k-th distance are broken by index order of ``argpartition``. The mean of the result is the
    map quality figure of ``benchmarks/map_quality.py``. Returns float64 ``(n,)``.
    """
    x = np.asarray(points, dtype=np.float64)
    lab = np.asarray(labels)
    if x.ndim != 2 or lab.shape != (x.shape[0],):
        raise ValueError(f"points must be (n, m) and labels (n,); got {x.shape} and {lab.shape}")
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must be in [1, n - 1] = [1, {x.shape[0] - 1}], got {k}")
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(x.shape[0], dtype=np.float64)
    for s in range(0, x.shape[0], chunk):
        d2 = sq[None, :] - 2.0 * (x[s : s + chunk] @ x.T) + sq[s : s + chunk, None]
        rows = np.arange(d2.shape[0])
        d2[rows, s + rows] = np.inf
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out[s : s + chunk] = (lab[nn] == lab[s : s + chunk, None]).mean(axis=1)
    return out


# ---- placement --------------------------------------------------------------------------------
def place(
    points: np.ndarray,
    stored_latent: np.ndarray,
    stored_coords: np.ndarray,
    k: int = DEFAULT_K,
    *,
    chunk: int = 1024,
    stored_sq: np.ndarray | None = None,
) -> np.ndarray:
    """Map positions ``(n, 2)`` of new latent ``points`` ``(n, d)`` (the rule in the module docstring).

    Inverse-distance weighted mean of the 2-D ``stored_coords`` of the ``k`` stored latent points
    nearest (Euclidean) to each point; exact matches take their stored position. Brute-force nearest
    neighbours in float64, ``chunk`` query points at a time. ``stored_sq``: the squared norms of
    ``stored_latent`` rows if known (a map keeps them: the per-call cost of a few points).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[None, :]
    ref = np.asarray(stored_latent, dtype=np.float64)
    xy = np.asarray(stored_coords, dtype=np.float64)
    if ref.ndim != 2 or xy.shape != (ref.shape[0], 2):
        raise ValueError(f"stored_latent must be (m, d) and stored_coords (m, 2); got {ref.shape} and {xy.shape}")
    if ref.shape[0] == 0:
        raise ValueError("no stored points to place new points among")
    if pts.ndim != 2 or pts.shape[1] != ref.shape[1]:
        raise ValueError(f"points must be (n, {ref.shape[1]}) like the stored latent points, got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or infinite values")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), ref.shape[0])
    ref_sq = np.einsum("ij,ij->i", ref, ref) if stored_sq is None else stored_sq
    out = np.empty((pts.shape[0], 2), dtype=np.float64)
    for s in range(0, pts.shape[0], chunk):
        q = pts[s : s + chunk]
        # candidates from the expanded squared distance, then exact distances of the k candidates
        # (the expansion loses precision near zero; the direct difference is exactly 0 for a match)
        cross = np.einsum("nd,md->nm", q, ref) if len(q) <= SMALL_QUERY else q @ ref.T  # einsum: no BLAS threads
        d2 = ref_sq[None, :] - 2.0 * cross
        if k < ref.shape[0]:
            nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        else:
            nn = np.broadcast_to(np.arange(k), d2.shape)
        dist = np.linalg.norm(ref[nn] - q[:, None, :], axis=2)
        exact = dist == 0.0
        has_exact = exact.any(axis=1)
        with np.errstate(divide="ignore"):
            w = np.where(has_exact[:, None], exact.astype(np.float64), 1.0 / dist)
        w /= w.sum(axis=1, keepdims=True)
        out[s : s + chunk] = np.einsum("nk,nkc->nc", w, xy[nn])
    return out


# ---- the map ----------------------------------------------------------------------------------
@dataclass
class LatentMap:
    """A stored 2-D map of a latent space.

    Attributes
    ----------
    item_index : (n_i,) int64
        Item (column) indices on the map, ascending.
    item_coords : (n_i, 2) float32
    item_latent : (n_i, d) float32
        Their latent points (one-item histories), used to place new points.
    user_index : (n_u,) int64
        Row indices of the sampled training users, ascending.
    user_coords : (n_u, 2) float32
    user_latent : (n_u, d) float32
    extra_coords : (n_e, 2) float32
        Map positions of ``build_map``'s ``extra_points`` (placed, not fitted); ``(0, 2)`` if none.
    n_neighbors, min_dist, n_epochs, seed, k :
        UMAP parameters and seed the map was fitted with; ``k`` is the placement rule's.
    space : {"latent", "pre-flow"}
        What ``item_latent`` / ``user_latent`` are: the model's latent points ``z``, or a flow model's
        ``f^{-1}(z)``; :func:`to_map_space` takes new latent points there before :meth:`place`.
    """

    item_index: np.ndarray
    item_coords: np.ndarray
    item_latent: np.ndarray
    user_index: np.ndarray
    user_coords: np.ndarray
    user_latent: np.ndarray
    extra_coords: np.ndarray
    n_neighbors: int
    min_dist: float
    n_epochs: int
    seed: int
    k: int = DEFAULT_K
    space: str = "latent"

    _ARRAYS = ("item_index", "item_coords", "item_latent", "user_index", "user_coords", "user_latent", "extra_coords")
    _PARAMS = (("n_neighbors", int), ("min_dist", float), ("n_epochs", int), ("seed", int), ("k", int))

    @property
    def latent_dim(self) -> int:
        return int(self.item_latent.shape[1])

    @property
    def stored_latent(self) -> np.ndarray:
        """Latent points of everything on the map, items first: ``(n_i + n_u, d)``."""
        return np.concatenate([self.item_latent, self.user_latent])

    @property
    def stored_coords(self) -> np.ndarray:
        """Their map positions, in the same order: ``(n_i + n_u, 2)``."""
        return np.concatenate([self.item_coords, self.user_coords])

    def _placement_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stored latent float64, stored coords float64, squared norms), kept until the arrays change."""
        key = tuple(id(getattr(self, n)) for n in ("item_latent", "user_latent", "item_coords", "user_coords"))
        cached = self.__dict__.get("_placement")
        if cached is None or cached[0] != key:
            ref = np.asarray(self.stored_latent, dtype=np.float64)
            cached = (key, ref, np.asarray(self.stored_coords, np.float64), np.einsum("ij,ij->i", ref, ref))
            self.__dict__["_placement"] = cached
        return cached[1], cached[2], cached[3]

    def place(self, points: np.ndarray, k: int | None = None) -> np.ndarray:
        """Map positions ``(n, 2)`` of new latent points: :func:`place` among the stored items and users."""
        ref, xy, sq = self._placement_arrays()
        return place(points, ref, xy, self.k if k is None else k, stored_sq=sq)

    def place_latent(self, model: LatentRecommender, points: np.ndarray) -> np.ndarray:
        """Map positions ``(n, 2)`` of ``model``'s latent points ``z``: taken to :attr:`space`, then placed."""
        return self.place(to_map_space(model, points, self.space))

    def place_path(
        self, model: LatentRecommender, points: np.ndarray, exclude: np.ndarray | None = None, top_k: int = PATH_TOP_K
    ) -> np.ndarray:
        """Map positions ``(n, 2)`` of a person's points ``z`` (their point and tuned path).

        As :meth:`place_latent`, except on a ``"direction"`` map: there each point sits at the mean map
        position of the ``top_k`` mapped items the model ranks highest for it (``exclude``: item columns
        left out, the person's own picks), i.e. where its list lives on the map. Why: a direction map is
        of many dimensions (the DLAE's 1,024), where a tuned ``z`` stays nearest the same stored points
        while its list changes, so the nearest-neighbour rule kept the path still (0.1 % of the map on the
        demo's DLAE, against 12.6 % by this rule).
        """
        if self.space != "direction":
            return self.place_latent(model, points)
        z = np.asarray(points, dtype=np.float32)
        z = z[None, :] if z.ndim == 1 else z
        scores = np.array(model.decode(z), dtype=np.float32, copy=True)
        mapped = np.zeros(scores.shape[1], dtype=bool)
        mapped[self.item_index] = True
        if exclude is not None:
            mapped[np.asarray(exclude, dtype=np.int64)] = False
        if not mapped.any():
            return self.place_latent(model, points)
        scores[:, ~mapped] = -np.inf
        k = int(min(top_k, mapped.sum()))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        row = np.full(scores.shape[1], -1, dtype=np.int64)
        row[self.item_index] = np.arange(len(self.item_index))
        return self.item_coords[row[top]].mean(axis=1).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for ``Registry.save(info=...)``: sizes, UMAP parameters, placement rule."""
        return {
            "n_items": len(self.item_index),
            "n_users": len(self.user_index),
            "n_extra": len(self.extra_coords),
            "latent_dim": self.latent_dim,
            "umap": {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist, "n_epochs": self.n_epochs},
            "seed": self.seed,
            "placement": f"inverse-distance weighted mean of the {self.k} nearest stored latent points' positions",
            "space": self.space,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``Registry.save(extras=...)``: ``map.<field>``; parameters as 1-element arrays."""
        out = {PREFIX + name: np.ascontiguousarray(getattr(self, name)) for name in self._ARRAYS}
        for name, kind in self._PARAMS:
            out[PREFIX + name] = np.asarray([getattr(self, name)], dtype=np.float64 if kind is float else np.int64)
        out[PREFIX + "space"] = np.asarray([MAP_SPACES.index(self.space)], dtype=np.int64)
        return out

    @classmethod
    def has_map(cls, arrays: dict[str, np.ndarray]) -> bool:
        """Whether ``arrays`` (e.g. ``LoadedModel.extras``) hold a stored map."""
        return all(PREFIX + name in arrays for name in cls._ARRAYS)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LatentMap:
        """Rebuild from :meth:`to_arrays` output (other keys are ignored). Raises KeyError/ValueError."""
        missing = [PREFIX + n for n in (*cls._ARRAYS, *(p for p, _ in cls._PARAMS)) if PREFIX + n not in arrays]
        if missing:
            raise KeyError(f"stored map lacks {missing}; rebuild the map (recsys.projection.build_map)")
        fields: dict[str, Any] = {name: np.asarray(arrays[PREFIX + name]) for name in cls._ARRAYS}
        for name, kind in cls._PARAMS:
            fields[name] = kind(np.asarray(arrays[PREFIX + name]).reshape(-1)[0])
        if PREFIX + "space" in arrays:  # maps stored before the field existed are of the latent space
            code = int(np.asarray(arrays[PREFIX + "space"]).reshape(-1)[0])
            if not 0 <= code < len(MAP_SPACES):
                raise ValueError(f"stored map: space code {code} is not one of 0..{len(MAP_SPACES) - 1}")
            fields["space"] = MAP_SPACES[code]
        m = cls(**fields)
        m._check()
        return m

    def _check(self) -> None:
        ni, nu = len(self.item_index), len(self.user_index)
        shapes = {
            "item_coords": (ni, 2),
            "item_latent": (ni, self.latent_dim),
            "user_coords": (nu, 2),
            "user_latent": (nu, self.latent_dim),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"stored map: {name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.extra_coords.ndim != 2 or self.extra_coords.shape[1] != 2:
            raise ValueError(f"stored map: extra_coords has shape {self.extra_coords.shape}, expected (n, 2)")


def _sample_items(popularity: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    n = len(popularity)
    if n <= cap:
        return np.arange(n)
    tiebreak = rng.permutation(n)
    order = np.lexsort((tiebreak, -popularity))  # most popular first, ties in seeded random order
    return np.sort(order[:cap])


def build_map(
    model: LatentRecommender,
    train_histories: sp.csr_matrix,
    *,
    max_users: int = DEFAULT_MAX_USERS,
    max_items: int = DEFAULT_MAX_ITEMS,
    extra_points: np.ndarray | None = None,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int = DEFAULT_N_EPOCHS,
    seed: int = 0,
    k: int = DEFAULT_K,
    batch_size: int = 1024,
    reducer_factory: ReducerFactory | None = None,
    progress: MapProgress | None = None,
    space: str = "scores",
) -> LatentMap:
    """Fit the 2-D map of ``model``'s latent space on its items and training users.

    Parameters
    ----------
    model : LatentRecommender
        Fitted.
    train_histories : CSR (n_users, n_items)
        The training users' histories (``split.train.interactions``); also gives item popularity.
    max_users, max_items : int
        Caps: a seeded random sample of users (with a non-empty history), the most popular items.
    extra_points : (n_e, d), optional
        Latent points to place on the finished map (tag centroids); see the module docstring.
    space : {"scores", "latent"}
        ``"scores"``: map the space the model's scores come from (:func:`map_space`: a flow model's
        pre-flow codes); ``"latent"``: the latent points ``z`` themselves.
    n_neighbors, min_dist, n_epochs : UMAP parameters (n_neighbors is clipped to the number of points - 1).
    seed : int
        Seeds the samples and UMAP (the same inputs and seed give the same map).
    k : int
        Neighbours of the placement rule, stored with the map.
    reducer_factory : callable, optional
        ``reducer_factory(n_neighbors=, min_dist=, n_epochs=, random_state=)`` -> object with
        ``fit_transform``; default :func:`umap_reducer`. Tests pass :func:`pca_reducer`.
    progress : callable, optional
        ``progress(step, elapsed, {"stage": ..., "steps": 4})`` after each of :data:`MAP_STEPS`.

    Cost (the demo's data: 2400 training users x 4828 songs after the split, the default 64-d
    MLP, 2 CPU cores shared with other work): a map of 2000 users + 4828 items (the defaults) takes
    ~4.5 s (~75 % of it UMAP's 200 layout epochs, which a seeded UMAP runs single-threaded, so
    ``NUMBA_NUM_THREADS`` 1 or 2 alike); the first map of a process adds ~8-10 s of numba
    compilation. Five maps in one process: ~32-36 s. 500 epochs (UMAP's own default at this size)
    cost ~11 s per map and did not improve trustworthiness (0.971 at 200 and 500 epochs).
    """
    if not isinstance(model, LatentRecommender):
        raise TypeError(f"build_map needs a LatentRecommender (with encode), got {type(model).__name__}")
    model._check_fitted()
    if not sp.issparse(train_histories):
        raise TypeError(f"train_histories must be a scipy CSR matrix, got {type(train_histories).__name__}")
    x = sp.csr_matrix(train_histories)
    if x.shape[1] != model.n_items_:
        raise ValueError(f"train_histories have {x.shape[1]} item columns but the model knows {model.n_items_} items")
    if max_users < 0 or max_items < 0 or max_users + max_items < 3:
        raise ValueError(
            f"max_users and max_items must be >= 0 with at least 3 points in all, got {max_users}, {max_items}"
        )
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be >= 2, got {n_neighbors}")
    if min_dist < 0:
        raise ValueError(f"min_dist must be >= 0, got {min_dist}")
    if n_epochs < 1:
        raise ValueError(f"n_epochs must be >= 1, got {n_epochs}")
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    stored_space = map_space(model) if space == "scores" else "latent"
    factory = umap_reducer if reducer_factory is None else reducer_factory
    start = time.perf_counter()
    rng = np.random.default_rng(seed)

    def report(step: int) -> None:
        if progress is not None:
            progress(step, time.perf_counter() - start, {"stage": MAP_STEPS[step - 1], "steps": len(MAP_STEPS)})

    popularity = np.bincount(x.indices, minlength=x.shape[1])
    item_index = _sample_items(popularity, max_items, rng).astype(np.int64)
    item_latent = to_map_space(model, item_points(model, items=item_index, batch_size=batch_size), stored_space)
    report(1)

    active = np.flatnonzero(np.diff(x.indptr) > 0)
    user_index = np.sort(rng.choice(active, size=max_users, replace=False)) if len(active) > max_users else active
    user_index = user_index.astype(np.int64)
    user_latent = (
        to_map_space(model, _encode_batches(model, x[user_index], batch_size), stored_space)
        if len(user_index)
        else np.zeros((0, item_latent.shape[1]), np.float32)
    )
    report(2)

    latent = np.ascontiguousarray(np.concatenate([item_latent, user_latent]), dtype=np.float32)
    if latent.shape[0] < 3:
        raise ValueError(f"a map needs at least 3 points, got {latent.shape[0]} (items with users, users with items)")
    if not np.isfinite(latent).all():
        raise ValueError("the model's latent points contain NaN or infinite values; retrain it")
    nn = int(min(n_neighbors, latent.shape[0] - 1))
    reducer = factory(n_neighbors=nn, min_dist=float(min_dist), n_epochs=int(n_epochs), random_state=int(seed))
    coords = np.asarray(reducer.fit_transform(latent), dtype=np.float32)
    if coords.shape != (latent.shape[0], 2):
        raise RuntimeError(f"reducer returned shape {coords.shape}, expected {(latent.shape[0], 2)}")
    report(3)

    ni = len(item_index)
    m = LatentMap(
        item_index=item_index,
        item_coords=np.ascontiguousarray(coords[:ni]),
        item_latent=item_latent,
        user_index=user_index,
        user_coords=np.ascontiguousarray(coords[ni:]),
        user_latent=np.ascontiguousarray(user_latent, dtype=np.float32),
        extra_coords=np.zeros((0, 2), np.float32),
        n_neighbors=nn,
        min_dist=float(min_dist),
        n_epochs=int(n_epochs),
        seed=int(seed),
        k=int(k),
        space=stored_space,
    )
    if extra_points is not None:
        m.extra_coords = m.place(to_map_space(model, extra_points, stored_space)).astype(np.float32)
    report(4)
    logger.info(
        "built latent map of %s: %d items, %d users in %.1f s", type(model).__name__, ni, len(user_index),
        time.perf_counter() - start,
    )  # fmt: skip
    return m
