"""The one interface every model family implements.

``Recommender``: ``fit(train)`` on a :class:`~recsys.data.Dataset`, ``score(histories)`` for any
users given as a CSR batch of histories (fold-in: users never seen in training work the same way).
``LatentRecommender`` adds ``encode`` (histories -> latent points) and ``decode`` (points -> scores),
which is what steering moves through.

Public methods validate and call the subclass hooks ``_fit`` / ``_score`` / ``_encode`` /
``_decode``; top-k and seen-item exclusion live here once. Hyperparameters are keyword-only
``__init__`` arguments stored unchanged; learned state ends in ``_``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.dataset import Dataset

logger = logging.getLogger("recsys")

#: ``progress(epoch, elapsed_seconds, info)`` called by long fits; ``info`` is a dict of numbers.
ProgressCallback = Callable[[int, float, dict], None]

#: (fold-in histories, held-out items) of validation users, both CSR (n_val_users, n_items).
Validation = tuple[sp.csr_matrix, sp.csr_matrix]

MODEL_CLASSES: dict[str, type[Recommender]] = {}


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit`` (or ``load``)."""


class ModelFitError(RuntimeError):
    """Raised when training diverges (NaN loss) or cannot proceed."""


def register(family: str) -> Callable[[type], type]:
    """Class decorator: make a model family known to the registry and the CLI by name."""

    def deco(cls: type) -> type:
        if family in MODEL_CLASSES and MODEL_CLASSES[family] is not cls:
            raise ValueError(f"model family {family!r} registered twice")
        cls.family = family
        MODEL_CLASSES[family] = cls
        return cls

    return deco


def as_csr(histories: Any, n_items: int) -> sp.csr_matrix:
    """Validate a batch of histories: CSR (or dense 2-D), ``n_items`` columns, finite, float32."""
    if isinstance(histories, Dataset):
        histories = histories.interactions
    if sp.issparse(histories):
        x = sp.csr_matrix(histories, dtype=np.float32)
    else:
        arr = np.asarray(histories, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"histories must be 2-D (users x items), got shape {arr.shape}")
        x = sp.csr_matrix(arr)
    if x.shape[1] != n_items:
        raise ValueError(f"histories have {x.shape[1]} item columns but the model knows {n_items} items")
    if x.nnz and not np.isfinite(x.data).all():
        raise ValueError("histories contain NaN or infinite weights")
    return x


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best items per row, best first; ``exclude``d entries never appear.

    Uses argpartition then a sort of the k survivors: O(n_items) per row, not a full sort.
    """
    s = np.array(scores, dtype=np.float64, copy=True)
    if s.ndim == 1:
        s = s[None, :]
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        s[rows, exclude.indices] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)


class Recommender:
    """Base class: fit on a training Dataset, score CSR batches of histories.

    Subclasses implement ``_fit(train, validation, progress)`` and ``_score(x)``, and list their learned
    arrays in ``_state()`` / ``_set_state()`` so the registry can save them without pickle.
    """

    family: ClassVar[str] = "base"
    #: Whether scores are logits of a sigmoid, of a softmax, or plain similarities.
    score_kind: ClassVar[str] = "similarity"

    # ---- parameters (scikit-learn style) ----------------------------------------------
    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, p in sig.parameters.items()
            if name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def clone(self, **overrides: Any) -> Recommender:
        return type(self)(**{**self.get_params(), **overrides})

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ---- fitting ------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return getattr(self, "n_items_", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load it from the registry")

    def fit(
        self,
        train: Dataset,
        *,
        validation: Validation | None = None,
        progress: ProgressCallback | None = None,
    ) -> Recommender:
        """Learn from the training users' interactions. Returns self.

        ``validation`` = (fold-in, held-out) CSR pair of validation users, for families that stop
        early on validation NDCG@100; the others ignore it. ``progress(epoch, elapsed, info)`` is
        called after each epoch by families that train in epochs.
        """
        if not isinstance(train, Dataset):
            raise TypeError(f"fit expects a recsys Dataset, got {type(train).__name__}")
        if train.n_users == 0 or train.interactions.nnz == 0:
            raise ValueError("cannot fit on a data set with no interactions")
        start = time.perf_counter()
        self.n_items_ = train.n_items
        try:
            self._fit(train, validation, progress)
        except BaseException:
            self.n_items_ = None
            raise
        self.fit_seconds_ = time.perf_counter() - start
        logger.info("fitted %s on %s in %.1f s", self, train.name, self.fit_seconds_)
        return self

    def _fit(self, train: Dataset, validation: Validation | None, progress: ProgressCallback | None) -> None:
        raise NotImplementedError

    # ---- scoring ------------------------------------------------------------------------
    def score(self, histories: sp.csr_matrix) -> np.ndarray:
        """Scores (n_users, n_items), higher = better, for users given by their histories."""
        self._check_fitted()
        x = as_csr(histories, self.n_items_)
        out = np.asarray(self._score(x), dtype=np.float32)
        if out.shape != x.shape:
            raise RuntimeError(f"{type(self).__name__}._score returned shape {out.shape}, expected {x.shape}")
        return out

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def recommend(
        self, histories: sp.csr_matrix, k: int = 20, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user, best first; history items excluded by default."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self._check_fitted()
        x = as_csr(histories, self.n_items_)
        return top_k(self.score(x), k, exclude=x if exclude_seen else None)

    # ---- persistence hooks (used by recsys.registry) ------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays by name (float/int numpy arrays, CPU)."""
        raise NotImplementedError

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        state = {k: np.ascontiguousarray(v) for k, v in self._state().items()}
        state["__n_items__"] = np.asarray([self.n_items_], dtype=np.int64)
        return state

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> Recommender:
        arrays = dict(arrays)
        self.n_items_ = int(arrays.pop("__n_items__")[0])
        self._set_state(arrays)
        return self

    #: Per-epoch training log (list of dicts); families that train in epochs fill it.
    training_log_: list[dict] | None = None


class LatentRecommender(Recommender):
    """A recommender with a latent space: ``score(x) == decode(encode(x))``. Everything steerable."""

    def encode(self, histories: sp.csr_matrix) -> np.ndarray:
        """Latent points (n_users, d) for users given by their histories."""
        self._check_fitted()
        return np.asarray(self._encode(as_csr(histories, self.n_items_)), dtype=np.float32)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Scores (n_users, n_items) for latent points."""
        self._check_fitted()
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None, :]
        if not np.isfinite(z).all():
            raise ValueError("latent points contain NaN or infinite values")
        return np.asarray(self._decode(z), dtype=np.float32)

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return self._decode(self._encode(x))

    def _encode(self, x: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        raise NotImplementedError
