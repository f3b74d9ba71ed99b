"""DTNMR preprocessing: filters, multi-hot metadata encoders, training points, negative sampling.

Torch-free. :func:`preprocess` turns a training :class:`~recsys.data.Dataset` into
:class:`DTNMRData`:

* **filters** (as the DTNMR reference's command line): ``top`` keeps the ``top`` share of items by
  training popularity as prediction targets and negatives (the others stay in histories as
  context); ``min_playlist_len`` / ``max_playlist_len`` drop users whose history is shorter / longer
  from the training points.
* **metadata encoders** (multi-hot, stored as CSR-like ``indptr`` + ``ids``): items by
  ``item_features`` of the item table (``"tags"`` -> ``tag:rock``, ``"artist"`` -> ``artist:NAME``;
  on MovieLens the artist column holds the year), users by the columns of ``user_features``
  (``age_group=25-34``; values with ``|`` give several bits, e.g. synthetic ``favourite_tags``).
* **training points**: (user, position t) pairs; the item at t is the positive and everything
  before it the context (t = 0: no history, the profile alone). ``max_points_per_user`` keeps that
  many positions per user, evenly spaced over the history (first and last included).

**Cache.** With ``cache_dir`` the result is stored as ``dtnmr-<key>.npz`` (``np.savez``, read with
``allow_pickle=False``) plus ``dtnmr-<key>.json`` (vocabularies, the key, the npz's sha256), both
written atomically (:mod:`recsys.io`, the JSON last, so its presence means complete). The key is the
sha256 of the preprocessing version, the data set's fingerprint (interactions, timestamps, item
table), a hash of its user features and every preprocessing parameter: change any input and the key
changes, so a stale file is never read; a file whose checksum fails is rebuilt and overwritten.

:func:`sample_negatives` draws negatives uniformly from the kept items and never returns an item
of the user's own training history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.dataset import Dataset
from ..data.sequences import OrderedHistories
from ..io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger("recsys")

#: Bump when the preprocessing output changes meaning: old cache files are then never read.
PREP_VERSION = 1
ITEM_FEATURE_KINDS = ("tags", "artist")


@dataclass(frozen=True)
class PrepConfig:
    """Every parameter that changes the preprocessing output (all part of the cache key)."""

    top: float = 1.0
    min_playlist_len: int = 1
    max_playlist_len: int | None = None
    max_points_per_user: int | None = 50
    item_features: tuple[str, ...] = ("tags", "artist")
    user_features: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.top <= 1:
            raise ValueError(f"top must be in (0, 1], got {self.top}")
        if self.min_playlist_len < 1:
            raise ValueError(f"min_playlist_len must be >= 1, got {self.min_playlist_len}")
        if self.max_playlist_len is not None and self.max_playlist_len < self.min_playlist_len:
            raise ValueError(
                f"max_playlist_len ({self.max_playlist_len}) is below min_playlist_len ({self.min_playlist_len})"
            )
        if self.max_points_per_user is not None and self.max_points_per_user < 1:
            raise ValueError(f"max_points_per_user must be >= 1 or None, got {self.max_points_per_user}")
        bad = sorted(set(self.item_features) - set(ITEM_FEATURE_KINDS))
        if bad:
            raise ValueError(f"unknown item_features {bad}; choose from {list(ITEM_FEATURE_KINDS)}")
        object.__setattr__(self, "item_features", tuple(self.item_features))
        if self.user_features is not None:
            object.__setattr__(self, "user_features", tuple(self.user_features))


@dataclass(frozen=True, eq=False)
class DTNMRData:
    """Output of :func:`preprocess` (arrays aligned with the training Dataset's rows and columns)."""

    key: str
    config: PrepConfig
    sequences: OrderedHistories  # every user's training items, oldest first
    item_kept: np.ndarray  # bool (n_items,): target / negative candidates (the ``top`` filter)
    point_user: np.ndarray  # int64 (P,)
    point_pos: np.ndarray  # int64 (P,): position of the positive in the user's sequence
    item_feat_indptr: np.ndarray
    item_feat_ids: np.ndarray
    item_vocab: list[str]
    user_feat_indptr: np.ndarray
    user_feat_ids: np.ndarray
    user_vocab: list[str]
    user_columns: list[str]
    from_cache: bool = field(default=False, compare=False)

    @property
    def n_items(self) -> int:
        return self.sequences.n_items

    @property
    def n_points(self) -> int:
        return len(self.point_user)

    def user_positives(self) -> sp.csr_matrix:
        """Binary (n_users, n_items) CSR of every user's training items (never negatives)."""
        return self.sequences.to_csr("binary")


# ---- metadata encoders --------------------------------------------------------------------------
def _split_values(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [v.strip() for v in str(value).split("|") if v.strip()]


def item_feature_names(items: pd.DataFrame, kinds: tuple[str, ...]) -> list[list[str]]:
    """Per item, its metadata bits: ``tag:<tag>`` for each tag, ``artist:<artist>`` if non-empty."""
    out: list[list[str]] = [[] for _ in range(len(items))]
    if "tags" in kinds:
        for i, tags in enumerate(items["tags"]):
            out[i].extend(f"tag:{t}" for t in dict.fromkeys(tags))
    if "artist" in kinds:
        for i, a in enumerate(items["artist"]):
            if str(a).strip():
                out[i].append(f"artist:{str(a).strip()}")
    return out


def user_feature_names(features: pd.DataFrame | None, columns: list[str]) -> list[list[str]]:
    """Per user (row), its profile bits ``column=value`` (``a|b`` gives two)."""
    if features is None:
        return []
    return [
        [f"{c}={v}" for c in columns for v in _split_values(row[c])] for row in features[columns].to_dict("records")
    ]


def encode_multi_hot(names: list[list[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, ids) of each row's known names (unknown names are dropped)."""
    ids = [[vocab[n] for n in row if n in vocab] for row in names]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in ids])]).astype(np.int64)
    flat = np.asarray([i for r in ids for i in r], dtype=np.int64)
    return indptr, flat


