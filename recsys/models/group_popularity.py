"""Popularity within a demographic group: the yardstick of profile cold start (seed 001).

A new person with a profile (MovieLens gender / age group / occupation; synthetic age group /
region) but no history gets the items most popular among training users with the **same values of
``group_by``**. A group with fewer than ``min_group_users`` training users backs off to the group of
the first ``len(group_by) - 1`` columns, and so on down to every user (global popularity), so the
column order is the order of importance. ``score(csr)`` has no profile: global popularity.
Scores are the share of the group's users who have the item.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from .base import Recommender, register

_SEP = "\x1f"


def _group_keys(profiles: pd.DataFrame, columns: list[str]) -> list[str]:
    if not columns:
        return [""] * len(profiles)
    values = profiles[columns].astype(str).to_numpy()
    return [_SEP.join(row) for row in values]


@register("group_popularity")
class GroupPopularity(Recommender):
    """Item popularity among training users of the same demographic group, with back-off.

    Parameters
    ----------
    group_by : tuple of str or None
        Profile columns defining a group, most important first (None = every user-feature column).
    min_group_users : int
        A group needs this many training users, else the next coarser group is used.

    Attributes
    ----------
    columns_ : list of str
    levels_ : list of (keys, shares, users)
        Per back-off level (all columns ... none): group keys, (n_groups, n_items) item shares and
        each group's user count.
    """

    def __init__(self, *, group_by: tuple[str, ...] | None = None, min_group_users: int = 20):
        self.group_by = group_by
        self.min_group_users = min_group_users

    def _fit(self, train: Dataset, validation, progress) -> None:
        feats = train.user_features
        if feats is None:
            raise ValueError(f"data set {train.name!r} has no user features: group popularity needs profiles")
        cols = list(feats.columns) if self.group_by is None else list(self.group_by)
        missing = [c for c in cols if c not in feats.columns]
        if missing:
            raise ValueError(f"group_by columns {missing} are not user features {list(feats.columns)}")
        self.columns_ = cols
        x = train.binary()
        self.levels_ = []
        for depth in range(len(cols), -1, -1):
            keys = np.asarray(_group_keys(feats, cols[:depth]))
            uniq, inv = np.unique(keys, return_inverse=True)
            member = sp.csr_matrix(
                (np.ones(len(inv), np.float32), (inv, np.arange(len(inv)))), shape=(len(uniq), len(inv))
            )
            counts = np.asarray((member @ x).todense(), dtype=np.float32)
            users = np.bincount(inv, minlength=len(uniq)).astype(np.int64)
            self.levels_.append((list(uniq), counts / np.maximum(users, 1)[:, None], users))

    def score_profiles(self, profiles: pd.DataFrame) -> np.ndarray:
        """(len(profiles), n_items) scores: item shares of each profile's group (with back-off)."""
        self._check_fitted()
        profiles = profiles.reset_index(drop=True)
        missing = [c for c in self.columns_ if c not in profiles.columns]
        if missing:
            raise ValueError(f"profiles lack the columns {missing} this model groups by")
        out = np.empty((len(profiles), self.n_items_), dtype=np.float32)
        todo = np.ones(len(profiles), dtype=bool)
        for depth, (keys, shares, users) in zip(range(len(self.columns_), -1, -1), self.levels_, strict=True):
            index = {k: g for g, k in enumerate(keys)}
            wanted = _group_keys(profiles, self.columns_[:depth])
            for r in np.flatnonzero(todo):
                g = index.get(wanted[r])
                if g is not None and (users[g] >= self.min_group_users or depth == 0):
                    out[r] = shares[g]
                    todo[r] = False
        return out

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.levels_[-1][1][0], x.shape).copy()

    def _state(self) -> dict[str, np.ndarray]:
        state = {
            "meta_json": np.frombuffer(
                json.dumps({"columns": self.columns_, "keys": [lv[0] for lv in self.levels_]}).encode(), dtype=np.uint8
            ).copy()
        }
        for i, (_, shares, users) in enumerate(self.levels_):
            state[f"level{i}.shares"] = shares
            state[f"level{i}.users"] = users
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        meta = json.loads(bytes(np.asarray(arrays["meta_json"], dtype=np.uint8)).decode())
        self.columns_ = list(meta["columns"])
        self.levels_ = [
            (list(keys), arrays[f"level{i}.shares"], arrays[f"level{i}.users"]) for i, keys in enumerate(meta["keys"])
        ]
