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
from .csv_sources import (
    IMPORT_INDEX,
    NAME_RE,
    CsvSourceError,
    check_item_noun,
    csv_dataset_name,
    csv_spec,
    import_command,
    read_index,
    record_import,
    source_problem,
    source_record,
)
from .dataset import Dataset, build_dataset
from .lastfm import load_lastfm_2k, load_lastfm_tag_counts, normalise_tag
from .movielens import load_ml_1m, load_ml_100k
from .splits import binarize_and_filter, strong_generalization_split, temporal_leave_last_out
from .synthetic import generate_synthetic

__all__ = [
    "DATASETS",
    "CsvImportError",
    "CsvSourceError",
    "DataNotFoundError",
    "Dataset",
    "DatasetInfo",
    "binarize_and_filter",
    "build_dataset",
    "check_dataset_name",
    "check_item_noun",
    "data_home",
    "dataset_name",
    "dataset_path",
    "export_csv",
    "fetch_dataset",
    "generate_synthetic",
    "import_csv",
    "imported_datasets",
    "list_datasets",
    "load_csv_dataset",
    "load_csv_source",
    "load_dataset",
    "load_lastfm_2k",
    "load_lastfm_tag_counts",
    "load_ml_1m",
    "load_ml_100k",
    "normalise_tag",
    "record_csv_import",
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


def _canonical_name(name: str, data_dir: str | Path | None = None) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        import difflib

        imported = sorted(_import_index(data_dir))
        close = difflib.get_close_matches(key, list(DATASETS) + list(_ALIASES) + imported, n=1)
        hint = f" (did you mean {_ALIASES.get(close[0], close[0])!r}?)" if close else ""
        mine = f"; imported: {', '.join(imported)}" if imported else ""
        raise ValueError(
            f"unknown data set {name!r}{hint}; choose one of {', '.join(DATASETS)}{mine}, or your own files "
            "with csv:INTERACTIONS.csv,ITEMS.csv (`python -m recsys data import` gives them a name)"
        )
    return key


def _is_builtin(name: str) -> bool:
    key = str(name).strip().lower()
    return _ALIASES.get(key, key) in DATASETS


def check_dataset_name(name: str) -> str:
    """A name for an imported data set: letters, digits, ``_ . -`` (it becomes part of model ids), never a
    built-in name (``synthetic``, ``lastfm-2k``, ``ml-1m``, ``ml-100k`` or an alias of one)."""
    text = str(name).strip()
    if _is_builtin(text):
        raise CsvSourceError(
            f"data set name {text!r} is a built-in data set's name (it would get that data set's evaluation "
            "protocol); choose another, e.g. my-" + text
        )
    if not NAME_RE.match(text) or ".." in text:
        raise CsvSourceError(
            f"data set name {text!r}: use letters, digits, '_', '.', '-' (no '/', no spaces, no '..', at most 60 "
            "characters); it becomes part of model ids"
        )
    return text


def dataset_name(spec: str, data_dir: str | Path | None = None) -> str:
    """The name a data set argument loads as, without loading it (model ids are built from it).

    Built-in names and aliases give the canonical name, ``csv:INTERACTIONS,ITEMS`` gives
    ``csv-<stem>`` (``csv:FOLDER``: ``csv-<folder>``), anything else (an imported name) itself.
    """
    text = str(spec).strip()
    if text.startswith(CSV_PREFIX):
        body = text[len(CSV_PREFIX) :]
        if Path(body).expanduser().is_dir():
            return csv_dataset_name(Path(body).expanduser().resolve().name)
        return csv_dataset_name(body.rpartition(",")[0] or body)
    return _canonical_name(text) if _is_builtin(text) else text


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
    """``csv:INTERACTIONS,ITEMS`` or ``csv:FOLDER`` -> :func:`import_csv`, with its source record."""
    if Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
        kwargs.setdefault("name", csv_dataset_name(folder.resolve().name))
        return _import_with_source(folder / "interactions.csv", folder / "items.csv", **kwargs)
    interactions, sep, items = spec.rpartition(",")
    if not sep or not interactions or not items:
        raise ValueError(f"csv data set {spec!r}: write csv:INTERACTIONS.csv,ITEMS.csv or csv:FOLDER")
    return _import_with_source(Path(interactions).expanduser(), Path(items).expanduser(), **kwargs)


def load_csv_dataset(spec: str, **kwargs: Any) -> Dataset:
    """``load_dataset("csv:...")`` with :func:`import_csv`'s keywords (``name=``, ``item_noun=``) allowed."""
    return _load_csv(str(spec).removeprefix(CSV_PREFIX), **kwargs)


def _import_with_source(interactions: Path, items: Path, **kwargs: Any) -> Dataset:
    """:func:`import_csv`, then the files' source record (paths + fingerprint) kept on the Dataset."""
    import dataclasses

    ds = import_csv(interactions, items, **kwargs)
    return dataclasses.replace(
        ds, source=source_record(interactions, items, name=ds.name, item_noun=ds.item_noun), _cache={}
    )


def _index_root(data_dir: str | Path | None) -> Path:
    """Where the import index lives: the explicit/environment data directory, else the download cache
    (never the read-only shared folder)."""
    return _fetch_root(data_dir)


def _import_index(data_dir: str | Path | None) -> dict[str, dict]:
    return read_index(_index_root(data_dir))


def imported_datasets(data_dir: str | Path | None = None) -> dict[str, dict]:
    """``{name: source record}`` of the CSV data sets recorded by ``data import`` (see :mod:`.csv_sources`)."""
    return _import_index(data_dir)


def record_csv_import(dataset: Dataset, data_dir: str | Path | None = None) -> tuple[Path, dict | None]:
    """Record an imported CSV data set (its ``source``) under its name in the import index of the data
    directory, so ``load_dataset(name)`` finds it later. Returns (index path, the entry it replaced)."""
    if dataset.source is None:
        raise ValueError(f"data set {dataset.name!r} has no CSV source to record")
    check_dataset_name(dataset.name)
    return record_import(_index_root(data_dir), dataset.source)


def load_csv_source(record: dict, *, owner: str, fix: str, **kwargs: Any) -> Dataset:
    """The CSV data set a source record describes, after checking its files are where and what they were.

    ``owner`` names who recorded it ("model 'x'", "the import 'mine'") and ``fix`` what to do when
    the files moved or changed; both go into the :class:`CsvSourceError` message.
    """
    problem = source_problem(record)
    if problem is not None:
        raise CsvSourceError(f"data set {record['name']!r} of {owner}: {problem}; {fix}")
    return _import_with_source(
        Path(record["interactions"]["path"]),
        Path(record["items"]["path"]),
        name=record["name"],
        item_noun=record.get("item_noun", "song"),
        **kwargs,
    )


def load_dataset(name: str, data_dir: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Load a catalogued data set by name.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``"synthetic"``, ``"lastfm-2k"``, ``"ml-1m"``, ``"ml-100k"``; or
        ``"csv:INTERACTIONS,ITEMS"`` / ``"csv:FOLDER"`` (a folder with ``interactions.csv`` and
        ``items.csv``) for :func:`import_csv`; or the name of a ``data import`` recorded in the data
        directory's import index (its files are checked against their recorded fingerprint).
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
    CsvSourceError
        An imported data set's files moved or changed since the import (which file, what changed).
    """
    if str(name).startswith(CSV_PREFIX):
        return _load_csv(str(name)[len(CSV_PREFIX) :], **kwargs)
    if not _is_builtin(name):
        record = _import_index(data_dir).get(str(name).strip())
        if record is not None:
            return load_csv_source(
                record,
                owner=f"the import recorded in {_index_root(data_dir) / IMPORT_INDEX}",
                fix=f"import it again to accept the files as they are now (`{import_command(record)}`), or pass "
                f"--dataset {csv_spec(record)} with the files where they are now",
                **kwargs,
            )
    key = _canonical_name(name, data_dir)
    info = DATASETS[key]
    if key not in _LOCATIONS:
        return info.loader(None, **kwargs)
    folder = dataset_path(key, data_dir)
    if folder is None:
        raise _not_found(key, data_dir)
    return info.loader(folder, **kwargs)


def data_home(data_dir: str | Path | None = None) -> Path:
    """The writable data directory: ``data_dir`` if given, else ``$RECSYS_DATA_DIR``, else
    ``~/.cache/recsys/data``; never the read-only shared folder. Fetched archives, the CSV import
    index and uploaded files (:mod:`recsys.uploads`) go here."""
    return _fetch_root(data_dir)


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
    for name, record in sorted(_import_index(data_dir).items()):
        rows.append(
            {
                "name": name,
                "available": source_problem(record) is None,
                "path": Path(record["interactions"]["path"]).parent,
                "item_noun": record.get("item_noun", "song"),
                "description": f"imported from {Path(record['interactions']['path']).name} and "
                f"{Path(record['items']['path']).name}",
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
