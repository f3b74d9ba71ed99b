"""Two-stage funnel (seed 002, after Covington et al. 2016): tag-embedding candidates, then a
logistic-regression ranker on biased-SVD features.

**Stage 1: candidates.** The tag corpus is an item x tag count matrix: the item table's
``tag_counts`` column (a mapping tag -> count per item; the Last.fm loader gives every tag with the
number of users who gave it) or, where there is none, the binary ``tags`` column (synthetic genres,
MovieLens genres). TF-IDF (``sublinear_tf``) and a truncated SVD to
``d = min(tag_dims, n_tags - 1, n_items - 1)`` dimensions give each item an embedding ``e_i``,
scaled to unit length (items without tags keep a zero vector). A user's vector is the
listen-weighted sum ``v_u = sum_i w(x_ui) e_i`` (``listen_weighting``: ``log`` = log1p of the
weight, ``linear``, ``binary``); the candidates are the union of

* the ``n_candidates`` items with the highest cosine ``cos(v_u, e_i)`` (only items with cos > 0),
* the ``n_popular`` most popular items (training users per item),
* the ``n_fresh`` items with the highest ``popularity * freshness``: popular among new items,

never an item of the history. **Freshness** ``f_i = 2^(-age_i / freshness_half_life_days)``, with
``age_i`` the days between the item's ``freshness_column`` (default ``first_tagged``: the first day
any user tagged the artist, Last.fm) and the latest such date in the training items; undated items
get 0. A data set without that column (synthetic, MovieLens) has no freshness: the freshness
feature is 0, there are no freshness candidates (popularity only), and the fit logs it
(``has_freshness_`` is False).

**Stage 2: ranker.** :class:`~recsys.models.svd.SVDBaseline` (scikit-surprise biased SVD, with its
exact ridge fold-in of users it never saw) gives user factors ``(p_u, b_u)`` and item factors
``(q_i, b_i)``. The feature vector of a (user, candidate) pair is

    [p_u, b_u, q_i, b_i, p_u * q_i, log1p(popularity_i), f_i, cos(v_u, e_i)]

(the element-wise product is the linear interaction, the concatenation the rest; the tag cosine of
stage 1 is the one feature beyond the seed's list). A logistic regression (scikit-learn, on
standardised features) learns ``P(listened | features)`` from the training users the way the model
is used: each training user's items are split (``ranker_holdout`` held out, uniformly), the rest is
folded in exactly as a new user would be (SVD fold-in, candidates), held-out candidates are the
positives and ``ranker_negatives`` per held-out item are sampled among the other candidates (hard
negatives: the ranker only ever orders candidates). The SVD's item factors were fitted on the
training users' full histories, so the held-out pairs leak a little into ``q_i``.

**Scores.** Candidates get the ranker's logit; every other item gets
``m - 2 + (cos + 1) / 2`` with ``m`` the user's lowest candidate logit: strictly below every
candidate (finite, so per-user min-max and the postfilter of :mod:`recsys.steering` work), ordered
by tag similarity. The standardisation is folded into the coefficients, so scoring is two matmuls
and one top-k per stage, batched over users. ``score_kind`` is ``"similarity"``.

**Cache.** With ``cache_dir`` set, each stage (``tags``, ``svd``, ``ranker``) is stored as a
safetensors file named by a sha256 key of the training data's fingerprint (plus the freshness
column and the tag corpus), the stage's parameters and, for the ranker, a hash of the stage-1/2
arrays it was trained on; writes are atomic (:mod:`recsys.io`), nothing is pickled. A later fit
with the same key loads the stage instead of fitting it; ``fit(..., refit={"svd"})`` (CLI
``--runsvd``, ``--judge`` for the ranker) fits it again and overwrites the entry. A ranker whose
inputs are bit-identical after a refit of the SVD stays valid (its key is unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from ..io import atomic_write_bytes
from .base import ModelFitError, Recommender, as_csr, register, top_k
from .svd import SVDBaseline

logger = logging.getLogger("recsys")

STAGES: tuple[str, ...] = ("tags", "svd", "ranker")
LISTEN_WEIGHTINGS: tuple[str, ...] = ("log", "linear", "binary")
#: Version of the cache layout; part of every key, so a change here invalidates old entries.
CACHE_VERSION = 1
_BATCH = 1000  # users per batch when building candidates and ranker training pairs


# ---------------------------------------------------------------------------------------------
# stage 1 pieces
# ---------------------------------------------------------------------------------------------
def tag_corpus(items: pd.DataFrame) -> tuple[sp.csr_matrix, list[str]]:
    """Item x tag counts (float32 CSR) and the tag names, most used first (ties alphabetical).

    Uses the ``tag_counts`` column (mapping tag -> count per item) where the item table has one,
    else the ``tags`` column with count 1 per tag.
    """
    if "tag_counts" in items.columns:
        per_item = [dict(m) if isinstance(m, Mapping) else {} for m in items["tag_counts"]]
    else:
        per_item = [dict.fromkeys(tags, 1.0) for tags in items["tags"]]
    totals: dict[str, float] = {}
    for m in per_item:
        for t, c in m.items():
            totals[t] = totals.get(t, 0.0) + float(c)
    vocab = sorted((t for t, c in totals.items() if c > 0), key=lambda t: (-totals[t], t))
    col = {t: j for j, t in enumerate(vocab)}
    rows, cols, vals = [], [], []
    for i, m in enumerate(per_item):
        for t, c in m.items():
            if c > 0 and t in col:
                rows.append(i)
                cols.append(col[t])
                vals.append(float(c))
    x = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(len(items), len(vocab)),
        dtype=np.float32,
    )
    x.sum_duplicates()
    return x, vocab


def tag_embeddings(corpus: sp.csr_matrix, dims: int, seed: int) -> np.ndarray:
    """TF-IDF (sublinear tf) -> truncated SVD -> unit rows: (n_items, d) float32, zero rows for untagged items."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    tfidf = TfidfTransformer(sublinear_tf=True).fit_transform(corpus)
    d = min(int(dims), corpus.shape[1] - 1, corpus.shape[0] - 1)
    if d >= 1:
        emb = TruncatedSVD(n_components=d, random_state=int(seed)).fit_transform(tfidf)
    else:  # one tag (or one item): the TF-IDF columns are the embedding
        emb = tfidf.toarray()
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def item_freshness(items: pd.DataFrame, column: str | None, half_life_days: float) -> np.ndarray | None:
    """``2^(-age / half_life)`` per item from a date column (unix seconds), 0 where undated; None without the column."""
    if not column or column not in items.columns:
        return None
    t = pd.to_numeric(items[column], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(t)
    if not ok.any():
        return None
    age_days = (t[ok].max() - t) / 86400.0
    return np.where(ok, np.exp2(-np.where(ok, age_days, 0.0) / float(half_life_days)), 0.0)


def _weights(x: sp.csr_matrix, how: str) -> sp.csr_matrix:
    w = sp.csr_matrix(x, dtype=np.float64, copy=True)
    if how == "log":
        w.data = np.log1p(np.maximum(w.data, 0.0))
    elif how == "binary":
        w.data[:] = 1.0
    else:
        w.data = np.maximum(w.data, 0.0)
    return w


def _mask_of(idx: np.ndarray, scores: np.ndarray, shape: tuple[int, int], keep=None) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    ok = np.isfinite(scores) if keep is None else keep
    rows = np.broadcast_to(np.arange(shape[0])[:, None], idx.shape)
    m[rows[ok], idx[ok]] = True
    return m


# ---------------------------------------------------------------------------------------------
# the stage cache
# ---------------------------------------------------------------------------------------------
def _hash_arrays(h: Any, arrays: Mapping[str, np.ndarray]) -> None:
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())


