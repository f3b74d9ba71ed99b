"""HetRec 2011 Last.fm 2K: artists as items, listen counts as weights, user tags as item tags.

The release (``hetrec2011-lastfm-2k``) holds 1,892 users, 17,632 artists, 92,834 user-artist
listen counts, 11,946 tags and 186,479 tag assignments (user, artist, tag, day/month/year).
Encodings differ per file: ``artists.dat`` is UTF-8, ``tags.dat`` is latin-1.

Tags are user-written, so their spelling is normalised before counting (:func:`normalise_tag`:
lower case, ``-``/``_`` read as spaces, whitespace collapsed, a few glued spellings such as
``hiphop`` split), and then spellings that differ only by spaces or apostrophes ("synthpop" /
"synth pop", "80's" / "80s") are merged into their most used form. A tag counts once per user
and artist: the count of (artist, tag) is the number of distinct users who gave the artist that tag.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .dataset import Dataset, build_dataset

log = logging.getLogger("recsys")

#: Files the loader needs (``user_friends.dat`` and ``readme.txt`` are not used).
REQUIRED_FILES = ("artists.dat", "user_artists.dat", "tags.dat", "user_taggedartists.dat")

#: Glued words that the space rule cannot split (applied per word: "german hiphop" -> "german hip hop").
_WORD_ALIASES = {"hiphop": "hip hop", "triphop": "trip hop"}
#: Whole-tag synonyms (after the word rules).
_ALIASES = {"rnb": "r&b", "r'n'b": "r&b", "r and b": "r&b"}
_SEP = re.compile(r"[\s_\-]+")


def normalise_tag(tag: str) -> str:
    """Canonical spelling of one tag: "Hip-Hop", "hip_hop", " hip  hop", "hiphop" -> "hip hop"."""
    t = " ".join(_WORD_ALIASES.get(w, w) for w in _SEP.sub(" ", str(tag).lower()).split())
    return _ALIASES.get(t, t)


def _read_tsv(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    # QUOTE_NONE: names contain quotes; no NA parsing: a band may be called "NA" or "null"
    return pd.read_csv(path, sep="\t", encoding=encoding, quoting=3, keep_default_na=False, na_filter=False)


def _merge_glued(spellings: pd.Series) -> dict[str, str]:
    """Spelling -> most used spelling among those equal up to spaces/apostrophes (ties alphabetical).

    ``spellings`` maps each normalised spelling (index) to its number of assignments.
    """
    table = pd.DataFrame(
        {
            "tag": spellings.index.to_numpy(),
            "key": spellings.index.str.replace(r"[\s']", "", regex=True).to_numpy(),
            "n": spellings.to_numpy(),
        }
    ).sort_values(["key", "n", "tag"], ascending=[True, False, True])
    canonical = table.drop_duplicates("key").set_index("key")["tag"]
    return dict(zip(table["tag"], table["key"].map(canonical)))


def _tag_assignments(path: Path) -> pd.DataFrame:
    """One row per (user, artist, canonical tag) with the first and last day it was given (unix seconds)."""
    path = Path(path)
    tags = _read_tsv(path / "tags.dat", encoding="latin-1")
    uta = pd.read_csv(path / "user_taggedartists.dat", sep="\t")
    uta["tag"] = uta["tagID"].map(pd.Series([normalise_tag(t) for t in tags["tagValue"]], index=tags["tagID"]))
    uta = uta[uta["tag"].notna() & (uta["tag"] != "")]
    uta["tag"] = uta["tag"].map(_merge_glued(uta["tag"].value_counts()))
    days = pd.to_datetime(uta[["year", "month", "day"]]).to_numpy().astype("datetime64[s]").astype(np.int64)
    uta = uta.assign(time=days)
    groups = uta.groupby(["userID", "artistID", "tag"], as_index=False, sort=False)
    return groups.agg(first=("time", "min"), last=("time", "max"))


def _listened_artists(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user_artists rows, artists.dat rows of listened artists in file order)."""
    ua = pd.read_csv(path / "user_artists.dat", sep="\t", dtype={"userID": np.int64, "artistID": np.int64})
    artists = _read_tsv(path / "artists.dat", encoding="utf-8")
    artists["id"] = artists["id"].astype(np.int64)
    unknown = ~ua["artistID"].isin(artists["id"])
    if unknown.any():
        raise ValueError(
            f"{path / 'user_artists.dat'}: {int(unknown.sum())} rows name artists missing from artists.dat "
            f"(e.g. {ua.loc[unknown, 'artistID'].iloc[0]}); the files are not one release"
        )
    return ua, artists[artists["id"].isin(ua["artistID"])].reset_index(drop=True)


