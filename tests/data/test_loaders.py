"""Loaders for Last.fm 2K and MovieLens, the catalogue and data-directory resolution.

Real-data tests check the loaders against independent parses of the raw files (plain ``open`` and
``str.split``) and against the published statistics of PROVENANCE.md; they skip where the data is
absent. Small fake MovieLens directories exercise both ML-1M layouts and ML-100K everywhere.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest

import recsys.data as data
from recsys.data import (
    DataNotFoundError,
    list_datasets,
    load_dataset,
    load_lastfm_2k,
    load_lastfm_tag_counts,
    load_ml_1m,
    load_ml_100k,
    normalise_tag,
    resolve_data_dir,
)


def _entry(ds, user, item) -> tuple[float, int]:
    """(weight, position in interactions.data) of one (user id, item id) pair; (0, -1) if absent."""
    x = ds.interactions
    u, i = ds.user_index[user], ds.item_index[item]
    lo, hi = x.indptr[u], x.indptr[u + 1]
    k = np.searchsorted(x.indices[lo:hi], i)
    if k < hi - lo and x.indices[lo + k] == i:
        return float(x.data[lo + k]), int(lo + k)
    return 0.0, -1


def _tsv(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with open(path, encoding=encoding) as f:
        return [line.rstrip("\n").split("\t") for line in f][1:]


# ---- tag normalisation -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hip-Hop", "hip hop"),
        ("hip hop", "hip hop"),
        ("hiphop", "hip hop"),
        ("  HIP_HOP ", "hip hop"),
        ("german hiphop", "german hip hop"),
        ("post-rock", "post rock"),
        ("post  _ rock", "post rock"),
        ("Trip-Hop", "trip hop"),
        ("RnB", "r&b"),
        ("seen live", "seen live"),
    ],
)
def test_normalise_tag(raw, expected):
    assert normalise_tag(raw) == expected


# ---- Last.fm 2K (real data) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def lastfm(lastfm_dir):
    t0 = time.perf_counter()
    ds = load_lastfm_2k(lastfm_dir)
    return ds, time.perf_counter() - t0


@pytest.mark.realdata
def test_lastfm_raw_files_match_published_statistics(lastfm_dir):
    ua = _tsv(lastfm_dir / "user_artists.dat")
    assert len({r[0] for r in ua}) == 1892
    assert len(ua) == 92834
    assert len(_tsv(lastfm_dir / "artists.dat")) == 17632
    assert len(_tsv(lastfm_dir / "tags.dat", encoding="latin-1")) == 11946
    assert len(_tsv(lastfm_dir / "user_taggedartists.dat")) == 186479


@pytest.mark.realdata
def test_lastfm_dataset_matches_raw_listens(lastfm, lastfm_dir):
    ds, seconds = lastfm
    assert seconds < 10, f"loading Last.fm took {seconds:.1f} s (target < 5 s)"
    assert (ds.n_users, ds.interactions.nnz, ds.n_items) == (1892, 92834, 17632)
    assert ds.item_noun == "artist" and ds.timestamps is None
    ua = _tsv(lastfm_dir / "user_artists.dat")
    assert ds.interactions.sum() == pytest.approx(sum(int(r[2]) for r in ua))
    rng = np.random.default_rng(0)
    for k in rng.choice(len(ua), 200, replace=False):
        user, artist, weight = (int(v) for v in ua[k])
        assert _entry(ds, user, artist)[0] == weight


@pytest.mark.realdata
def test_lastfm_artist_names_are_utf8(lastfm, lastfm_dir):
    ds, _ = lastfm
    names = {int(r[0]): r[1] for r in _tsv(lastfm_dir / "artists.dat", encoding="utf-8")}
    titles = dict(zip(ds.items["item_id"], ds.items["title"]))
    assert titles == {a: names[a] for a in titles}
    assert (ds.items["title"] == ds.items["artist"]).all()
    non_ascii = [t for t in titles.values() if not t.isascii()]
    assert len(non_ascii) > 100 and not any("\ufffd" in t for t in non_ascii)
    assert "Röyksopp" in non_ascii  # read as latin-1 it would be "RÃ¶yksopp"


@pytest.mark.realdata
def test_lastfm_tags_are_normalised_top_tags(lastfm, lastfm_dir):
    ds, _ = lastfm
    counts, vocab = load_lastfm_tag_counts(lastfm_dir)
    assert counts.shape == (ds.n_items, len(vocab)) and len(set(vocab)) == len(vocab)
    assert counts.sum() <= 186479
    for t in vocab:
        assert t == normalise_tag(t) and "-" not in t and "_" not in t
    assert "hip hop" in vocab and "hip-hop" not in vocab and "hiphop" not in vocab
    col = {t: j for j, t in enumerate(vocab)}
    dense_rows = counts.tocsr()
    empty = 0
    for i, tags in enumerate(ds.items["tags"]):
        row = dense_rows[i].toarray().ravel()
        assert len(tags) <= 10 and len(set(tags)) == len(tags)
        if not tags:
            empty += 1
            assert row.sum() == 0
            continue
        mine = np.array([row[col[t]] for t in tags])
        assert (np.diff(mine) <= 0).all(), "tags are ordered by how many users gave them"
        others = np.delete(row, [col[t] for t in tags])
        assert len(tags) == min(10, np.count_nonzero(row))
        assert others.max(initial=0) <= mine.min()
    assert empty > 0


@pytest.mark.realdata
def test_lastfm_tag_counts_merge_spellings(lastfm_dir):
    """The 'hip hop' column = distinct users per artist over every raw spelling of hip hop."""
    counts, vocab = load_lastfm_tag_counts(lastfm_dir)
    spellings = {"hip hop", "hip-hop", "hiphop", "hip_hop"}
    tag_ids = {r[0] for r in _tsv(lastfm_dir / "tags.dat", encoding="latin-1") if r[1].strip().lower() in spellings}
    assert len(tag_ids) >= 2
    users: dict[int, set] = {}
    for u, a, t, *_ in _tsv(lastfm_dir / "user_taggedartists.dat"):
        if t in tag_ids:
            users.setdefault(int(a), set()).add(u)
    ds_ids = load_lastfm_2k(lastfm_dir).item_ids
    column = counts[:, vocab.index("hip hop")].toarray().ravel()
    expected = np.array([len(users.get(a, ())) for a in ds_ids])
    np.testing.assert_array_equal(column, expected)


@pytest.mark.realdata
def test_lastfm_tag_dates(lastfm, lastfm_dir):
    ds, _ = lastfm
    dates: dict[int, list] = {}
    for _u, a, _t, d, m, y in _tsv(lastfm_dir / "user_taggedartists.dat"):
        dates.setdefault(int(a), []).append(dt.datetime(int(y), int(m), int(d), tzinfo=dt.UTC).timestamp())
    items = ds.items.set_index("item_id")
    for a in items.index:
        if a in dates:
            assert items.at[a, "last_tagged"] == max(dates[a])
            assert items.at[a, "first_tagged"] == min(dates[a])
        else:
            assert np.isnan(items.at[a, "last_tagged"]) and items.at[a, "tags"] == ()


# ---- MovieLens 1M (real data) ----------------------------------------------------------------
@pytest.mark.realdata
def test_ml1m_full_matches_provenance(ml1m_dir):
    t0 = time.perf_counter()
    ds = load_ml_1m(ml1m_dir)
    seconds = time.perf_counter() - t0
    assert seconds < 30, f"loading ML-1M took {seconds:.1f} s (target < 15 s)"
    assert (ds.n_users, ds.n_items, ds.interactions.nnz) == (6040, 3706, 1000209)
    assert ds.item_noun == "movie"
    layout_partial = not (ml1m_dir / "ratings.dat").exists()
    assert (ds.timestamps is None) == layout_partial
    rated = {}
    for prefix in ml1m_dir.glob("ratings*.dat"):
        with open(prefix) as f:
            for line in f:
                u, m, r, _ = line.split("::")
                rated[(int(u), int(m))] = float(r)
    rng = np.random.default_rng(1)
    pairs = list(rated)
    for k in rng.choice(len(pairs), 300, replace=False):
        assert _entry(ds, *pairs[k])[0] == rated[pairs[k]]
    if layout_partial:
        rated_users = {u for u, _ in rated}
        rows = [ds.user_index[u] for u in ds.user_ids if u not in rated_users]
        assert len(rows) > 0 and (ds.interactions[rows].data == 1.0).all()
    f = ds.user_features
    assert list(f.columns) == ["gender", "age_group", "occupation"] and len(f) == 6040
    assert set(f["gender"]) == {"female", "male"} and "56+" in set(f["age_group"])
    with open(ml1m_dir / "users.dat") as fh:
        first = fh.readline().split("::")
    assert f.iloc[ds.user_index[int(first[0])]]["occupation"] == data.movielens.ML1M_OCCUPATIONS[int(first[3])]


@pytest.mark.realdata
def test_ml1m_titles_are_latin1(ml1m_dir):
    ds = load_ml_1m(ml1m_dir)
    with open(ml1m_dir / "movies.dat", encoding="latin-1") as f:
        raw = {int(line.split("::")[0]): line.split("::")[1] for line in f}
    titles = [t for t in ds.items["title"] if not t.isascii()]
    assert titles and not any("\ufffd" in t or "Ã" in t for t in titles)
    for mid, title, year in zip(ds.items["item_id"], ds.items["title"], ds.items["artist"]):
        assert raw[mid] == f"{title} ({year})"
    assert set(ds.tag_vocabulary) >= {"drama", "comedy", "children's", "sci-fi"}


@pytest.mark.realdata
def test_ml1m_timestamped_only(ml1m_dir):
    ds = load_ml_1m(ml1m_dir, timestamped_only=True)
    assert ds.timestamps is not None and len(ds.timestamps) == ds.interactions.nnz
    lines = []
    for prefix in sorted(ml1m_dir.glob("ratings*.dat")):
        with open(prefix) as f:
            lines += [tuple(int(v) for v in line.split("::")) for line in f]
    assert ds.interactions.nnz == len(lines)
    assert ds.n_users == len({u for u, *_ in lines})
    rng = np.random.default_rng(2)
    for k in rng.choice(len(lines), 300, replace=False):
        u, m, r, t = lines[k]
        w, pos = _entry(ds, u, m)
        assert w == r and ds.timestamps[pos] == t
    assert len(ds.user_features) == ds.n_users


# ---- small fake MovieLens directories (always run) -------------------------------------------
MOVIES = [
    (1, "Toy Story (1995)", "Animation|Children's|Comedy"),
    (2, "Cité des enfants perdus, La (1995)", "Adventure|Sci-Fi"),
    (3, "Untitled", "Drama"),
    (4, "Never Rated (1999)", "Horror"),
]
RATINGS = [(1, 1, 5, 100), (1, 2, 3, 200), (2, 1, 4, 300), (2, 3, 2, 400), (3, 2, 1, 500), (3, 3, 5, 600)]


def _write_ml1m(folder: Path, official: bool, prefix_users: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "movies.dat", "w", encoding="latin-1") as f:
        f.writelines(f"{m}::{t}::{g}\n" for m, t, g in MOVIES)
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117-1234\n")
    lines = [f"{u}::{m}::{r}::{t}\n" for u, m, r, t in RATINGS]
    if official:
        (folder / "ratings.dat").write_text("".join(lines))
    else:
        pairs = "".join(f"{u}\t{m}\n" for u, m, _, _ in RATINGS)
        (folder / "ratings_implicit_pairs.tsv").write_text("userID\tmovieID\n" + pairs)
        n = sum(1 for u, *_ in RATINGS if u <= prefix_users)
        (folder / f"ratings_prefix_{n}.dat").write_text("".join(lines[:n]))
    return folder


def test_ml1m_official_layout(tmp_path):
    ds = load_ml_1m(_write_ml1m(tmp_path / "ml-1m", official=True))
    assert (ds.n_users, ds.n_items, ds.interactions.nnz) == (3, 3, 6)
    assert list(ds.items["item_id"]) == [1, 2, 3]  # movie 4 has no rating
    assert list(ds.items["title"]) == ["Toy Story", "Cité des enfants perdus, La", "Untitled"]
    assert list(ds.items["artist"]) == ["1995", "1995", ""]
    assert ds.items["tags"][1] == ("adventure", "sci-fi")
    for u, m, r, t in RATINGS:
        w, pos = _entry(ds, u, m)
        assert w == r and ds.timestamps[pos] == t
    assert list(ds.user_features["age_group"]) == ["under 18", "56+", "25-34"]
    assert list(ds.user_features["occupation"]) == ["K-12 student", "self-employed", "scientist"]
    assert load_ml_1m(tmp_path / "ml-1m", timestamped_only=True).fingerprint == ds.fingerprint


def test_ml1m_partial_layout(tmp_path):
    folder = _write_ml1m(tmp_path / "ml-1m", official=False, prefix_users=2)
    ds = load_ml_1m(folder)
    assert ds.timestamps is None and ds.interactions.nnz == 6
    for u, m, r, _ in RATINGS:
        assert _entry(ds, u, m)[0] == (r if u <= 2 else 1.0)
    ts = load_ml_1m(folder, timestamped_only=True)
    assert list(ts.user_ids) == [1, 2] and ts.interactions.nnz == 4
    for u, m, r, t in RATINGS[:4]:
        w, pos = _entry(ts, u, m)
        assert w == r and ts.timestamps[pos] == t
    assert list(ts.user_features["gender"]) == ["female", "male"]


def _write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in RATINGS))
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary"]
    genres += ["Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi"]
    genres += ["Thriller", "War", "Western"]
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(genres)) + "\n")
    rows = []
    for m, title, g in MOVIES:
        flags = ["1" if x in g.split("|") else "0" for x in genres]
        if m == 3:
            flags[0] = "1"  # "unknown" is not a tag
        rows.append("|".join([str(m), title, "01-Jan-1995", "", "http://us.imdb.com/x", *flags]) + "\n")
    (folder / "u.item").write_bytes("".join(rows).encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|17|M|student|32067\n")
    return folder


def test_ml100k(tmp_path):
    ds = load_ml_100k(_write_ml100k(tmp_path / "ml-100k"))
    assert (ds.n_users, ds.n_items, ds.interactions.nnz) == (3, 3, 6)
    assert ds.name == "ml-100k" and ds.item_noun == "movie"
    assert ds.items["title"][1] == "Cité des enfants perdus, La"
    assert ds.items["tags"][0] == ("animation", "children's", "comedy")
    assert ds.items["tags"][2] == ("drama",)
    for u, m, r, t in RATINGS:
        w, pos = _entry(ds, u, m)
        assert w == r and ds.timestamps[pos] == t
    f = ds.user_features
    assert list(f["age_group"]) == ["18-24", "50-55", "under 18"]
    assert list(f["gender"]) == ["male", "female", "male"]
    assert list(f["occupation"]) == ["technician", "other", "student"]


# ---- catalogue and data directory ------------------------------------------------------------
@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    """No environment variable and no fallback folders: resolution starts from nothing."""
    monkeypatch.delenv("RECSYS_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "SHARED_DATA_DIR", tmp_path / "absent-shared")
    monkeypatch.setattr(data, "CACHE_DATA_DIR", tmp_path / "absent-cache")
    return tmp_path


def test_resolve_data_dir_precedence(no_defaults, monkeypatch):
    tmp = no_defaults
    assert resolve_data_dir() is None
    cache = tmp / "cache"
    cache.mkdir()
    monkeypatch.setattr(data, "CACHE_DATA_DIR", cache)
    assert resolve_data_dir() == cache
    shared = tmp / "shared"
    shared.mkdir()
    monkeypatch.setattr(data, "SHARED_DATA_DIR", shared)
    assert resolve_data_dir() == shared
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp / "env"))
    assert resolve_data_dir() == tmp / "env"  # explicit choices are returned even if missing
    assert resolve_data_dir(tmp / "flag") == tmp / "flag"
    assert resolve_data_dir("~/x") == Path.home() / "x"


def test_load_dataset_finds_fetched_data_in_cache_behind_shared(no_defaults, monkeypatch):
    shared, cache = no_defaults / "shared", no_defaults / "cache"
    shared.mkdir()
    _write_ml100k(cache / "ml-100k")
    monkeypatch.setattr(data, "SHARED_DATA_DIR", shared)
    monkeypatch.setattr(data, "CACHE_DATA_DIR", cache)
    assert load_dataset("ml-100k").n_users == 3
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["ml-100k"]["available"] and rows["ml-100k"]["path"] == cache / "ml-100k"
    assert not rows["ml-1m"]["available"] and rows["ml-1m"]["path"] == cache / "ml-1m"
    assert rows["synthetic"]["available"] and rows["synthetic"]["path"] is None


def test_load_dataset_missing_names_path_and_fetch_command(no_defaults):
    root = no_defaults / "data"
    root.mkdir()
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("ml-1m", root)
    msg = str(e.value)
    assert str(root / "ml-1m") in msg and "python -m recsys data fetch ml-1m" in msg and "ratings.dat" in msg
    with pytest.raises(DataNotFoundError, match="python -m recsys data fetch lastfm-2k"):
        load_dataset("lastfm-2k")  # no data directory at all
    with pytest.raises(ValueError, match="did you mean 'ml-1m'"):
        load_dataset("ml-1n", root)


def test_load_dataset_by_folder_alias_and_kwargs(no_defaults):
    root = no_defaults / "data"
    _write_ml1m(root / "ml-1m", official=False)
    assert load_dataset("ml-1m", root).n_users == 3
    assert load_dataset("movielens-1m", root / "ml-1m").n_users == 3  # the folder itself works too
    assert load_dataset("ml-1m", root, timestamped_only=True).n_users == 2
    small = load_dataset("synthetic", n_users=60, n_items=100, n_artists=20, n_tags=4)
    assert small.n_users <= 60 and small.name == "synthetic"
    rows = list_datasets(root)
    assert [r["name"] for r in rows] == list(data.DATASETS)
    assert {r["name"] for r in rows if r["available"]} == {"synthetic", "ml-1m"}


def test_catalogue_entries():
    assert set(data.DATASETS) == {"synthetic", "lastfm-2k", "ml-1m", "ml-100k"}
    for name, (loader, description, noun) in data.DATASETS.items():
        assert callable(loader) and description and noun in {"song", "artist", "movie"}, name


def test_import_recsys_data_is_light():
    import subprocess
    import sys

    code = "import sys, recsys.data; print('torch' in sys.modules, 'urllib.request' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