class StageCache:
    """Stage results on disk: ``<root>/<stage>-<key>.safetensors`` (arrays + the key as metadata).

    Written atomically (temp file + rename); unreadable or mismatched entries count as missing.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key[:40]}.safetensors"

    def get(self, stage: str, key: str) -> dict[str, np.ndarray] | None:
        from safetensors import safe_open

        path = self.path(stage, key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="numpy") as f:
                if (f.metadata() or {}).get("key") != key:
                    logger.warning("funnel cache: %s belongs to another key; ignoring it", path)
                    return None
                return {name: f.get_tensor(name) for name in f.keys()}
        except Exception as e:  # a truncated or foreign file: refit and overwrite it
            logger.warning("funnel cache: cannot read %s (%s); the stage is fitted again", path, e)
            return None

    def put(self, stage: str, key: str, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any]) -> Path:
        from safetensors.numpy import save

        data = save(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            metadata={"key": key, "stage": stage, "info": json.dumps(info, sort_keys=True, default=str)},
        )
        path = self.path(stage, key)
        atomic_write_bytes(path, data)
        return path


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
@register("funnel")
class FunnelRecommender(Recommender):
    """Two-stage funnel: tag-embedding + popularity + freshness candidates, SVD-feature LR ranker.

    Parameters
    ----------
    tag_dims : int
        Dimensions of the truncated SVD of the TF-IDF tag corpus (at most ``n_tags - 1``).
    n_candidates : int
        Candidates by cosine similarity of the user's tag vector.
    n_popular : int
        Candidates by training popularity.
    n_fresh : int
        Candidates by popularity x freshness (none where the data have no dates).
    listen_weighting : {"log", "linear", "binary"}
        Weight of an item in the user's tag vector: log1p(weight), the weight, or 1.
    freshness_column : str or None
        Item column with a date in unix seconds (``first_tagged`` on Last.fm); None: no freshness.
    freshness_half_life_days : float
        Days after which an item's freshness halves.
    svd_factors, svd_epochs, svd_lr, svd_reg, svd_negatives, svd_fold_in_reg
        ``n_factors``, ``n_epochs``, ``lr_all``, ``reg_all``, ``negatives_per_positive`` and
        ``fold_in_reg`` of the :class:`~recsys.models.svd.SVDBaseline` (rating signal ``auto``).
    ranker_holdout : float
        Share of each training user's items held out as ranker positives.
    ranker_negatives : float
        Sampled negative candidates per held-out item.
    ranker_c : float
        Inverse L2 strength ``C`` of the logistic regression.
    ranker_max_iter : int
        lbfgs iterations of the logistic regression.
    cache_dir : str or None
        Directory of the stage cache (see the module docstring); None: no cache.
    seed : int
        Seeds the truncated SVD, the biased SVD, the ranker's hold-out and negatives.

    Attributes
    ----------
    item_embeddings_ : ndarray, shape (n_items, d)
        Unit-length tag embeddings (zero rows for untagged items).
    svd_ : SVDBaseline
        The fitted biased SVD (item factors; users are folded in).
    item_popularity_ : ndarray, shape (n_items,)
        Training users per item.
    item_freshness_ : ndarray, shape (n_items,)
        Freshness in [0, 1] (all 0 without dates).
    has_freshness_ : bool
        Whether the data had dates (freshness candidates and feature in use).
    ranker_coef_, ranker_intercept_, ranker_mean_, ranker_scale_ : ndarray
        Logistic-regression coefficients on standardised features, and the standardisation.
    stage_sources_ : dict
        After ``fit``: ``{"tags" | "svd" | "ranker": "fit" | "cache"}``.

    References
    ----------
    Covington, P., Adams, J., Sargin, E. "Deep Neural Networks for YouTube Recommendations." RecSys 2016.
    He, X. et al. "Neural Collaborative Filtering." WWW 2017 (concatenation and element-wise product).
    Koren, Y., Bell, R., Volinsky, C. "Matrix Factorization Techniques for Recommender Systems." 2009.

    Examples
    --------
    >>> from recsys.data.synthetic import generate_synthetic
    >>> ds = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    >>> model = FunnelRecommender(svd_factors=16, svd_epochs=5, n_candidates=100).fit(ds)
    >>> model.recommend(ds.interactions[:2], k=20)[0].shape
    (2, 20)
    """

    score_kind = "similarity"

    def __init__(
        self,
        *,
        tag_dims: int = 500,
        n_candidates: int = 200,
        n_popular: int = 50,
        n_fresh: int = 20,
        listen_weighting: str = "log",
        freshness_column: str | None = "first_tagged",
        freshness_half_life_days: float = 365.0,
        svd_factors: int = 64,
        svd_epochs: int = 20,
        svd_lr: float = 0.05,
        svd_reg: float = 0.02,
        svd_negatives: float = 8.0,
        svd_fold_in_reg: float | None = 0.005,
        ranker_holdout: float = 0.2,
        ranker_negatives: float = 4.0,
        ranker_c: float = 1.0,
        ranker_max_iter: int = 500,
        cache_dir: str | None = None,
        seed: int = 0,
    ):
        self.tag_dims = tag_dims
        self.n_candidates = n_candidates
        self.n_popular = n_popular
        self.n_fresh = n_fresh
        self.listen_weighting = listen_weighting
        self.freshness_column = freshness_column
        self.freshness_half_life_days = freshness_half_life_days
        self.svd_factors = svd_factors
        self.svd_epochs = svd_epochs
        self.svd_lr = svd_lr
        self.svd_reg = svd_reg
        self.svd_negatives = svd_negatives
        self.svd_fold_in_reg = svd_fold_in_reg
        self.ranker_holdout = ranker_holdout
        self.ranker_negatives = ranker_negatives
        self.ranker_c = ranker_c
        self.ranker_max_iter = ranker_max_iter
        self.cache_dir = cache_dir
        self.seed = seed

    # ---- checks -------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("tag_dims", "svd_factors", "svd_epochs", "ranker_max_iter"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_candidates", "n_popular", "n_fresh"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if int(self.n_candidates) + int(self.n_popular) + int(self.n_fresh) < 1:
            raise ValueError("n_candidates + n_popular + n_fresh must be >= 1 (no candidates at all)")
        if self.listen_weighting not in LISTEN_WEIGHTINGS:
            raise ValueError(f"listen_weighting must be one of {LISTEN_WEIGHTINGS}, got {self.listen_weighting!r}")
        if not 0 < self.ranker_holdout < 1:
            raise ValueError(f"ranker_holdout must be in (0, 1), got {self.ranker_holdout}")
        if not self.ranker_negatives > 0 or not self.ranker_c > 0 or not self.freshness_half_life_days > 0:
            raise ValueError(
                "ranker_negatives, ranker_c and freshness_half_life_days must be > 0, got "
                f"{self.ranker_negatives}, {self.ranker_c}, {self.freshness_half_life_days}"
            )

    # ---- fitting ------------------------------------------------------------------------
    def fit(
        self,
        train: Dataset,
        *,
        validation=None,
        progress=None,
        refit: Collection[str] = (),
    ) -> FunnelRecommender:
        """As :meth:`Recommender.fit`; ``refit`` names cached stages to fit again (``"all"`` = every stage)."""
        refit = set(STAGES) if "all" in set(refit) else set(refit)
        bad = sorted(refit - set(STAGES))
        if bad:
            raise ValueError(f"unknown stages {bad} to refit; stages: {list(STAGES)} or 'all'")
        self._refit = frozenset(refit)
        try:
            return super().fit(train, validation=validation, progress=progress)  # type: ignore[return-value]
        finally:
            self._refit = frozenset()

    def _svd(self) -> SVDBaseline:
        return SVDBaseline(
            n_factors=int(self.svd_factors),
            n_epochs=int(self.svd_epochs),
            lr_all=self.svd_lr,
            reg_all=self.svd_reg,
            rating="auto",
            negatives_per_positive=self.svd_negatives,
            fold_in_reg=self.svd_fold_in_reg,
            seed=int(self.seed),
        )

    def _stage(self, stage: str, key_parts: dict[str, Any], fit_fn) -> dict[str, np.ndarray]:
        """Arrays of one stage: from the cache when allowed and present, else ``fit_fn()`` (then cached)."""
        cache = StageCache(self.cache_dir) if self.cache_dir else None
        key = hashlib.sha256(
            json.dumps({"stage": stage, "version": CACHE_VERSION, **key_parts}, sort_keys=True, default=str).encode()
        ).hexdigest()
        t0 = time.perf_counter()
        if cache is not None and stage not in getattr(self, "_refit", ()):
            arrays = cache.get(stage, key)
            if arrays is not None:
                self.stage_sources_[stage] = "cache"
                self.stage_seconds_[stage] = time.perf_counter() - t0
                logger.info("funnel: %s stage loaded from %s", stage, cache.path(stage, key))
                return arrays
        arrays = fit_fn()
        self.stage_sources_[stage] = "fit"
        self.stage_seconds_[stage] = time.perf_counter() - t0
        if cache is not None:
            path = cache.put(stage, key, arrays, key_parts)
            logger.info("funnel: %s stage fitted and cached in %s", stage, path)
        return arrays

    def _fit(self, train: Dataset, validation, progress) -> None:
        self._check_params()
        start = time.perf_counter()
        self.stage_sources_: dict[str, str] = {}
        self.stage_seconds_: dict[str, float] = {}
        self._clear_cache()
        x = sp.csr_matrix(train.interactions, dtype=np.float32)
        fingerprint = train.fingerprint
        params = self.get_params()

        # stage 1: tag embeddings
        corpus, vocab = tag_corpus(train.items)
        if corpus.nnz == 0:
            raise ValueError(
                f"the funnel needs item tags: none of the {train.n_items} items of {train.name!r} has a tag "
                "(the items table's 'tags' or 'tag_counts' column)"
            )
        h = hashlib.sha256()
        _hash_arrays(h, {"indptr": corpus.indptr, "indices": corpus.indices, "data": corpus.data})
        h.update("\x1f".join(vocab).encode())
        tag_key = {"corpus": h.hexdigest(), "tag_dims": int(self.tag_dims), "seed": int(self.seed)}
        tags = self._stage("tags", tag_key, lambda: {"embeddings": tag_embeddings(corpus, self.tag_dims, self.seed)})
        self.item_embeddings_ = np.asarray(tags["embeddings"], dtype=np.float32)
        if progress:
            progress(1, time.perf_counter() - start, {"tag_dims": float(self.item_embeddings_.shape[1])})

        # stage 2: biased SVD
        svd_key = {"fingerprint": fingerprint, **{k: v for k, v in params.items() if k.startswith("svd_")}}
        svd_key["seed"] = int(self.seed)
        svd_arrays = self._stage("svd", svd_key, lambda: self._svd().fit(train).state_dict())
        self.svd_ = self._svd().load_state_dict(svd_arrays)
        if progress:
            progress(2, time.perf_counter() - start, {"svd_factors": float(self.svd_factors)})

        # item side features
        self.item_popularity_ = np.diff(x.tocsc().indptr).astype(np.float64)
        fresh = item_freshness(train.items, self.freshness_column, self.freshness_half_life_days)
        self.has_freshness_ = fresh is not None
        self.item_freshness_ = fresh if fresh is not None else np.zeros(train.n_items)
        if not self.has_freshness_:
            logger.info(
                "funnel: %s has no dated items (column %r): no freshness candidates or feature, popularity only",
                train.name,
                self.freshness_column,
            )

        # stage 3: ranker
        h = hashlib.sha256()
        _hash_arrays(
            h,
            {
                "emb": self.item_embeddings_,
                "pop": self.item_popularity_,
                "fresh": self.item_freshness_,
                **{f"svd.{k}": v for k, v in svd_arrays.items()},
            },
        )
        ranker_key = {
            "fingerprint": fingerprint,
            "inputs": h.hexdigest(),
            "seed": int(self.seed),
            **{
                k: params[k]
                for k in (
                    "n_candidates",
                    "n_popular",
                    "n_fresh",
                    "listen_weighting",
                    "ranker_holdout",
                    "ranker_negatives",
                    "ranker_c",
                    "ranker_max_iter",
                )
            },
        }
        ranker = self._stage("ranker", ranker_key, lambda: self._fit_ranker(x))
        self.ranker_coef_ = np.asarray(ranker["coef"], dtype=np.float64)
        self.ranker_intercept_ = np.asarray(ranker["intercept"], dtype=np.float64)
        self.ranker_mean_ = np.asarray(ranker["mean"], dtype=np.float64)
        self.ranker_scale_ = np.asarray(ranker["scale"], dtype=np.float64)
        self._clear_cache()

        seconds = time.perf_counter() - start
        info: dict[str, Any] = {
            "ranker_log_loss": float(ranker["log_loss"][0]),
            "ranker_pairs": float(ranker["n_pairs"][0]),
            **{f"{s}_seconds": v for s, v in self.stage_seconds_.items()},
        }
        if validation is not None:
            from ..metrics import ranking_metrics

            vf, vh = validation
            m = ranking_metrics(self.score(vf), vf, vh, recall_ks=(), ndcg_ks=(100,))
            info["val_ndcg@100"] = float(np.mean(m["ndcg@100"])) if m["ndcg@100"].size else float("nan")
            info["val_candidate_recall"] = self.candidate_recall(vf, vh, ks=(int(self.n_candidates),))[
                f"candidate_recall@{int(self.n_candidates)}"
            ]
        self.training_log_ = [
            {
                "epoch": 1,
                "train_loss": info["ranker_log_loss"],
                **info,
                "seconds": seconds,
                **{f"{s}_source": v for s, v in self.stage_sources_.items()},
            }
        ]
        logger.info("funnel: stages %s, %s", self.stage_sources_, info)
        if progress:
            progress(3, seconds, {k: v for k, v in info.items() if isinstance(v, float)})

    # ---- stage 1 at scoring time ----------------------------------------------------------
    def _clear_cache(self) -> None:
        self._folded_cache = None

    def _similarity(self, x: sp.csr_matrix) -> np.ndarray:
        """cos(v_u, e_i), (n, n_items) float64, rounded to 1e-9 so near-ties do not depend on the batch."""
        emb = self.item_embeddings_.astype(np.float64)
        v = np.asarray(_weights(x, self.listen_weighting) @ emb)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        v = v / np.where(norms > 0, norms, 1.0)
        return np.round(v @ emb.T, 9)

    def _candidates(self, x: sp.csr_matrix, cos: np.ndarray, n_candidates: int | None = None) -> np.ndarray:
        """Boolean (n, n_items): the union of the similarity, popularity and freshness candidates."""
        n, n_items = x.shape
        k_sim = int(self.n_candidates if n_candidates is None else n_candidates)
        mask = np.zeros((n, n_items), dtype=bool)
        if k_sim > 0:
            idx, s = top_k(cos, k_sim, exclude=x)
            mask |= _mask_of(idx, s, (n, n_items), keep=np.isfinite(s) & (s > 0))
        for k, prior in ((self.n_popular, self.item_popularity_), (self.n_fresh, self._fresh_prior())):
            if int(k) > 0 and prior is not None:
                idx, s = top_k(np.broadcast_to(prior, (n, n_items)), int(k), exclude=x)
                mask |= _mask_of(idx, s, (n, n_items), keep=np.isfinite(s) & (s > 0))
        return mask

    def _fresh_prior(self) -> np.ndarray | None:
        return self.item_popularity_ * self.item_freshness_ if self.has_freshness_ else None

    def candidate_mask(self, histories: sp.csr_matrix) -> np.ndarray:
        """Boolean (n_users, n_items): the stage-1 candidates of each user (history items never)."""
        self._check_fitted()
        x = as_csr(histories, self.n_items_)
        return self._candidates(x, self._similarity(x))

    def candidate_recall(
        self, foldin: sp.csr_matrix, holdout: sp.csr_matrix, ks: Collection[int] = (100, 200, 500)
    ) -> dict[str, float]:
        """Stage-1 recall over users with held-out items, for ``n_candidates = K`` in ``ks``.

        ``candidate_recall@K``: held-out items among the merged candidates (K similar + popular +
        fresh) / min(K, |held-out|); ``similarity_recall@K``: the same for the K similar items alone;
        ``candidates@K``: mean size of the merged set.
        """
        self._check_fitted()
        f = as_csr(foldin, self.n_items_)
        h = as_csr(holdout, self.n_items_)
        sums: dict[str, float] = {}
        n_users = 0
        for lo in range(0, f.shape[0], _BATCH):
            fb, hb = f[lo : lo + _BATCH], h[lo : lo + _BATCH]
            n_held = np.diff(hb.indptr)
            ok = n_held > 0
            n_users += int(ok.sum())
            cos = self._similarity(fb)
            hb = (hb > 0).astype(bool)
            for k in ks:
                merged = self._candidates(fb, cos, int(k))
                idx, s = top_k(cos, int(k), exclude=fb)
                sim = _mask_of(idx, s, merged.shape, keep=np.isfinite(s) & (s > 0))
                denom = np.minimum(int(k), np.maximum(n_held, 1))
                for name, m in ((f"candidate_recall@{k}", merged), (f"similarity_recall@{k}", sim)):
                    hits = np.asarray(hb.multiply(m).sum(axis=1)).ravel()
                    sums[name] = sums.get(name, 0.0) + float((hits / denom)[ok].sum())
                sums[f"candidates@{k}"] = sums.get(f"candidates@{k}", 0.0) + float(merged.sum(axis=1)[ok].sum())
        return {name: v / max(n_users, 1) for name, v in sums.items()}

    # ---- stage 2 --------------------------------------------------------------------------
    def _pair_features(self, p: np.ndarray, bu: np.ndarray, rows: np.ndarray, cols: np.ndarray, cos: np.ndarray):
        """Feature rows for (user row, item column) pairs: [p, b_u, q, b_i, p*q, log1p(pop), fresh, cos]."""
        q, bi = self.svd_.item_factors_.astype(np.float64), self.svd_.item_bias_.astype(np.float64)
        pu, qi = p[rows], q[cols]
        return np.hstack(
            [
                pu,
                bu[rows, None],
                qi,
                bi[cols, None],
                pu * qi,
                np.log1p(self.item_popularity_[cols])[:, None],
                self.item_freshness_[cols, None],
                cos[:, None],
            ]
        )

    def _fit_ranker(self, x: sp.csr_matrix) -> dict[str, np.ndarray]:
        """Hold out part of each training user's items, fold in the rest, learn held-out vs other candidates."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        from ..data.splits import _holdout

        rng = np.random.default_rng([int(self.seed), 2])
        users = np.flatnonzero(np.diff(x.indptr) >= 2)  # one item cannot be split into fold-in + held-out
        if users.size == 0:
            raise ModelFitError("the ranker needs training users with at least 2 items")
        foldin, held = _holdout(x[users], rng, float(self.ranker_holdout))
        feats, labels = [], []
        for lo in range(0, foldin.shape[0], _BATCH):
            f, h = foldin[lo : lo + _BATCH], held[lo : lo + _BATCH]
            p, bu = self.svd_.fold_in(f)
            cos = self._similarity(f)
            cand = self._candidates(f, cos)
            is_held = (h > 0).toarray()
            pos_r, pos_c = np.nonzero(cand & is_held)
            neg_r, neg_c = self._sample_negatives(cand & ~is_held, np.diff(h.indptr), rng)
            r, c = np.concatenate([pos_r, neg_r]), np.concatenate([pos_c, neg_c])
            feats.append(self._pair_features(p, bu, r, c, cos[r, c]))
            labels.append(np.r_[np.ones(pos_r.size), np.zeros(neg_r.size)])
        xf, y = np.vstack(feats), np.concatenate(labels)
        if y.min() == y.max():
            raise ModelFitError(
                f"the ranker saw only {'positive' if y[0] else 'negative'} pairs ({y.size}); "
                "raise n_candidates or ranker_holdout"
            )
        mean, scale = xf.mean(axis=0), xf.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        z = (xf - mean) / scale
        lr = LogisticRegression(C=float(self.ranker_c), max_iter=int(self.ranker_max_iter))
        lr.fit(z, y)
        loss = log_loss(y, lr.predict_proba(z)[:, 1])
        if not np.isfinite(loss):
            raise ModelFitError(f"the ranker's log-loss is {loss}; lower ranker_c={self.ranker_c}")
        logger.info("funnel ranker: %d pairs (%d positive), log-loss %.4f", y.size, int(y.sum()), loss)
        return {
            "coef": lr.coef_.ravel().astype(np.float64),
            "intercept": np.asarray(lr.intercept_, dtype=np.float64).ravel(),
            "mean": mean,
            "scale": scale,
            "log_loss": np.asarray([loss]),
            "n_pairs": np.asarray([float(y.size)]),
        }

    def _sample_negatives(
        self, pool: np.ndarray, n_held: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per row, ``round(ranker_negatives * n_held)`` entries of the boolean ``pool`` uniformly (all if fewer)."""
        rows, cols = np.nonzero(pool)
        order = np.lexsort((rng.random(rows.size), rows))  # grouped by row, random order within
        rows, cols = rows[order], cols[order]
        rank = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
        want = np.round(float(self.ranker_negatives) * n_held).astype(np.int64)
        keep = rank < want[rows]
        return rows[keep], cols[keep]

    def _folded(self) -> dict[str, Any]:
        """Coefficients with the standardisation folded in, split by feature block (lazy)."""
        cache = getattr(self, "_folded_cache", None)
        if cache is None:
            k = self.svd_.item_factors_.shape[1]
            a = self.ranker_coef_ / self.ranker_scale_
            const = float(self.ranker_intercept_[0] - np.dot(self.ranker_coef_, self.ranker_mean_ / self.ranker_scale_))
            a_p, a_bu = a[:k], a[k]
            a_q, a_bi = a[k + 1 : 2 * k + 1], a[2 * k + 1]
            a_pq = a[2 * k + 2 : 3 * k + 2]
            a_pop, a_fresh, a_cos = a[3 * k + 2], a[3 * k + 3], a[3 * k + 4]
            q = self.svd_.item_factors_.astype(np.float64)
            item_term = (
                q @ a_q
                + a_bi * self.svd_.item_bias_.astype(np.float64)
                + a_pop * np.log1p(self.item_popularity_)
                + a_fresh * self.item_freshness_
            )
            cache = {"a_p": a_p, "a_bu": a_bu, "q_pq": q * a_pq[None, :], "item": item_term, "a_cos": a_cos, "c": const}
            self._folded_cache = cache
        return cache

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.empty(x.shape, dtype=np.float64)
        fc = self._folded()
        for lo in range(0, x.shape[0], _BATCH):
            xb = x[lo : lo + _BATCH]
            cos = self._similarity(xb)
            cand = self._candidates(xb, cos)
            p, bu = self.svd_.fold_in(xb)
            logit = (p @ fc["q_pq"].T) + fc["item"][None, :] + fc["a_cos"] * cos
            logit += (p @ fc["a_p"] + fc["a_bu"] * bu + fc["c"])[:, None]
            lowest = np.where(cand, logit, np.inf).min(axis=1, keepdims=True)
            lowest = np.where(np.isfinite(lowest), lowest, 0.0)
            out[lo : lo + _BATCH] = np.where(cand, logit, lowest - 2.0 + (cos + 1.0) / 2.0)
        return out

    # ---- persistence --------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        state = {
            "tags.embeddings": self.item_embeddings_,
            "items.popularity": self.item_popularity_,
            "items.freshness": self.item_freshness_,
            "items.has_freshness": np.asarray([int(self.has_freshness_)], dtype=np.int64),
            "ranker.coef": self.ranker_coef_,
            "ranker.intercept": self.ranker_intercept_,
            "ranker.mean": self.ranker_mean_,
            "ranker.scale": self.ranker_scale_,
        }
        state.update({f"svd.{k}": v for k, v in self.svd_.state_dict().items()})
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_embeddings_ = np.asarray(arrays["tags.embeddings"], dtype=np.float32)
        self.item_popularity_ = np.asarray(arrays["items.popularity"], dtype=np.float64)
        self.item_freshness_ = np.asarray(arrays["items.freshness"], dtype=np.float64)
        self.has_freshness_ = bool(arrays["items.has_freshness"][0])
        self.ranker_coef_ = np.asarray(arrays["ranker.coef"], dtype=np.float64)
        self.ranker_intercept_ = np.asarray(arrays["ranker.intercept"], dtype=np.float64)
        self.ranker_mean_ = np.asarray(arrays["ranker.mean"], dtype=np.float64)
        self.ranker_scale_ = np.asarray(arrays["ranker.scale"], dtype=np.float64)
        svd = {k[len("svd.") :]: v for k, v in arrays.items() if k.startswith("svd.")}
        self.svd_ = self._svd().load_state_dict(svd)
        self.stage_sources_ = {}
        self._clear_cache()
