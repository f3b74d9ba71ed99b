"""Data sets: the synthetic default, Last.fm 2K, MovieLens 1M / 100K, and your own CSV files.

Everything ends in one :class:`Dataset`. Real data lives outside the repository, in a data
directory found by :func:`resolve_data_dir` (flag > ``$RECSYS_DATA_DIR`` > ``<repo>/../shared/data``
> ``~/.cache/recsys/data``); each data set sits in its own folder there (``hetrec2011-lastfm-2k``,
``ml-1m``, ``ml-100k``), as :func:`fetch_dataset` (``python -m recsys data fetch NAME``) puts it.

    >>> from recsys.data import load_dataset, list_datasets
    >>> ds = load_dataset("lastfm-2k")            # doctest: +SKIP
    >>> small = load_dataset("synthetic", n_users=300, n_items=600, n_artists=80, n_tags=8)

Importing this package needs numpy, pandas and scipy only (no torch); the download code
(:mod:`recsys.data.fetch`) is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from . import splits
from .csv_import import CsvImportError, export_csv, import_csv
from .dataset import Dataset, build_dataset
from .lastfm import load_lastfm_2k, load_lastfm_tag_counts, normalise_tag
from .movielens import load_ml_1m, load_ml_100k
from .splits import binarize_and_filter, strong_generalization_split, temporal_leave_last_out
from .synthetic import generate_synthetic

__all__ = [
    "DATASETS",
    "CsvImportError",
    "DataNotFoundError",
    "Dataset",
    "DatasetInfo",
    "binarize_and_filter",
    "build_dataset",
    "dataset_path",
    "export_csv",
    "fetch_dataset",
    "generate_synthetic",
    "import_csv",
    "list_datasets",
    "load_dataset",
    "load_lastfm_2k",
    "load_lastfm_tag_counts",
    "load_ml_1m",
    "load_ml_100k",
    "normalise_tag",
    "resolve_data_dir",
    "splits",
    "strong_generalization_split",
    "temporal_leave_last_out",
]

ENV_VAR = "RECSYS_DATA_DIR"
#: ``<repo>/../shared/data``: the read-only copy next to a development checkout.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: Where ``python -m recsys data fetch`` puts data when no directory is given.
CACHE_DATA_DIR = Path.home() / ".cache" / "recsys" / "data"


class DataNotFoundError(FileNotFoundError):
    """A real data set's files are not in the data directory (the message says where and how to get them)."""


class DatasetInfo(NamedTuple):
    """Catalogue entry: ``loader(path_or_None, **kw) -> Dataset``, one-line description, item noun."""

    loader: Callable[..., Dataset]
    description: str
    item_noun: str


class _Location(NamedTuple):
    folder: str  # folder name inside the data directory
    required: tuple[tuple[str, ...], ...]  # each entry: any one of these files


DATASETS: dict[str, DatasetInfo] = {
    "synthetic": DatasetInfo(
        lambda path=None, **kw: generate_synthetic(**kw),
        "synthetic music catalogue (3,000 listeners, 5,000 songs, 24 genres); built in, no download",
        "song",
    ),
    "lastfm-2k": DatasetInfo(
        lambda path, **kw: load_lastfm_2k(path, **kw),
        "HetRec 2011 Last.fm 2K: 1,892 users, 17,632 artists, listen counts, user tags",
        "artist",
    ),
    "ml-1m": DatasetInfo(
        lambda path, **kw: load_ml_1m(path, **kw),
        "MovieLens 1M: 6,040 users, 3,706 movies, 1,000,209 ratings, genres, demographics",
        "movie",
    ),
    "ml-100k": DatasetInfo(
        lambda path, **kw: load_ml_100k(path, **kw),
        "MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings, genres, demographics",
        "movie",
    ),
}

_LOCATIONS: dict[str, _Location] = {
    "lastfm-2k": _Location(
        "hetrec2011-lastfm-2k", (("artists.dat",), ("user_artists.dat",), ("tags.dat",), ("user_taggedartists.dat",))
    ),
    "ml-1m": _Location("ml-1m", (("movies.dat",), ("users.dat",), ("ratings.dat", "ratings_implicit_pairs.tsv"))),
    "ml-100k": _Location("ml-100k", (("u.data",), ("u.item",), ("u.user",))),
}

_ALIASES = {
    "lastfm": "lastfm-2k",
    "hetrec2011-lastfm-2k": "lastfm-2k",
    "ml1m": "ml-1m",
    "movielens-1m": "ml-1m",
    "ml100k": "ml-100k",
    "movielens-100k": "ml-100k",
}


def _candidate_roots(flag: str | Path | None) -> list[tuple[Path, str]]:
    """Data directories to search, with where each came from: an explicit choice alone, else the fallbacks."""
    if flag is not None and str(flag).strip():
        return [(Path(flag).expanduser(), "the given path")]
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return [(Path(env).expanduser(), f"${ENV_VAR}")]
    fallbacks = [(SHARED_DATA_DIR, "the shared folder next to the repository"), (CACHE_DATA_DIR, "the download cache")]
    return [(p, source) for p, source in fallbacks if p.is_dir()]


