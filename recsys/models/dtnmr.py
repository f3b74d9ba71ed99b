"""DTNMR-style temporal model with user and item metadata (seed 003).

After Zheng et al. 2019, "A Deep Temporal Neural Music Recommendation Model Utilizing Music and
User Metadata": a user is described by a multi-hot **profile** (demographics; synthetic age group,
region), a **long-term** representation (the whole history) and a **short-term** one (the latest
plays, in order); an item by its ID and its multi-hot **metadata** (tags/genres, artist; on
MovieLens the genres and the year). Network (``DTNMRNet``)::

    item i:   e_i = E_id[i] + mean_f E_feat[f]                 (f over the item's metadata bits)
    profile:  p   = mean_f E_user[f]                           (zero vector when unknown)
    long:     l   = mean of e_j over the last ``long_term_len`` items (and any stated tags' E_feat)
    short:    s   = GRU over e_j of the last ``short_term_len`` items, in order (last hidden state)
    user:     u   = MLP([p, l, s, p * l])                      (ReLU, dropout) -> dim
    score:    u . e_i + b_i                                    (every item at once: u @ E^T)

Training follows the reference implementation's data points: every kept (user, position) pair
(see :mod:`recsys.models.dtnmr_prep`) is a point whose positive is the item at that position and
whose context is everything before it; ``subset_size`` negatives per point are drawn uniformly
from the kept items, never from the user's own items; the loss is the sampled softmax
cross-entropy over [positive, negatives] (``loss="bce"``: independent sigmoid terms).
``profile_dropout`` / ``history_dropout`` hide the profile / the history of a share of the points,
so the model learns to score users with no profile and users with only a profile (cold start).

Preprocessing (filters ``top``, ``min_playlist_len``, ``max_playlist_len``, metadata encoders,
training points) is cached on disk keyed by its configuration when ``cache_dir`` is set.
:class:`DTNMRPoints` is the torch ``Dataset`` of training points (its ``collate`` builds a whole
batch vectorised). :func:`~recsys.next_item.train_validate_test` is the train/validate/test
wrapper (early stopping on next-item NDCG@100 of validation users, with their profiles).

Scoring: ``score_sequences(seqs, profiles=DataFrame, tags=[[...]])`` uses the order, the profile
columns seen in training and any tags a person states (added to the long-term pool: the tag's
metadata embedding lives in the item space); ``score(csr)`` reads the fallback order of
:mod:`recsys.models.sequential` and no profile. Items outside ``top`` get a fixed -1e4 bias.

References
----------
Zheng, H.-T. et al. Appl. Sci. 2019, 9, 703. https://www.mdpi.com/2076-3417/9/4/703
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.sequences import OrderedHistories
from .base import register
from .dtnmr_prep import DTNMRData, PrepConfig, encode_multi_hot, preprocess, sample_negatives, user_feature_names
from .sequential import SequentialRecommender, load_device
from .torch_utils import (
    import_torch,
    load_numpy_state,
    resolve_device,
    seed_everything,
    state_dict_to_numpy,
    train_epochs,
)

#: Bias of items outside the ``top`` filter: they rank last but scores stay finite.
FILTERED_BIAS = -1e4


class DTNMRNet(nn.Module):
    """Item, profile, long-term and short-term encoders; dot-product scores over all items."""

    def __init__(
        self,
        n_items: int,
        n_item_feats: int,
        n_user_feats: int,
        item_feat_indptr: np.ndarray,
        item_feat_ids: np.ndarray,
        item_extra_bias: np.ndarray,
        dim: int,
        hidden: int,
        dropout: float,
    ):
        super().__init__()
        self.n_items, self.pad = n_items, n_items
        self.item_id = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.item_feat = nn.EmbeddingBag(max(n_item_feats, 1), dim, mode="mean")
        self.user_feat = nn.EmbeddingBag(max(n_user_feats, 1), dim, mode="mean")
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(4 * dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        for emb in (self.item_id, self.item_feat, self.user_feat):
            nn.init.normal_(emb.weight, std=0.05)
        with torch.no_grad():
            self.item_id.weight[n_items].zero_()
        self.register_buffer("feat_ids", torch.as_tensor(item_feat_ids, dtype=torch.long), persistent=False)
        self.register_buffer("feat_offsets", torch.as_tensor(item_feat_indptr[:-1], dtype=torch.long), persistent=False)
        self.register_buffer("extra_bias", torch.as_tensor(item_extra_bias, dtype=torch.float32), persistent=False)

    def item_table(self) -> torch.Tensor:
        """(n_items + 1, dim) item representations; the last row (padding) is zero."""
        feats = self.item_feat(self.feat_ids, self.feat_offsets)
        e = self.item_id.weight[: self.n_items] + feats
        return torch.cat([e, torch.zeros_like(e[:1])], dim=0)

    def user_vector(
        self,
        table: torch.Tensor,
        short: torch.Tensor,
        long: torch.Tensor,
        profile_ids: torch.Tensor,
        profile_offsets: torch.Tensor,
        extra_long: torch.Tensor | None = None,
        extra_count: torch.Tensor | None = None,
        profile_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(batch, dim) user representations from padded short/long windows and profile bags.

        ``extra_long`` (batch, dim) / ``extra_count`` (batch,): sums and counts of stated-tag
        embeddings pooled with the long-term history. ``profile_keep`` (batch,) bool: False hides
        the profile (as an empty bag).
        """
        p = self.user_feat(profile_ids, profile_offsets)
        if profile_keep is not None:
            p = p * profile_keep[:, None].to(p.dtype)
        # long-term mean as a sparse (batch, n_items + 1) pooling matrix times the item table:
        # cheaper forward and backward than gathering (batch, long_term_len, dim)
        real = long != self.pad
        count = real.sum(1).to(table.dtype)
        rows = torch.arange(long.shape[0], device=long.device)[:, None].expand_as(long)[real]
        pool = torch.sparse_coo_tensor(
            torch.stack([rows, long[real]]),
            torch.ones(len(rows), device=long.device),
            (long.shape[0], table.shape[0]),
            check_invariants=False,
        )
        total = torch.sparse.mm(pool, table)
        if extra_long is not None:
            total = total + extra_long
            count = count + extra_count
        lt = total / count.clamp(min=1.0)[:, None]
        _, h = self.gru(table[short])
        s = h[-1]
        return self.mlp(torch.cat([p, lt, s, p * lt], dim=-1))

    def all_scores(self, u: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return u @ table[: self.n_items].T + self.item_bias + self.extra_bias


class DTNMRPoints(torch.utils.data.Dataset):
    """The training points of :class:`DTNMRData` as a torch ``Dataset``.

    ``points[i]`` is a dict of tensors for point i (``collate([i])`` without the batch axis);
    ``collate(indices)`` builds a batch at once: ``short`` (B, short_term_len) and ``long``
    (B, long_term_len) right-aligned item windows before the positive (PAD = n_items), ``positive``
    (B,), ``negatives`` (B, subset_size, never the user's items), ``profile_ids`` / ``profile_offsets``
    (EmbeddingBag input), ``user`` (B,). Negatives come from ``rng`` (seeded by the model).
    """

    def __init__(self, data: DTNMRData, *, short_term_len: int, long_term_len: int, subset_size: int, rng):
        self.data = data
        self.short_term_len = int(short_term_len)
        self.long_term_len = int(long_term_len)
        self.subset_size = int(subset_size)
        self.rng = rng
        self.candidates = np.flatnonzero(data.item_kept)
        self.positives = data.user_positives()

    def __len__(self) -> int:
        return self.data.n_points

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.collate(np.asarray([i]))
        return {k: (v if k.startswith("profile") else v[0]) for k, v in batch.items()}

    def collate(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        d = self.data
        users, pos = d.point_user[idx], d.point_pos[idx]
        seqs, pad = d.sequences, d.n_items
        out = {
            "user": torch.from_numpy(users),
            "short": torch.from_numpy(seqs.windows(users, pos, self.short_term_len, pad)),
            "long": torch.from_numpy(seqs.windows(users, pos, self.long_term_len, pad)),
            "positive": torch.from_numpy(seqs.items[seqs.indptr[users] + pos]),
            "negatives": torch.from_numpy(
                sample_negatives(self.rng, users, self.subset_size, self.candidates, self.positives)
            ),
        }
        ids, offsets = _bags(d.user_feat_indptr, d.user_feat_ids, users)
        out["profile_ids"], out["profile_offsets"] = torch.from_numpy(ids), torch.from_numpy(offsets)
        return out


def _bags(indptr: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EmbeddingBag (flat ids, offsets) for these rows of a CSR-like multi-hot encoding."""
    lengths = indptr[rows + 1] - indptr[rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = ids[np.repeat(indptr[rows], lengths) + np.arange(lengths.sum()) - np.repeat(offsets, lengths)]
    return flat.astype(np.int64), offsets


@register("dtnmr")
class DTNMR(SequentialRecommender):
    """Deep temporal model with user/item metadata, short- and long-term histories (DTNMR-style).

    Parameters
    ----------
    dim, hidden : int
        Embedding size and the user MLP's hidden width.
    short_term_len, long_term_len : int
        Recent items fed to the GRU; items averaged for the long-term representation.
    subset_size : int
        Negatives sampled per training point (the reference's ``--subset-size``).
    top : float
        Share of items (by training popularity) kept as targets and negatives.
    min_playlist_len, max_playlist_len : int, int or None
        Users with fewer / more training items give no training points.
    max_points_per_user : int or None
        Training points per user (evenly spaced positions; None = all).
    item_features : tuple of {"tags", "artist"}
        Item metadata bits.
    user_features : tuple of str or None
        Profile columns of the data set's ``user_features`` (None = all columns).
    loss : {"sampled_softmax", "bce"}
    profile_dropout, history_dropout, dropout : float
        Share of points trained without a profile / without a history; MLP dropout.
    cache_dir : str or None
        Where preprocessing is cached (None = not cached).
    epochs, batch_size, lr, weight_decay, patience, seed, device, show_progress :
        Training schedule (Adam), early stopping on validation NDCG@100.

    Attributes
    ----------
    module_ : DTNMRNet
    item_vocab_, user_vocab_, user_columns_ : metadata vocabularies (stored with the weights)
    prep_from_cache_ : bool
        Whether the last fit reused cached preprocessing.
    """

    score_kind = "similarity"
    uses_metadata = True
    inference_batch_size = 1000

    def __init__(
        self,
        *,
        dim: int = 64,
        hidden: int = 128,
        short_term_len: int = 10,
        long_term_len: int = 100,
        subset_size: int = 50,
        top: float = 1.0,
        min_playlist_len: int = 1,
        max_playlist_len: int | None = None,
        max_points_per_user: int | None = 50,
        item_features: tuple[str, ...] = ("tags", "artist"),
        user_features: tuple[str, ...] | None = None,
        loss: str = "sampled_softmax",
        profile_dropout: float = 0.1,
        history_dropout: float = 0.1,
        dropout: float = 0.2,
        cache_dir: str | None = None,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        patience: int | None = 3,
        seed: int = 0,
        device: str = "cpu",
        show_progress: bool = False,
    ):
        self.dim = dim
        self.hidden = hidden
        self.short_term_len = short_term_len
        self.long_term_len = long_term_len
        self.subset_size = subset_size
        self.top = top
        self.min_playlist_len = min_playlist_len
        self.max_playlist_len = max_playlist_len
        self.max_points_per_user = max_points_per_user
        self.item_features = item_features
        self.user_features = user_features
        self.loss = loss
        self.profile_dropout = profile_dropout
        self.history_dropout = history_dropout
        self.dropout = dropout
        self.cache_dir = cache_dir
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.device = device
        self.show_progress = show_progress

    def prep_config(self) -> PrepConfig:
        """The preprocessing part of the parameters (the cache key's)."""
        return PrepConfig(
            top=float(self.top),
            min_playlist_len=int(self.min_playlist_len),
            max_playlist_len=None if self.max_playlist_len is None else int(self.max_playlist_len),
            max_points_per_user=None if self.max_points_per_user is None else int(self.max_points_per_user),
            item_features=tuple(self.item_features),
            user_features=None if self.user_features is None else tuple(self.user_features),
        )

    def _check_params(self) -> None:
        if self.loss not in ("sampled_softmax", "bce"):
            raise ValueError(f"loss must be 'sampled_softmax' or 'bce', got {self.loss!r}")
        for name in ("short_term_len", "long_term_len", "subset_size", "dim", "hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("profile_dropout", "history_dropout", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def _build_module(self, n_item_feats, n_user_feats, feat_indptr, feat_ids, extra_bias) -> DTNMRNet:
        return DTNMRNet(
            self.n_items_,
            n_item_feats,
            n_user_feats,
            feat_indptr,
            feat_ids,
            extra_bias,
            int(self.dim),
            int(self.hidden),
            float(self.dropout),
        )

    # ---- fitting ----------------------------------------------------------------------------
    def _fit(self, train, validation, progress) -> None:
        import_torch()
        self._check_params()
        cfg = self.prep_config()
        self.device_ = resolve_device(self.device)
        seed_everything(self.seed)
        data = preprocess(train, cfg, cache_dir=self.cache_dir)
        if data.n_points == 0:
            raise ValueError("no training points after the filters (top, min/max_playlist_len): loosen them")
        self.prep_from_cache_ = data.from_cache
        self.item_vocab_, self.user_vocab_, self.user_columns_ = data.item_vocab, data.user_vocab, data.user_columns
        self._item_feat_indptr, self._item_feat_ids = data.item_feat_indptr, data.item_feat_ids
        self._extra_bias = np.where(data.item_kept, 0.0, FILTERED_BIAS).astype(np.float32)
        self.module_ = self._build_module(
            len(data.item_vocab), len(data.user_vocab), data.item_feat_indptr, data.item_feat_ids, self._extra_bias
        ).to(self.device_)
        net = self.module_
        rng = np.random.default_rng(self.seed)
        points = DTNMRPoints(
            data,
            short_term_len=self.short_term_len,
            long_term_len=self.long_term_len,
            subset_size=self.subset_size,
            rng=rng,
        )
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        dev = self.device_

        def step(batch: torch.Tensor) -> torch.Tensor:
            b = points.collate(batch[:, 0].long().cpu().numpy())
            n = len(b["user"])
            short, long = b["short"].to(dev), b["long"].to(dev)
            hide = torch.from_numpy(rng.random(n) < self.history_dropout).to(dev)
            short = torch.where(hide[:, None], net.pad, short)
            long = torch.where(hide[:, None], net.pad, long)
            ids, offsets = b["profile_ids"].to(dev), b["profile_offsets"].to(dev)
            table = net.item_table()
            keep_profile = torch.from_numpy(rng.random(n) >= self.profile_dropout).to(dev)
            u = net.user_vector(table, short, long, ids, offsets, profile_keep=keep_profile)
            cand = torch.cat([b["positive"][:, None], b["negatives"]], dim=1).to(dev)
            logits = torch.bmm(table[cand], u[:, :, None])[:, :, 0] + net.item_bias[cand]
            if self.loss == "bce":
                target = torch.zeros_like(logits)
                target[:, 0] = 1.0
                return nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()
            return nn.functional.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=dev))

        validate = None
        if validation is not None and validation[0].shape[0]:
            validate = self._validator(validation)
        train_epochs(
            self,
            net,
            np.arange(data.n_points, dtype=np.float32)[:, None],
            step,
            opt,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=self.seed,
            device=None,
            patience=self.patience,
            progress=progress,
            show_progress=self.show_progress,
            validate=validate,
        )
        net.eval()

    def _validator(self, validation):
        """NDCG@100 of validation users (fold-in CSR in position order, held-out CSR[, profiles])."""
        from ..metrics import ranking_metrics

        foldin, holdout = validation[0], validation[1]
        profiles = validation[2] if len(validation) > 2 else None
        seqs = OrderedHistories.from_csr(foldin)

        def validate() -> float:
            scores = self._score_sequences(seqs, profiles, None)
            m = ranking_metrics(scores, foldin, holdout, recall_ks=(), ndcg_ks=(100,))
            return float(m["ndcg@100"].mean()) if len(m["ndcg@100"]) else 0.0

        return validate

    # ---- inference --------------------------------------------------------------------------
    def _profile_bags(self, profiles: pd.DataFrame | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        if profiles is None or not self.user_columns_:
            return np.zeros(0, np.int64), np.zeros(n, np.int64)
        cols = [c for c in self.user_columns_ if c in profiles.columns]
        names = user_feature_names(profiles.reset_index(drop=True), cols)
        indptr, ids = encode_multi_hot(names, {v: j for j, v in enumerate(self.user_vocab_)})
        return ids, indptr[:-1].astype(np.int64)

    def _tag_pool(self, tags: list[list[str]] | None, n: int) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
        if tags is None:
            return None, None
        vocab = {v: j for j, v in enumerate(self.item_vocab_)}
        weight = self.module_.item_feat.weight
        sums = torch.zeros((n, weight.shape[1]), device=weight.device)
        counts = torch.zeros(n, device=weight.device)
        for r, row in enumerate(tags):
            ids = [vocab[f"tag:{t}"] for t in row if f"tag:{t}" in vocab]
            if ids:
                sums[r] = weight[ids].sum(0)
                counts[r] = len(ids)
        return sums, counts

    def _score_sequences(self, seqs, profiles, tags) -> np.ndarray:
        net = self.module_
        short = seqs.padded(int(self.short_term_len), net.pad)
        long = seqs.padded(int(self.long_term_len), net.pad)
        p_ids, p_off = self._profile_bags(profiles, seqs.n_users)
        p_ptr = np.append(p_off, len(p_ids))
        out = np.empty((seqs.n_users, self.n_items_), dtype=np.float32)
        was_training = net.training
        net.eval()
        dev = self.device_
        try:
            with torch.no_grad():
                table = net.item_table()
                extra, extra_n = self._tag_pool(tags, seqs.n_users)
                for lo in range(0, seqs.n_users, self.inference_batch_size):
                    rows = np.arange(lo, min(lo + self.inference_batch_size, seqs.n_users))
                    ids, offsets = _bags(p_ptr, p_ids, rows)
                    u = net.user_vector(
                        table,
                        torch.from_numpy(short[rows]).to(dev),
                        torch.from_numpy(long[rows]).to(dev),
                        torch.from_numpy(ids).to(dev),
                        torch.from_numpy(offsets).to(dev),
                        None if extra is None else extra[rows],
                        None if extra_n is None else extra_n[rows],
                    )
                    out[rows] = net.all_scores(u, table).float().cpu().numpy()
        finally:
            net.train(was_training)
        return out

    # ---- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        meta = {"item_vocab": self.item_vocab_, "user_vocab": self.user_vocab_, "user_columns": self.user_columns_}
        return {
            **state_dict_to_numpy(self.module_, "net."),
            "item_feat_indptr": np.asarray(self._item_feat_indptr, dtype=np.int64),
            "item_feat_ids": np.asarray(self._item_feat_ids, dtype=np.int64),
            "item_extra_bias": np.asarray(self._extra_bias, dtype=np.float32),
            "meta_json": np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8).copy(),
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        import_torch()
        self.device_ = load_device(self.device)
        meta = json.loads(bytes(np.asarray(arrays["meta_json"], dtype=np.uint8)).decode())
        self.item_vocab_, self.user_vocab_ = list(meta["item_vocab"]), list(meta["user_vocab"])
        self.user_columns_ = list(meta["user_columns"])
        self._item_feat_indptr, self._item_feat_ids = arrays["item_feat_indptr"], arrays["item_feat_ids"]
        self._extra_bias = arrays["item_extra_bias"]
        module = self._build_module(
            len(self.item_vocab_), len(self.user_vocab_), self._item_feat_indptr, self._item_feat_ids, self._extra_bias
        )
        load_numpy_state(module, {k: v for k, v in arrays.items() if k.startswith("net.")}, "net.")
        self.module_ = module.to(self.device_).eval()
