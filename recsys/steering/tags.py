"""Tags: normalised spelling, the item-tag matrix's per-user counts and shares, the curated vocabulary.

The tag vocabulary is curated (:func:`curate_vocabulary`): tags are normalised (lower case,
``-``/``_`` as spaces), and the ``max_tags`` most frequent ones that describe at least ``min_items``
items and have ``min_users`` supporting training users are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import tag_matrix as item_tag_matrix

#: Curation defaults (DESIGN.md): keep at most this many tags ...
DEFAULT_MAX_TAGS = 50
#: ... each on at least this many items ...
DEFAULT_MIN_ITEMS = 5
#: ... with at least this many supporting training users (to form a centroid).
DEFAULT_MIN_USERS = 20


class SteeringError(ValueError):
    """Bad steering input: unknown item or tag, a tag without centroid, a knob out of range, NaN."""


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


def binary(x: sp.csr_matrix) -> sp.csr_matrix:
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    return x


def tag_counts(histories: sp.csr_matrix, tag_matrix: sp.csr_matrix) -> np.ndarray:
    """(n_users, n_tags): how many of each user's items carry each tag (dense float64)."""
    return np.asarray((binary(histories) @ tag_matrix).todense(), dtype=np.float64)


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
