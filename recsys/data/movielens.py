"""MovieLens 1M and 100K: movies as items, star ratings as weights, genres as tags.

Items keep the GroupLens movie id (int). ``title`` is the title without its trailing "(year)";
``artist`` holds that year as a string ("" if the title has none), so lists show "Heat - 1995";
``tags`` are the genres in lower case ("children's", "sci-fi"). ``movies.dat`` / ``u.item`` are
latin-1. ``user_features`` has readable labels (``gender``, ``age_group``, ``occupation``) in
user-row order. Only movies with at least one rating become items.

ML-1M comes in two layouts, both read by :func:`load_ml_1m`:

* **official** (``ratings.dat``): every rating with its timestamp; ``timestamps`` are complete.
* **partial copy** (``ratings_implicit_pairs.tsv`` + ``ratings_prefix_*.dat``): all 1,000,209
  (user, movie) pairs, but stars and timestamps only for the users in the prefix file (1-2999).
  Pairs without a known rating get weight 1.0. ``Dataset.timestamps`` must cover every interaction,
  so by default they are dropped (``None``); ``timestamped_only=True`` instead keeps just the users
  whose every pair is in the prefix, with their stars and timestamps (for the sequential models).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset, build_dataset

log = logging.getLogger("recsys")

#: ML-1M README codes -> labels.
ML1M_AGE_GROUPS = {1: "under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin", 4: "college/grad student",
    5: "customer service", 6: "doctor/health care", 7: "executive/managerial", 8: "farmer",
    9: "homemaker", 10: "K-12 student", 11: "lawyer", 12: "programmer", 13: "retired",
    14: "sales/marketing", 15: "scientist", 16: "self-employed", 17: "technician/engineer",
    18: "tradesman/craftsman", 19: "unemployed", 20: "writer",
}  # fmt: skip
GENDERS = {"F": "female", "M": "male"}
#: ML-100K genre flag order (used when ``u.genre`` is absent).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def _split_year(title: str) -> tuple[str, str]:
    m = _YEAR.match(title)
    return (m.group(1), m.group(2)) if m else (title.strip(), "")


def _read_colon_file(path: Path, n_fields: int, dtypes: dict | None = None) -> pd.DataFrame:
    """Read a ``a::b::c`` file with the fast C parser (split on ':' and keep every other column).

    Only for files whose fields never contain ':' (ratings, users; not movies).
    """
    return pd.read_csv(
        path,
        sep=":",
        header=None,
        usecols=list(range(0, 2 * n_fields, 2)),
        dtype=None if dtypes is None else {2 * k: v for k, v in dtypes.items()},
        engine="c",
        keep_default_na=False,
    ).set_axis(range(n_fields), axis=1)


def _age_group(age: int) -> str:
    """ML-1M's age buckets for an exact age (ML-100K gives ages)."""
    for lo, label in sorted(ML1M_AGE_GROUPS.items(), reverse=True):
        if age >= lo:
            return label
    return ML1M_AGE_GROUPS[1]


def _items_table(ids: list[int], titles: list[str], genres: list[tuple[str, ...]]) -> pd.DataFrame:
    split = [_split_year(t) for t in titles]
    return pd.DataFrame(
        {
            "item_id": np.asarray(ids, dtype=np.int64),
            "title": [s[0] for s in split],
            "artist": [s[1] for s in split],
            "tags": genres,
        }
    )


def _ml1m_movies(path: Path) -> pd.DataFrame:
    ids, titles, genres = [], [], []
    with open(path / "movies.dat", encoding="latin-1") as f:
        for line in f:
            if not line.strip():
                continue
            mid, title, g = line.rstrip("\r\n").split("::", 2)
            ids.append(int(mid))
            titles.append(title)
            genres.append(tuple(x.lower() for x in g.split("|") if x))
    return _items_table(ids, titles, genres)


def _ml1m_users(path: Path, user_ids: np.ndarray) -> pd.DataFrame:
    u = _read_colon_file(path / "users.dat", 5, {0: np.int64, 1: str, 2: np.int64, 3: np.int64, 4: str})
    u = u.set_index(0).reindex(user_ids)
    return pd.DataFrame(
        {
            "gender": u[1].map(GENDERS).fillna("unknown").to_numpy(),
            "age_group": u[2].map(ML1M_AGE_GROUPS).fillna("unknown").to_numpy(),
            "occupation": u[3].map(ML1M_OCCUPATIONS).fillna("unknown").to_numpy(),
        }
    )