def profile_columns(features: pd.DataFrame | None, wanted: tuple[str, ...] | None) -> list[str]:
    if features is None:
        if wanted:
            raise ValueError(f"user_features {list(wanted)} were asked for but the data set has no user features")
        return []
    cols = list(features.columns) if wanted is None else list(wanted)
    missing = [c for c in cols if c not in features.columns]
    if missing:
        raise ValueError(
            f"user_features {missing} are not columns of the data set's user features {list(features.columns)}"
        )
    return cols


# ---- training points ----------------------------------------------------------------------------
def _points(seqs: OrderedHistories, item_kept: np.ndarray, cfg: PrepConfig) -> tuple[np.ndarray, np.ndarray]:
    n = seqs.lengths
    ok = n >= cfg.min_playlist_len
    if cfg.max_playlist_len is not None:
        ok &= n <= cfg.max_playlist_len
    users, positions = [], []
    for u in np.flatnonzero(ok):
        pos = np.flatnonzero(item_kept[seqs[u]])
        m = cfg.max_points_per_user
        if m is not None and len(pos) > m:
            pos = pos[np.unique(np.round(np.linspace(0, len(pos) - 1, m)).astype(np.int64))]
        users.append(np.full(len(pos), u, dtype=np.int64))
        positions.append(pos.astype(np.int64))
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users), np.concatenate(positions)


