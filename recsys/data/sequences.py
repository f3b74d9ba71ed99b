"""Ordered histories: each user's items as a sequence, oldest first.

A CSR row is a set; sequential models need an order. :class:`OrderedHistories` stores one
item-index sequence per user, flat (``indptr`` + ``items``, like a CSR matrix whose columns are
positions), so a batch of thousands of users is two arrays, not thousands of lists.

Where the order comes from
--------------------------
* :meth:`OrderedHistories.from_dataset`: by the Dataset's ``timestamps`` (ties: ascending item
  index); a Dataset without timestamps falls back to :meth:`from_csr` on its interactions.
* :meth:`OrderedHistories.from_csr` (the **documented fallback** every sequential model's
  ``score(csr)`` uses): a row's stored values are read as the order key, **larger = more recent**;
  ties keep ascending item index. So a CSR made by ``to_csr(values="position")`` (values 1..n) or
  one holding timestamps round-trips exactly, a weighted history (play counts, stars) puts the
  most-played items last (in the short-term window), and a plain 0/1 row carries no order at all:
  the model then sees the items in ascending index order.
* :meth:`OrderedHistories.from_lists`: the caller's order (the app's picks, in the order made).

Sequences may repeat an item (a re-listen); :meth:`to_csr` counts each item once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .dataset import Dataset


@dataclass(frozen=True, eq=False)
class OrderedHistories:
    """Item-index sequences, oldest first, stored flat.

    Parameters
    ----------
    indptr : numpy.ndarray of int64, shape (n_users + 1,)
        Row ``u`` is ``items[indptr[u]:indptr[u + 1]]``.
    items : numpy.ndarray of int64, shape (total length,)
        Item indices in ``[0, n_items)``.
    n_items : int
        Size of the catalogue the indices refer to.
    """

    indptr: np.ndarray
    items: np.ndarray
    n_items: int

    def __post_init__(self) -> None:
        indptr = np.asarray(self.indptr, dtype=np.int64)
        items = np.asarray(self.items, dtype=np.int64)
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "items", items)
        if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(items):
            raise ValueError("indptr must start at 0 and end at len(items)")
        if (np.diff(indptr) < 0).any():
            raise ValueError("indptr must be non-decreasing")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            bad = items[(items < 0) | (items >= self.n_items)][:5]
            raise ValueError(f"item indices {bad.tolist()} are outside [0, {self.n_items})")

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int]], n_items: int) -> OrderedHistories:
        """From a list of item-index lists, each oldest first (e.g. ``[[12, 7, 99], []]``)."""
        if isinstance(sequences, np.ndarray) and sequences.ndim == 1 and sequences.dtype != object:
            sequences = [sequences]
        lengths = [len(s) for s in sequences]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = [int(i) for s in sequences for i in s] if lengths and sum(lengths) else []
        return cls(indptr, np.asarray(flat, dtype=np.int64), int(n_items))

    @classmethod
    def from_csr(cls, x: sp.csr_matrix) -> OrderedHistories:
        """The fallback order: stored values ascending (larger = more recent), ties by item index."""
        x = sp.csr_matrix(x)
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        order = np.lexsort((x.indices, x.data, rows))
        return cls(x.indptr.astype(np.int64), x.indices[order].astype(np.int64), x.shape[1])

    @classmethod
    def from_dataset(cls, ds: Dataset) -> OrderedHistories:
        """Each user's items by timestamp (ties by item index); without timestamps, :meth:`from_csr`."""
        x = ds.interactions
        if ds.timestamps is None:
            return cls.from_csr(x)
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        order = np.lexsort((x.indices, ds.timestamps, rows))
        return cls(x.indptr.astype(np.int64), x.indices[order].astype(np.int64), x.shape[1])

    # ---- access ----------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def __len__(self) -> int:
        return self.n_users

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def __getitem__(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def to_lists(self) -> list[list[int]]:
        return [self[u].tolist() for u in range(self.n_users)]

    def rows(self, idx: np.ndarray) -> OrderedHistories:
        """The sequences of these rows, in this order."""
        idx = np.asarray(idx, dtype=np.int64)
        lengths = self.lengths[idx]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        starts = np.repeat(self.indptr[idx], lengths)
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
        return OrderedHistories(indptr, self.items[starts + offsets], self.n_items)

    def tail(self, n: int) -> OrderedHistories:
        """The last ``n`` items of each sequence (the most recent)."""
        lengths = np.minimum(self.lengths, n)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        starts = np.repeat(self.indptr[1:] - lengths, lengths)
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
        return OrderedHistories(indptr, self.items[starts + offsets], self.n_items)

    def append(self, items: np.ndarray) -> OrderedHistories:
        """A copy with ``items[u]`` added at the end of row ``u`` (rows where it is < 0 unchanged)."""
        items = np.asarray(items, dtype=np.int64)
        if items.shape != (self.n_users,):
            raise ValueError(f"append needs one item per row ({self.n_users}), got shape {items.shape}")
        add = (items >= 0).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(self.lengths + add)]).astype(np.int64)
        out = np.empty(indptr[-1], dtype=np.int64)
        keep_pos = np.arange(len(self.items)) + np.repeat(indptr[:-1] - self.indptr[:-1], self.lengths)
        out[keep_pos] = self.items
        rows = np.flatnonzero(add)
        out[indptr[rows + 1] - 1] = items[rows]
        return OrderedHistories(indptr, out, self.n_items)

    def windows(self, rows: np.ndarray, ends: np.ndarray, length: int, pad: int) -> np.ndarray:
        """(len(rows), length) int64: items at positions ``[end - length, end)`` of each row, right-aligned,
        ``pad`` where the window starts before the sequence. ``ends`` are in ``[0, len(row)]``."""
        rows = np.asarray(rows, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        start = np.maximum(ends - length, 0)
        w = ends - start
        out = np.full((len(rows), length), pad, dtype=np.int64)
        r = np.repeat(np.arange(len(rows)), w)
        off = np.arange(w.sum()) - np.repeat(np.cumsum(w) - w, w)
        out[r, length - np.repeat(w, w) + off] = self.items[np.repeat(self.indptr[rows] + start, w) + off]
        return out

    def padded(self, length: int, pad: int) -> np.ndarray:
        """(n_users, length) int64 matrix of the last ``length`` items, right-aligned, ``pad`` before."""
        t = self.tail(length)
        out = np.full((t.n_users, length), pad, dtype=np.int64)
        lengths = t.lengths
        rows = np.repeat(np.arange(t.n_users), lengths)
        cols = length - np.repeat(lengths, lengths) + (np.arange(len(t.items)) - np.repeat(t.indptr[:-1], lengths))
        out[rows, cols] = t.items
        return out

    def to_csr(self, values: str = "binary") -> sp.csr_matrix:
        """CSR (n_users, n_items): ``values="binary"`` (1 per item) or ``"position"`` (1..n by recency,
        the latest occurrence of a repeated item counts), which :meth:`from_csr` reads back in order."""
        if values not in ("binary", "position"):
            raise ValueError(f"values must be 'binary' or 'position', got {values!r}")
        rows = np.repeat(np.arange(self.n_users), self.lengths)
        pos = (np.arange(len(self.items)) - np.repeat(self.indptr[:-1], self.lengths) + 1).astype(np.float32)
        key = rows * self.n_items + self.items
        # keep the last occurrence of each (row, item): positions are increasing within a row
        last = np.unique(key[::-1], return_index=True)[1]
        last = len(key) - 1 - last
        data = np.ones(len(last), np.float32) if values == "binary" else pos[last]
        x = sp.csr_matrix((data, (rows[last], self.items[last])), shape=(self.n_users, self.n_items))
        x.sort_indices()
        return x


def as_sequences(sequences: object, n_items: int) -> OrderedHistories:
    """Accept OrderedHistories, a list of item-index lists, or a CSR batch (fallback order)."""
    if isinstance(sequences, OrderedHistories):
        if sequences.n_items != n_items:
            raise ValueError(f"sequences index {sequences.n_items} items but the model knows {n_items}")
        return sequences
    if sp.issparse(sequences):
        if sequences.shape[1] != n_items:
            raise ValueError(f"histories have {sequences.shape[1]} item columns but the model knows {n_items} items")
        return OrderedHistories.from_csr(sequences)
    if isinstance(sequences, str) or not isinstance(sequences, Sequence | np.ndarray):
        raise TypeError(
            f"sequences must be a list of item-index lists (oldest first), OrderedHistories or CSR, "
            f"got {type(sequences).__name__}"
        )
    return OrderedHistories.from_lists(sequences, n_items)
