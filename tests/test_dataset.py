"""The Dataset type and the synthetic catalogue's planted structure."""

import numpy as np
import pandas as pd
import pytest

from recsys.data.dataset import build_dataset
from recsys.data.synthetic import GENRES, generate_synthetic


@pytest.fixture(scope="module")
def syn():
    return generate_synthetic(n_users=600, n_items=800, n_artists=120, n_tags=8, seed=5)


def test_synthetic_is_deterministic_and_seeded():
    a = generate_synthetic(n_users=100, n_items=200, n_artists=30, n_tags=5, seed=1)
    b = generate_synthetic(n_users=100, n_items=200, n_artists=30, n_tags=5, seed=1)
    c = generate_synthetic(n_users=100, n_items=200, n_artists=30, n_tags=5, seed=2)
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_default_synthetic_meets_the_spec():
    ds = generate_synthetic()
    assert ds.n_items == 5000 and ds.n_users == 3000
    assert len(ds.tag_vocabulary) >= 20
    assert ds.timestamps is not None and ds.user_features is not None
    pop = np.sort(np.asarray(ds.binary().sum(0)).ravel())[::-1]
    rank = np.arange(1, len(pop) + 1)
    slope = np.polyfit(np.log(rank[10:1000]), np.log(pop[10:1000]), 1)[0]
    assert -1.5 < slope < -0.3  # power law: log-frequency falls linearly with log-rank
    assert pop[:50].sum() > 0.1 * pop.sum()  # the top 1 % of songs hold over 10 % of listens
    assert not ds.items["title"].str.fullmatch(r"s\d+").any()  # names, not ids


def test_planted_structure_users_listen_to_their_favourite_tags(syn):
    tag_m = syn.item_tag_matrix()
    vocab = syn.tag_vocabulary
    x = syn.binary()
    shares = []
    for u in range(0, syn.n_users, 5):
        fav = syn.user_features["favourite_tags"][u].split("|")
        cols = [vocab.index(t) for t in fav]
        items = x[u].indices
        in_fav = (tag_m[items][:, cols].sum(axis=1) > 0).mean()
        shares.append(in_fav)
    assert np.mean(shares) > 0.7  # p_in_taste = 0.85 plus same-artist continuations


def test_timestamps_increase_along_history(syn):
    x = syn.interactions
    u = 3
    lo, hi = x.indptr[u], x.indptr[u + 1]
    assert len(set(syn.timestamps[lo:hi])) == hi - lo


def test_subset_keeps_timestamps_aligned(syn):
    users = np.array([5, 1, 9])
    items = np.arange(0, syn.n_items, 2)
    sub = syn.subset(users=users, items=items)
    for r, u in enumerate(users):
        full = syn.interactions[u]
        lo, hi = syn.interactions.indptr[u], syn.interactions.indptr[u + 1]
        stamp = dict(zip(full.indices, syn.timestamps[lo:hi], strict=True))
        s_lo, s_hi = sub.interactions.indptr[r], sub.interactions.indptr[r + 1]
        for col, ts in zip(sub.interactions.indices[s_lo:s_hi], sub.timestamps[s_lo:s_hi], strict=True):
            assert stamp[items[col]] == ts


def test_build_dataset_sums_duplicates_and_checks_items():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "artist": ["x", "y"], "tags": [("rock",), ()]})
    ds = build_dataset("t", np.array([1, 1, 2]), np.array(["a", "a", "b"]), np.array([1.0, 2.0, 5.0]), items)
    assert ds.interactions.toarray().tolist() == [[3.0, 0.0], [0.0, 5.0]]
    with pytest.raises(ValueError, match="not in the item table"):
        build_dataset("t", np.array([1]), np.array(["zzz"]), None, items)


def test_histories_from_item_ids(syn):
    ids = list(syn.item_ids[[3, 10]])
    h = syn.histories_from_item_ids(ids)
    assert h.shape == (1, syn.n_items) and sorted(h.indices) == [3, 10]
    with pytest.raises(KeyError, match="unknown song ids"):
        syn.histories_from_item_ids(["nope"])


def test_item_tag_matrix(syn):
    m = syn.item_tag_matrix()
    assert m.shape == (syn.n_items, len(syn.tag_vocabulary))
    assert set(syn.tag_vocabulary) <= set(GENRES)
    assert (np.asarray(m.sum(1)).ravel() >= 1).all()
