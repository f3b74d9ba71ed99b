"""CSV files a person uploads in the app: kept under the data directory, imported like ``data import``.

The "Your data" page hands the uploaded bytes here. They are written, once per content, to
``<data dir>/uploads/<name>/<digest>/{interactions,items}/<the file's own name>`` (a new folder
renamed into place, so a crash leaves no half-written upload), then read by the same
:func:`recsys.data.load_csv_dataset` as ``python -m recsys data import`` (same checks, same
messages, which name the person's own file) and recorded in the data directory's import index, so
every command and page finds the data set by its name afterwards. Files never go into the
repository: the data directory is ``$RECSYS_DATA_DIR``, else ``~/.cache/recsys/data``
(:func:`recsys.data.data_home`).

A new upload under an existing name gets a new content folder; the old one stays, so models
trained on it still find (and verify) the files they were trained on.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .threads import positive_int_from_env

#: Largest file the page takes, in MB (each of the two files); ``$RECSYS_MAX_UPLOAD_MB`` overrides.
MAX_UPLOAD_ENV = "RECSYS_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 50
#: File name endings the page accepts (what the import reads: delimited text).
UPLOAD_TYPES = ("csv", "tsv", "txt")


class UploadError(ValueError):
    """An upload the page refuses before importing it (too large, empty, a bad name); says what to do."""


@dataclass(frozen=True)
class UploadedCsv:
    """One uploaded file: the name it had on the person's machine and its bytes."""

    name: str
    data: bytes


def max_upload_mb() -> int:
    """The per-file size limit in MB (``$RECSYS_MAX_UPLOAD_MB``, default :data:`DEFAULT_MAX_UPLOAD_MB`)."""
    return positive_int_from_env(MAX_UPLOAD_ENV) or DEFAULT_MAX_UPLOAD_MB


def uploads_root(data_dir: str | Path | None = None) -> Path:
    """``<data dir>/uploads``: where uploaded files are kept."""
    from .data import data_home

    return data_home(data_dir) / "uploads"


def safe_file_name(name: str, role: str) -> str:
    """The uploaded file's own name, reduced to a plain file name (messages quote it back to the person)."""
    base = Path(str(name).replace("\\", "/")).name
    clean = re.sub(r"[^A-Za-z0-9_.() -]+", "_", base).strip(" .")
    if not clean:
        clean = f"{role}.csv"
    return clean[:120]


def check_upload(upload: UploadedCsv, role: str, limit_mb: int | None = None) -> None:
    """Refuse an empty file or one over the size limit, naming the file and what to do instead."""
    limit_mb = max_upload_mb() if limit_mb is None else limit_mb
    size = len(upload.data)
    if size == 0:
        raise UploadError(f"{upload.name} (the {role} file) is empty: choose the file again")
    if size > limit_mb * 1024 * 1024:
        raise UploadError(
            f"{upload.name} (the {role} file) is {size / 1024 / 1024:,.1f} MB; the page takes files up to "
            f"{limit_mb} MB. Import larger files on the server with `python -m recsys data import INTERACTIONS.csv "
            f"ITEMS.csv --name NAME` (they then appear here), or start the app with ${MAX_UPLOAD_ENV} set higher"
        )


def _content_digest(interactions: UploadedCsv, items: UploadedCsv) -> str:
    h = hashlib.sha256()
    for part in (interactions, items):
        h.update(hashlib.sha256(part.data).digest())
        h.update(safe_file_name(part.name, "file").encode())
    return h.hexdigest()[:16]


def store_upload(
    interactions: UploadedCsv, items: UploadedCsv, *, name: str, data_dir: str | Path | None = None
) -> tuple[Path, Path]:
    """Write the two files under ``uploads/<name>/<digest>/`` (once per content, atomically); their paths."""
    folder = uploads_root(data_dir) / name / _content_digest(interactions, items)
    paths = (
        folder / "interactions" / safe_file_name(interactions.name, "interactions"),
        folder / "items" / safe_file_name(items.name, "items"),
    )
    if all(p.is_file() for p in paths):
        return paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=folder.parent))
    try:
        for part, path in zip((interactions, items), paths, strict=True):
            target = staging / path.relative_to(folder)
            target.parent.mkdir(parents=True)
            with open(target, "wb") as f:
                f.write(part.data)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.rename(staging, folder)
        except OSError:  # another session stored the same content first: theirs is identical
            if not all(p.is_file() for p in paths):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def import_upload(
    interactions: UploadedCsv,
    items: UploadedCsv,
    *,
    name: str,
    item_noun: str = "song",
    data_dir: str | Path | None = None,
    limit_mb: int | None = None,
):
    """Check, store, import and record an uploaded CSV pair; returns the :class:`~recsys.data.Dataset`.

    Raises :class:`UploadError`, :class:`~recsys.data.CsvSourceError` (name, noun) or
    :class:`~recsys.data.CsvImportError` (file, line, problem) with the message to show.
    """
    from .data import check_dataset_name, check_item_noun, load_csv_dataset, record_csv_import

    name = check_dataset_name(name)
    noun = check_item_noun(item_noun)
    check_upload(interactions, "interactions", limit_mb)
    check_upload(items, "items", limit_mb)
    ipath, tpath = store_upload(interactions, items, name=name, data_dir=data_dir)
    ds = load_csv_dataset(f"{ipath},{tpath}", name=name, item_noun=noun)
    record_csv_import(ds, data_dir)
    return ds


__all__ = [
    "DEFAULT_MAX_UPLOAD_MB",
    "MAX_UPLOAD_ENV",
    "UPLOAD_TYPES",
    "UploadError",
    "UploadedCsv",
    "check_upload",
    "import_upload",
    "max_upload_mb",
    "safe_file_name",
    "store_upload",
    "uploads_root",
]
