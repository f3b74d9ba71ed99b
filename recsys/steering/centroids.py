"""Tag centroids: where the listeners of a tag sit in a model's latent space.

``c_t = sum_u s_ut z_u / sum_u s_ut`` over training users (rule ``"share"``, the default: each user
weighed by the share of their items carrying ``t``), or the mean of users whose most frequent tag is
``t`` (rule ``"dominant"``, seed 000's). A tag gets a centroid when ``min_users`` users support it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .tags import DEFAULT_MIN_USERS, SteeringError, dominant_tags, tag_shares

CENTROID_RULES: tuple[str, ...] = ("share", "dominant")


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
