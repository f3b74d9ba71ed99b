"""Catalogue scale (issue 16): the streaming synthetic generator, EASE's item limit, bounded scoring."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from recsys.data.synthetic import generate_synthetic_at_scale
from recsys.evaluate import ModelSpec, run_protocol
from recsys.models import ease as ease_module
from recsys.models.ease import EASE, TooManyItemsError
from recsys.models.popularity import Popularity
from tests.models.contract import contract_split


def test_scale_generator_is_sparse_deterministic_and_planted() -> None:
    ds = generate_synthetic_at_scale(n_items=3000, n_users=2000, chunk_users=700, seed=3)
    again = generate_synthetic_at_scale(n_items=3000, n_users=2000, chunk_users=700, seed=3)
    assert ds.fingerprint == again.fingerprint
    assert ds.name == "synthetic-3kx2k" and ds.interactions.shape == (2000, 3000)
    x = ds.interactions
    assert x.has_sorted_indices and len(ds.timestamps) == x.nnz and (np.diff(x.indptr) >= 1).all()
    assert 25 < x.nnz / ds.n_users < 45 and (x.data >= 1).all()
    assert len(ds.tag_vocabulary) == 32 and ds.items["item_id"].is_unique and ds.items["artist"].nunique() == 150
    # planted structure: most listens carry one of the listener's favourite genres
    favs = [set(f.split("|")) for f in ds.user_features["favourite_tags"]]
    tags = ds.items["tags"].to_numpy()
    rows = np.repeat(np.arange(ds.n_users), np.diff(x.indptr))
    share = np.mean([bool(favs[u] & set(tags[i])) for u, i in zip(rows[:20000], x.indices[:20000])])
    assert share > 0.7


def test_scale_generator_memory_grows_with_listens_not_users_times_songs() -> None:
    tracemalloc.start()
    try:
        ds = generate_synthetic_at_scale(n_items=60_000, n_users=4000, chunk_users=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense_bytes = ds.n_users * ds.n_items * 4  # 960 MB as float32
    assert peak < 150e6 < dense_bytes, f"peak {peak / 1e6:.0f} MB"


def test_ease_refuses_and_protocol_skips_catalogues_above_its_limit(monkeypatch, caplog) -> None:
    split = contract_split()
    monkeypatch.setattr(ease_module, "MAX_ITEMS", 100)
    with pytest.raises(TooManyItemsError, match=r"EASE is skipped above 100 items.*dlae"):
        EASE().fit(split.train)
    ds = split.train
    with caplog.at_level("WARNING", logger="recsys"):
        out = run_protocol(
            ds, [ModelSpec("popularity", Popularity), ModelSpec("ease", EASE)], seeds=[0], n_heldout_users=40
        )
    assert list(out["model"]) == ["popularity"] and "EASE is skipped" in caplog.text
