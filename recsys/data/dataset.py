"""The one in-memory data type every model, split and page works on.

A :class:`Dataset` is a user x item interaction matrix (CSR, implicit weights) plus the item table
(id, title, artist, tags), optional per-interaction timestamps, optional user features, and the
id <-> index maps. Everything else in the package takes and returns these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

ITEM_COLUMNS = ("item_id", "title", "artist", "tags")


def tag_matrix(item_tags: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> sp.csr_matrix:
    """Binary (n_items, n_tags) CSR: entry (i, t) = 1 if item i carries ``vocabulary[t]``.

    Tags outside ``vocabulary`` are ignored; an item listing a tag twice still carries it once.
    """
    col = {t: j for j, t in enumerate(vocabulary)}
    rows, cols = [], []
    for i, tags in enumerate(item_tags):
        for t in tags:
            j = col.get(t)
            if j is not None:
                rows.append(i)
                cols.append(j)
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(item_tags), len(vocabulary)), dtype=np.float32
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


@dataclass(frozen=True, eq=False)
class Dataset:
    """User x item interactions with the item table and id maps.

    Parameters
    ----------
    name : str
        Short name shown in the app and the registry ("synthetic", "lastfm-2k", ...).
    interactions : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Implicit feedback weights (listen counts, stars or 1.0); canonical (sorted, no duplicates).
    items : pandas.DataFrame, n_items rows
        Columns ``item_id`` (unique), ``title``, ``artist`` and ``tags`` (a tuple of str per item,
        most relevant first). Row ``i`` describes column ``i`` of ``interactions``.
    user_ids : numpy.ndarray, shape (n_users,)
        Original user ids; row ``u`` of ``interactions`` belongs to ``user_ids[u]``.
    timestamps : numpy.ndarray of int64, shape (nnz,), optional
        Unix seconds aligned with ``interactions.data`` (same CSR order).
    user_features : pandas.DataFrame, optional
        One row per user, in row order (demographics, synthetic profile).
    item_noun : str
        What an item is called in this data set ("song", "artist", "movie").
    description : str
        Free text (where the data came from).
    source : dict, optional
        For CSV data sets: the two files' paths, sizes and sha256 (``recsys.data.csv_sources``);
        training stores it in the model's manifest so every command finds the data again. Not
        carried by ``subset`` or the splits.
    """

    name: str
    interactions: sp.csr_matrix
    items: pd.DataFrame
    user_ids: np.ndarray
    timestamps: np.ndarray | None = None
    user_features: pd.DataFrame | None = None
    item_noun: str = "song"
    description: str = ""
    source: dict | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        x = self.interactions
        if not sp.isspmatrix_csr(x) and not isinstance(x, sp.csr_array):
            raise TypeError(f"interactions must be a CSR matrix, got {type(x).__name__}")
        n_users, n_items = x.shape
        if len(self.items) != n_items:
            raise ValueError(f"items table has {len(self.items)} rows but interactions have {n_items} columns")
        missing = [c for c in ITEM_COLUMNS if c not in self.items.columns]
        if missing:
            raise ValueError(f"items table lacks columns {missing}")
        if len(self.user_ids) != n_users:
            raise ValueError(f"{len(self.user_ids)} user ids for {n_users} interaction rows")
        if self.timestamps is not None and len(self.timestamps) != x.nnz:
            raise ValueError(f"{len(self.timestamps)} timestamps for {x.nnz} interactions")
        if self.user_features is not None and len(self.user_features) != n_users:
            raise ValueError(f"user_features has {len(self.user_features)} rows for {n_users} users")

    # ---- shape and maps -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @property
    def item_ids(self) -> np.ndarray:
        return self.items["item_id"].to_numpy()

    @cached_property
    def item_index(self) -> dict:
        """Original item id -> column index."""
        return {iid: i for i, iid in enumerate(self.item_ids)}

    @cached_property
    def user_index(self) -> dict:
        """Original user id -> row index."""
        return {uid: u for u, uid in enumerate(self.user_ids)}

    def binary(self) -> sp.csr_matrix:
        """The interactions with every stored weight set to 1 (the implicit protocol's input)."""
        x = self.interactions.copy()
        x.data = np.ones_like(x.data, dtype=np.float32)
        return x.astype(np.float32)

    # ---- tags ---------------------------------------------------------------------------
    @cached_property
    def tag_vocabulary(self) -> list[str]:
        """Every tag that occurs on some item, most frequent first (ties alphabetical)."""
        counts: dict[str, int] = {}
        for tags in self.items["tags"]:
            for t in tags:
                counts[t] = counts.get(t, 0) + 1
        return sorted(counts, key=lambda t: (-counts[t], t))

    def item_tag_matrix(self, vocabulary: list[str] | None = None) -> sp.csr_matrix:
        """Binary (n_items, n_tags) matrix: entry (i, t) = 1 if item i carries tag t."""
        return tag_matrix(self.items["tags"], self.tag_vocabulary if vocabulary is None else vocabulary)

    # ---- identity -----------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the content (interactions, ids, item table): changes when the data changes."""
        h = hashlib.sha256()
        x = self.interactions
        for arr in (x.indptr, x.indices, x.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(np.asarray(self.user_ids).astype(str).astype("U").tobytes())
        h.update(
            pd.util.hash_pandas_object(self.items[["item_id", "title", "artist"]].astype(str), index=False)
            .to_numpy()
            .tobytes()
        )
        h.update("\x1f".join("|".join(t) for t in self.items["tags"]).encode())
        if self.timestamps is not None:
            h.update(np.ascontiguousarray(self.timestamps).tobytes())
        return h.hexdigest()

    # ---- slicing ------------------------------------------------------------------------
    def subset(self, users: np.ndarray | None = None, items: np.ndarray | None = None) -> Dataset:
        """A new Dataset restricted to these user rows and item columns (index arrays, order kept)."""
        x = self.interactions
        ts = None
        if self.timestamps is not None:
            # carry timestamps through the same slicing by encoding them as a parallel matrix
            order = sp.csr_matrix(
                (np.arange(1, x.nnz + 1, dtype=np.int64), x.indices, x.indptr),
                shape=x.shape,
            )
        if users is not None:
            x = x[users]
            if self.timestamps is not None:
                order = order[users]
        if items is not None:
            x = x[:, items]
            if self.timestamps is not None:
                order = order[:, items]
        x = sp.csr_matrix(x)
        x.sort_indices()
        if self.timestamps is not None:
            order = sp.csr_matrix(order)
            order.sort_indices()
            ts = self.timestamps[order.data - 1]
        items_df = self.items if items is None else self.items.iloc[items].reset_index(drop=True)
        user_ids = self.user_ids if users is None else self.user_ids[users]
        feats = self.user_features
        if feats is not None and users is not None:
            feats = feats.iloc[users].reset_index(drop=True)
        return Dataset(
            name=self.name,
            interactions=x,
            items=items_df,
            user_ids=user_ids,
            timestamps=ts,
            user_features=feats,
            item_noun=self.item_noun,
            description=self.description,
        )

    def histories_from_item_ids(self, picks: list) -> sp.csr_matrix:
        """A one-row CSR history from original item ids (the app's and CLI's picks)."""
        unknown = [p for p in picks if p not in self.item_index]
        if unknown:
            raise KeyError(f"unknown {self.item_noun} ids: {unknown[:10]}")
        cols = sorted({self.item_index[p] for p in picks})
        data = np.ones(len(cols), dtype=np.float32)
        return sp.csr_matrix((data, ([0] * len(cols), cols)), shape=(1, self.n_items))

    def summary(self) -> dict:
        """Counts a person wants to see first (users, items, interactions, density, tags)."""
        nnz = self.interactions.nnz
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "item_noun": self.item_noun,
            "interactions": nnz,
            "density": nnz / max(1, self.n_users * self.n_items),
            "tags": len(self.tag_vocabulary),
            "timestamps": self.timestamps is not None,
            "user_features": None if self.user_features is None else list(self.user_features.columns),
            "fingerprint": self.fingerprint[:16],
        }


def build_dataset(
    name: str,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    weights: np.ndarray | None,
    items: pd.DataFrame,
    *,
    timestamps: np.ndarray | None = None,
    user_features: pd.DataFrame | None = None,
    item_noun: str = "song",
    description: str = "",
    duplicates: str = "sum",
) -> Dataset:
    """Assemble a Dataset from interaction triples (loaders and the CSV import all end here).

    ``items`` must define every item id referenced. Users are ordered by sorted id, items keep the
    order of the items table. Duplicate (user, item) pairs are summed (``duplicates="sum"``) or the
    last one wins (``"last"``); with timestamps, the latest timestamp is kept.
    """
    user_ids = np.asarray(user_ids)
    item_ids = np.asarray(item_ids)
    if weights is None:
        weights = np.ones(len(user_ids), dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32)
    uniq_users, rows = np.unique(user_ids, return_inverse=True)
    idx = pd.Index(items["item_id"].to_numpy())
    cols = idx.get_indexer(item_ids)
    if (cols < 0).any():
        bad = item_ids[cols < 0][:5]
        raise ValueError(f"interactions reference items not in the item table: {list(bad)}")
    n_users, n_items = len(uniq_users), len(items)
    key = rows.astype(np.int64) * n_items + cols
    order = np.lexsort((timestamps if timestamps is not None else np.arange(len(key)), key))
    key_sorted = key[order]
    last = np.r_[key_sorted[1:] != key_sorted[:-1], True]
    first = np.r_[True, key_sorted[1:] != key_sorted[:-1]]
    if duplicates == "sum":
        groups = np.cumsum(first) - 1
        w = np.bincount(groups, weights=weights[order]).astype(np.float32)
    elif duplicates == "last":
        w = weights[order][last]
    else:
        raise ValueError(f"duplicates must be 'sum' or 'last', got {duplicates!r}")
    uk = key_sorted[last]
    r, c = uk // n_items, uk % n_items
    nonzero = w != 0  # a stored zero would turn into a 1 in binary(): drop it
    x = sp.csr_matrix((w[nonzero], (r[nonzero], c[nonzero])), shape=(n_users, n_items), dtype=np.float32)
    x.sort_indices()
    ts = None
    if timestamps is not None:
        # csr built from sorted (row, col) keys keeps that order, so these are aligned with data
        ts = np.asarray(timestamps, dtype=np.int64)[order][last][nonzero]
    items = items.reset_index(drop=True).copy()
    items["tags"] = [tuple(t) for t in items["tags"]]
    return Dataset(
        name=name,
        interactions=x,
        items=items,
        user_ids=uniq_users,
        timestamps=ts,
        user_features=user_features,
        item_noun=item_noun,
        description=description,
    )