def resolve_data_dir(flag: str | Path | None = None) -> Path | None:
    """The data directory: ``flag`` > ``$RECSYS_DATA_DIR`` > ``<repo>/../shared/data`` > ``~/.cache/recsys/data``.

    An explicit flag or environment variable is returned as given (even if it does not exist, so the
    error can name it); the two fallbacks only if they exist. None when nothing is found. Without an
    explicit choice, :func:`load_dataset` looks in both fallbacks (fetched data lands in the cache).
    """
    roots = _candidate_roots(flag)
    return roots[0][0] if roots else None


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        import difflib

        close = difflib.get_close_matches(key, list(DATASETS) + list(_ALIASES), n=1)
        hint = f" (did you mean {_ALIASES.get(close[0], close[0])!r}?)" if close else ""
        raise ValueError(f"unknown data set {name!r}{hint}; choose one of {', '.join(DATASETS)}")
    return key


def _complete(folder: Path, loc: _Location) -> bool:
    return all(any((folder / f).is_file() for f in options) for options in loc.required)


def dataset_path(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder holding a real data set's files, or None if absent (``data_dir`` may be the folder itself)."""
    loc = _LOCATIONS.get(_canonical_name(name))
    if loc is None:
        return None
    for root, _ in _candidate_roots(data_dir):
        for folder in (root / loc.folder, root):
            if _complete(folder, loc):
                return folder
    return None


def _not_found(key: str, data_dir: str | Path | None) -> DataNotFoundError:
    loc = _LOCATIONS[key]
    files = ", ".join(" or ".join(options) for options in loc.required)
    roots = _candidate_roots(data_dir)
    fetch = f"`python -m recsys data fetch {key}`"
    if not roots:
        return DataNotFoundError(
            f"{key}: no data directory found (none given, ${ENV_VAR} unset, neither {SHARED_DATA_DIR} nor "
            f"{CACHE_DATA_DIR} exists). Download it with {fetch} (into {CACHE_DATA_DIR}), or set "
            f"${ENV_VAR} to a folder that contains {loc.folder}/"
        )
    where = " or ".join(str(root / loc.folder) for root, _ in roots)
    sources = "; ".join(f"{root} from {source}" for root, source in roots)
    into = _fetch_root(data_dir)
    return DataNotFoundError(
        f"{key}: expected {files} in {where} (data directory {sources}). Download it with {fetch} "
        f"(it goes into {into}), or set ${ENV_VAR} to a folder that contains {loc.folder}/"
    )


CSV_PREFIX = "csv:"


def _load_csv(spec: str, **kwargs: Any) -> Dataset:
    """``csv:INTERACTIONS,ITEMS`` or ``csv:FOLDER`` -> :func:`import_csv`."""
    if Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
        return import_csv(folder / "interactions.csv", folder / "items.csv", **kwargs)
    interactions, sep, items = spec.rpartition(",")
    if not sep or not interactions or not items:
        raise ValueError(f"csv data set {spec!r}: write csv:INTERACTIONS.csv,ITEMS.csv or csv:FOLDER")
    return import_csv(Path(interactions).expanduser(), Path(items).expanduser(), **kwargs)


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Load a catalogued data set by name.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"synthetic"``, ``"lastfm-2k"``, ``"ml-1m"``, ``"ml-100k"``; or
        ``"csv:INTERACTIONS,ITEMS"`` / ``"csv:FOLDER"`` (a folder with ``interactions.csv`` and
        ``items.csv``) for :func:`import_csv`.
    data_dir : str or Path, optional
        The data directory (or the data set's own folder); default :func:`resolve_data_dir`.
    **kwargs
        Passed to the loader: ``generate_synthetic(n_users=...)``, ``load_lastfm_2k(top_tags=...)``,
        ``load_ml_1m(timestamped_only=...)``.

    Raises
    ------
    ValueError
        Unknown name.
    DataNotFoundError
        The files are not there; the message names the expected path and the fetch command.
    CsvImportError
        A ``csv:`` data set with a problem (file, line, problem).
    """
    if str(name).startswith(CSV_PREFIX):
        return _load_csv(str(name)[len(CSV_PREFIX) :], **kwargs)
    key = _canonical_name(name)
    info = DATASETS[key]
    if key not in _LOCATIONS:
        return info.loader(None, **kwargs)
    folder = dataset_path(key, data_dir)
    if folder is None:
        raise _not_found(key, data_dir)
    return info.loader(folder, **kwargs)


def _fetch_root(data_dir: str | Path | None) -> Path:
    """Where a fetch without an explicit destination goes: the explicit/env directory, else the cache."""
    if data_dir is not None and str(data_dir).strip():
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else CACHE_DATA_DIR


def list_datasets(data_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per catalogued data set: ``name``, ``available`` (bool), ``path`` (its folder if found,
    else where ``fetch_dataset`` would put it; None for the built-in synthetic data), ``item_noun``,
    ``description``."""
    rows = []
    for key, info in DATASETS.items():
        loc = _LOCATIONS.get(key)
        found = dataset_path(key, data_dir) if loc is not None else None
        path = found or (_fetch_root(data_dir) / loc.folder if loc is not None else None)
        rows.append(
            {
                "name": key,
                "available": loc is None or found is not None,
                "path": path,
                "item_noun": info.item_noun,
                "description": info.description,
            }
        )
    return rows


def fetch_dataset(name: str, dest_dir: str | Path | None = None, **kwargs: Any) -> Path:
    """Download an official archive into ``dest_dir`` (see :func:`recsys.data.fetch.fetch_dataset`).

    ``dest_dir`` defaults to ``$RECSYS_DATA_DIR`` if set, else ``~/.cache/recsys/data`` (never the
    read-only shared folder); :func:`load_dataset` finds it there afterwards.
    """
    from .fetch import fetch_dataset as _fetch

    key = _canonical_name(name)
    return _fetch(key, _fetch_root(dest_dir), **kwargs)