def _user_features_hash(features: pd.DataFrame | None) -> str | None:
    if features is None:
        return None
    h = hashlib.sha256("\x1f".join(map(str, features.columns)).encode())
    h.update(pd.util.hash_pandas_object(features.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def cache_key(ds: Dataset, cfg: PrepConfig) -> str:
    """sha256 over the preprocessing version, the data's content and every preprocessing parameter."""
    payload = {
        "version": PREP_VERSION,
        "dataset": ds.fingerprint,
        "user_features": _user_features_hash(ds.user_features),
        "config": dataclasses.asdict(cfg),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()


def _build(ds: Dataset, cfg: PrepConfig, key: str) -> DTNMRData:
    seqs = OrderedHistories.from_dataset(ds)
    pop = np.bincount(seqs.items, minlength=ds.n_items)
    n_keep = max(1, int(np.ceil(cfg.top * ds.n_items)))
    item_kept = np.zeros(ds.n_items, dtype=bool)
    item_kept[np.argsort(-pop, kind="stable")[:n_keep]] = True
    point_user, point_pos = _points(seqs, item_kept, cfg)
    item_names = item_feature_names(ds.items, cfg.item_features)
    item_vocab = sorted({n for row in item_names for n in row})
    i_ptr, i_ids = encode_multi_hot(item_names, {n: j for j, n in enumerate(item_vocab)})
    cols = profile_columns(ds.user_features, cfg.user_features)
    user_names = user_feature_names(ds.user_features, cols) or [[] for _ in range(ds.n_users)]
    user_vocab = sorted({n for row in user_names for n in row})
    u_ptr, u_ids = encode_multi_hot(user_names, {n: j for j, n in enumerate(user_vocab)})
    return DTNMRData(
        key=key,
        config=cfg,
        sequences=seqs,
        item_kept=item_kept,
        point_user=point_user,
        point_pos=point_pos,
        item_feat_indptr=i_ptr,
        item_feat_ids=i_ids,
        item_vocab=item_vocab,
        user_feat_indptr=u_ptr,
        user_feat_ids=u_ids,
        user_vocab=user_vocab,
        user_columns=cols,
    )


# ---- cache ------------------------------------------------------------------------------------
_ARRAYS = (
    "item_kept",
    "point_user",
    "point_pos",
    "item_feat_indptr",
    "item_feat_ids",
    "user_feat_indptr",
    "user_feat_ids",
)


def cache_paths(cache_dir: str | Path, key: str) -> tuple[Path, Path]:
    stem = Path(cache_dir) / f"dtnmr-{key[:24]}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _save(data: DTNMRData, cache_dir: str | Path) -> None:
    npz_path, json_path = cache_paths(cache_dir, data.key)
    buf = io.BytesIO()
    arrays = {name: getattr(data, name) for name in _ARRAYS}
    arrays |= {"seq_indptr": data.sequences.indptr, "seq_items": data.sequences.items}
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    atomic_write_bytes(npz_path, blob)
    meta = {
        "key": data.key,
        "prep_version": PREP_VERSION,
        "config": dataclasses.asdict(data.config),
        "n_items": data.n_items,
        "item_vocab": data.item_vocab,
        "user_vocab": data.user_vocab,
        "user_columns": data.user_columns,
        "npz_sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write_text(json_path, json.dumps(meta, ensure_ascii=False))


def _load(cache_dir: str | Path, key: str, cfg: PrepConfig) -> DTNMRData | None:
    """The cached result for ``key``, or None if absent, from another key, or failing its checksum."""
    npz_path, json_path = cache_paths(cache_dir, key)
    if not (npz_path.is_file() and json_path.is_file()):
        return None
    try:
        meta = json.loads(json_path.read_text())
        blob = npz_path.read_bytes()
        if meta.get("key") != key or hashlib.sha256(blob).hexdigest() != meta.get("npz_sha256"):
            logger.warning("dtnmr cache %s does not match its key or checksum: rebuilding it", npz_path)
            return None
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        seqs = OrderedHistories(arrays.pop("seq_indptr"), arrays.pop("seq_items"), int(meta["n_items"]))
        return DTNMRData(
            key=key,
            config=cfg,
            sequences=seqs,
            item_vocab=list(meta["item_vocab"]),
            user_vocab=list(meta["user_vocab"]),
            user_columns=list(meta["user_columns"]),
            from_cache=True,
            **{name: arrays[name] for name in _ARRAYS},
        )
    except (OSError, ValueError, KeyError) as e:
        logger.warning("dtnmr cache %s is unreadable (%s): rebuilding it", npz_path, e)
        return None


def preprocess(ds: Dataset, config: PrepConfig | None = None, *, cache_dir: str | Path | None = None) -> DTNMRData:
    """Preprocess ``ds`` for DTNMR; with ``cache_dir``, reuse or write the cached result (see module doc)."""
    cfg = config or PrepConfig()
    key = cache_key(ds, cfg)
    if cache_dir is not None:
        cached = _load(cache_dir, key, cfg)
        if cached is not None:
            logger.info("dtnmr preprocessing: reusing %s", cache_paths(cache_dir, key)[0])
            return cached
    data = _build(ds, cfg, key)
    if cache_dir is not None:
        _save(data, cache_dir)
        logger.info("dtnmr preprocessing: cached in %s", cache_paths(cache_dir, key)[0])
    return data


# ---- negative sampling --------------------------------------------------------------------------
def sample_negatives(
    rng: np.random.Generator,
    users: np.ndarray,
    n_negatives: int,
    candidates: np.ndarray,
    positives: sp.csr_matrix,
    *,
    max_rounds: int = 20,
) -> np.ndarray:
    """(len(users), n_negatives) items drawn uniformly from ``candidates``, none in the user's row of
    ``positives`` (a CSR with sorted indices). Draws with replacement across a row; collisions with
    positives are redrawn, and rows still colliding after ``max_rounds`` draw from their explicit
    complement. Raises ValueError for a user whose positives cover every candidate."""
    users = np.asarray(users, dtype=np.int64)
    n_items = positives.shape[1]
    keys = np.repeat(np.arange(positives.shape[0], dtype=np.int64), np.diff(positives.indptr)) * n_items
    keys += positives.indices  # sorted: rows ascending, indices sorted within a row

    def collides(u: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = u * n_items + items
        pos = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
        return keys[pos] == q if len(keys) else np.zeros(q.shape, dtype=bool)

    out = candidates[rng.integers(0, len(candidates), (len(users), n_negatives))]
    u_mat = np.broadcast_to(users[:, None], out.shape)
    bad = collides(u_mat, out)
    for _ in range(max_rounds):
        if not bad.any():
            return out
        out[bad] = candidates[rng.integers(0, len(candidates), int(bad.sum()))]
        bad[bad] = collides(u_mat[bad], out[bad])
    for r in np.unique(np.flatnonzero(bad.any(axis=1))):
        own = positives.indices[positives.indptr[users[r]] : positives.indptr[users[r] + 1]]
        free = np.setdiff1d(candidates, own)
        if len(free) == 0:
            raise ValueError(f"user row {users[r]} has every candidate item as a positive: no negatives to draw")
        out[r, bad[r]] = free[rng.integers(0, len(free), int(bad[r].sum()))]
    return out