def load_lastfm_tag_counts(path: str | Path) -> tuple[sp.csr_matrix, list[str]]:
    """Raw artist x tag assignment counts (the input for TF-IDF tag features).

    Returns
    -------
    counts : scipy.sparse.csr_matrix of float32, shape (n_artists, n_tags)
        Row ``i`` is item ``i`` of :func:`load_lastfm_2k` (listened artists, ``artists.dat`` order);
        entry (i, t) = number of distinct users who gave artist i tag t (canonical spelling).
    tags : list of str
        Column names, most assigned first (ties alphabetical).
    """
    path = Path(path)
    _, artists = _listened_artists(path)
    ta = _tag_assignments(path)
    rows = pd.Index(artists["id"]).get_indexer(ta["artistID"])
    ta = ta[rows >= 0].assign(row=rows[rows >= 0])
    totals = ta["tag"].value_counts()
    vocab = sorted(totals.index, key=lambda t: (-totals[t], t))
    cols = pd.Index(vocab).get_indexer(ta["tag"])
    x = sp.csr_matrix(
        (np.ones(len(ta), dtype=np.float32), (ta["row"].to_numpy(), cols)),
        shape=(len(artists), len(vocab)),
        dtype=np.float32,
    )
    x.sum_duplicates()
    return x, vocab


def load_lastfm_2k(path: str | Path, *, top_tags: int = 10) -> Dataset:
    """Load the HetRec 2011 Last.fm 2K release from its directory.

    Parameters
    ----------
    path : str or Path
        Directory holding ``artists.dat``, ``user_artists.dat``, ``tags.dat``, ``user_taggedartists.dat``.
    top_tags : int
        Tags kept per artist: the ``top_tags`` given by most users (ties: tags used more overall first,
        then alphabetical). The full counts are in :func:`load_lastfm_tag_counts`.

    Returns
    -------
    Dataset
        ``name="lastfm-2k"``, 1,892 users x 17,632 artists, 92,834 listen counts as weights, no
        timestamps (listens are not dated). Items: ``item_id`` (int artist id), ``title`` and
        ``artist`` (both the artist name), ``tags`` (empty tuple if never tagged), plus
        ``first_tagged`` / ``last_tagged``: earliest / latest day any user tagged the artist, as
        float64 unix seconds (UTC midnight), NaN if never tagged (freshness for the funnel model),
        and ``tag_counts``: every tag of the artist -> distinct users who gave it, most given first
        (a dict per artist, empty if never tagged; the funnel's tag corpus, as in
        :func:`load_lastfm_tag_counts`).
        A few assignments carry implausible years (1956, 1957, 1979); they are kept as given.
    """
    path = Path(path)
    ua, artists = _listened_artists(path)
    ta = _tag_assignments(path)
    ta = ta[ta["artistID"].isin(artists["id"])]
    per_tag = ta.groupby(["artistID", "tag"], as_index=False).agg(n=("userID", "size"))
    per_tag["total"] = per_tag["tag"].map(per_tag.groupby("tag")["n"].sum())
    per_tag = per_tag.sort_values(["artistID", "n", "total", "tag"], ascending=[True, False, False, True])
    top = per_tag[per_tag.groupby("artistID").cumcount() < top_tags]
    tag_lists = top.groupby("artistID", sort=False)["tag"].agg(tuple)
    times = ta.groupby("artistID").agg(min=("first", "min"), max=("last", "max"))
    # every tag of an artist with its count, most given first (per_tag is sorted that way)
    starts = np.flatnonzero(np.r_[True, per_tag["artistID"].to_numpy()[1:] != per_tag["artistID"].to_numpy()[:-1]])
    bounds = np.r_[starts, len(per_tag)]
    tag_arr, n_arr, art_arr = per_tag["tag"].to_numpy(), per_tag["n"].to_numpy(), per_tag["artistID"].to_numpy()
    all_counts = {
        art_arr[lo]: dict(zip(tag_arr[lo:hi], n_arr[lo:hi].tolist(), strict=True))
        for lo, hi in itertools.pairwise(bounds)
    }

    ids = artists["id"]
    items = pd.DataFrame(
        {
            "item_id": ids.to_numpy(),
            "title": artists["name"].to_numpy(),
            "artist": artists["name"].to_numpy(),
            "tags": [tag_lists.get(a, ()) for a in ids],
            "first_tagged": ids.map(times["min"]).astype(np.float64).to_numpy(),
            "last_tagged": ids.map(times["max"]).astype(np.float64).to_numpy(),
            "tag_counts": [all_counts.get(a, {}) for a in ids],
        }
    )
    log.info("lastfm-2k: %d users, %d artists, %d listen rows", ua["userID"].nunique(), len(items), len(ua))
    return build_dataset(
        "lastfm-2k",
        ua["userID"].to_numpy(),
        ua["artistID"].to_numpy(),
        ua["weight"].to_numpy(np.float32),
        items,
        item_noun="artist",
        description="HetRec 2011 Last.fm 2K: artists with listen counts and user tags (GroupLens)",
    )