def _ml1m_ratings(path: Path, timestamped_only: bool) -> tuple[pd.DataFrame, bool]:
    """(ratings with columns user, item, weight[, time], whether timestamps cover every row)."""
    rating_cols = {0: np.int64, 1: np.int64, 2: np.float32, 3: np.int64}
    names = {0: "user", 1: "item", 2: "weight", 3: "time"}
    if (path / "ratings.dat").exists():
        return _read_colon_file(path / "ratings.dat", 4, rating_cols).rename(columns=names), True
    pairs_file = path / "ratings_implicit_pairs.tsv"
    if not pairs_file.exists():
        raise FileNotFoundError(f"{path}: neither ratings.dat nor ratings_implicit_pairs.tsv found")
    pairs = pd.read_csv(pairs_file, sep="\t", dtype=np.int64).set_axis(["user", "item"], axis=1)
    prefixes = sorted(path.glob("ratings_prefix_*.dat"))
    if not prefixes:
        if timestamped_only:
            raise FileNotFoundError(f"{path}: timestamped_only=True needs ratings.dat or ratings_prefix_*.dat")
        return pairs.assign(weight=np.float32(1.0)), False
    rated = pd.concat([_read_colon_file(p, 4, rating_cols) for p in prefixes]).rename(columns=names)
    shift = np.int64(1 << 32)
    key_rated = pd.Index(rated["user"].to_numpy() * shift + rated["item"].to_numpy())
    if not key_rated.is_unique:
        raise ValueError(f"{prefixes}: the same (user, movie) pair is rated twice")
    pos = key_rated.get_indexer(pairs["user"].to_numpy() * shift + pairs["item"].to_numpy())
    known = pos >= 0
    if known.sum() != len(rated):
        log.warning("ml-1m: %d prefix ratings have no pair in %s", len(rated) - known.sum(), pairs_file.name)
    weights = np.where(known, rated["weight"].to_numpy()[pos], np.float32(1.0)).astype(np.float32)
    pairs = pairs.assign(weight=weights, time=np.where(known, rated["time"].to_numpy()[pos], -1))
    if not timestamped_only:
        return pairs.drop(columns="time"), False
    complete = pd.Series(known).groupby(pairs["user"].to_numpy()).all()
    return pairs[pairs["user"].isin(complete.index[complete.to_numpy()])], True


def load_ml_1m(path: str | Path, *, timestamped_only: bool = False) -> Dataset:
    """Load MovieLens 1M from its directory (official or partial layout, see the module docstring).

    Parameters
    ----------
    path : str or Path
        Directory with ``movies.dat``, ``users.dat`` and ``ratings.dat`` (official) or
        ``ratings_implicit_pairs.tsv`` [+ ``ratings_prefix_*.dat``] (partial copy).
    timestamped_only : bool
        False (default): every rated pair; weight = stars where known, else 1.0; ``timestamps`` only
        if known for every pair (official layout), else None. True: only users whose ratings all
        carry timestamps (all users with ``ratings.dat``, users 1-2999 in the partial copy), with
        stars and complete ``timestamps``.

    Returns
    -------
    Dataset
        ``name="ml-1m"``, ``item_noun="movie"``; 6,040 users x 3,706 movies x 1,000,209 ratings in
        full. ``description`` says which variant was loaded.
    """
    path = Path(path)
    ratings, has_time = _ml1m_ratings(path, timestamped_only)
    movies = _ml1m_movies(path)
    movies = movies[movies["item_id"].isin(ratings["item"])].reset_index(drop=True)
    user_ids = np.unique(ratings["user"].to_numpy())
    variant = "full" if not timestamped_only else "users with timestamps"
    weights = "stars" if has_time else "stars where known, else 1"
    return build_dataset(
        "ml-1m",
        ratings["user"].to_numpy(),
        ratings["item"].to_numpy(),
        ratings["weight"].to_numpy(np.float32),
        movies,
        timestamps=ratings["time"].to_numpy(np.int64) if has_time else None,
        user_features=_ml1m_users(path, user_ids),
        item_noun="movie",
        description=f"MovieLens 1M ({variant}; weights: {weights}; GroupLens)",
    )


def load_ml_100k(path: str | Path) -> Dataset:
    """Load MovieLens 100K from its official directory (``u.data``, ``u.item``, ``u.user``).

    Weights are stars, timestamps complete, tags the genre flags of ``u.item`` (named by ``u.genre``
    when present; the "unknown" genre is not a tag). ``user_features``: ``gender``, ``age`` (years),
    ``age_group`` (ML-1M's buckets), ``occupation``.
    """
    path = Path(path)
    ratings = pd.read_csv(
        path / "u.data", sep="\t", header=None, names=["user", "item", "weight", "time"], dtype=np.int64
    )
    genres = list(ML100K_GENRES)
    if (path / "u.genre").exists():
        g = pd.read_csv(path / "u.genre", sep="|", header=None, encoding="latin-1", keep_default_na=False)
        g = g[g[0].astype(str).str.strip() != ""]
        genres = [str(name) for name, _ in sorted(zip(g[0], g[1].astype(int)), key=lambda r: r[1])]
    raw = pd.read_csv(
        path / "u.item", sep="|", header=None, encoding="latin-1", keep_default_na=False, quoting=3, dtype=str
    )
    flags = raw.iloc[:, 5 : 5 + len(genres)].to_numpy() == "1"
    tag_names = [g.lower() for g in genres]
    tags = [tuple(t for t, f in zip(tag_names, row) if f and t != "unknown") for row in flags]
    items = _items_table(raw[0].astype(int).tolist(), raw[1].tolist(), tags)
    items = items[items["item_id"].isin(ratings["item"])].reset_index(drop=True)
    user_ids = np.unique(ratings["user"].to_numpy())
    u = pd.read_csv(path / "u.user", sep="|", header=None, keep_default_na=False, dtype={0: np.int64, 1: np.int64})
    u = u.set_index(0).reindex(user_ids)
    feats = pd.DataFrame(
        {
            "gender": u[2].map(GENDERS).fillna("unknown").to_numpy(),
            "age": u[1].to_numpy(),
            "age_group": [_age_group(int(a)) if a == a else "unknown" for a in u[1]],
            "occupation": u[3].fillna("unknown").to_numpy(),
        }
    )
    return build_dataset(
        "ml-100k",
        ratings["user"].to_numpy(),
        ratings["item"].to_numpy(),
        ratings["weight"].to_numpy(np.float32),
        items,
        timestamps=ratings["time"].to_numpy(np.int64),
        user_features=feats,
        item_noun="movie",
        description="MovieLens 100K (weights: stars; GroupLens)",
    )
