"""CSV data sets as first-class data sets: a stable name, the files they came from, a fingerprint.

A CSV data set is named ``csv-<stem of the interactions file>`` (``csv-<folder>`` for
``csv:FOLDER``) or by the name given to ``python -m recsys data import --name``; a built-in name
(``synthetic``, ``lastfm-2k``, ``ml-1m``, ``ml-100k``) is never taken from a file name, so a file
called ``ml-1m.csv`` does not get MovieLens 1M's evaluation protocol.

A *source record* says where the data came from::

    {"kind": "csv", "name": "mine", "item_noun": "movie",
     "interactions": {"path": "/abs/interactions.csv", "bytes": 1234, "sha256": "..."},
     "items": {"path": "/abs/items.csv", "bytes": 567, "sha256": "..."}}

Training stores it in the model's manifest (``info.source_dataset.csv``), and ``data import``
keeps one per name in :data:`IMPORT_INDEX` in the data directory, so a model id or an imported
name is enough to find the data again. The fingerprint is each file's size and the sha256 of its
bytes: content, not modification time, decides (a copy or ``touch`` changes the time, not the
data; an edit that keeps the size and time is still caught); hashing costs one more read of files
the import reads anyway; the size says at once how a file changed. :func:`check_source` names the
file that moved or changed and what changed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import re
from pathlib import Path

from ..io import atomic_write_text

#: The import index, a JSON object ``{name: source record}`` in the data directory.
IMPORT_INDEX = "csv_imports.json"
#: Data set names: letters, digits, ``_ . -`` (they become part of model ids), at most 60 characters.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")
MAX_NOUN_CHARS = 40


class CsvSourceError(ValueError):
    """A CSV data set's files moved or changed, or a name or noun is not allowed (the message says what to do)."""


def csv_dataset_name(path: str | Path) -> str:
    """``csv-<stem>``: the default name of a CSV data set, built from a file or folder name, sanitised."""
    stem = Path(path).stem if Path(path).suffix.lower() in (".csv", ".tsv", ".txt") else Path(path).name
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-_.").replace("..", ".")
    return f"csv-{clean or 'data'}"[:60].rstrip("-_.")


def check_item_noun(noun: str) -> str:
    """What an item is called: a short word or two ("song", "movie", "podcast episode")."""
    text = " ".join(str(noun).split())
    if not text or len(text) > MAX_NOUN_CHARS or not all(c.isalnum() or c in " -'" for c in text):
        raise CsvSourceError(
            f"item noun {noun!r}: use a short word such as song, movie or artist "
            f"(letters, digits, spaces, '-', at most {MAX_NOUN_CHARS} characters)"
        )
    return text


def file_fingerprint(path: str | Path) -> dict:
    """``{"path": absolute path, "bytes": size, "sha256": hex}`` of one file."""
    p = Path(path).expanduser().resolve()
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"path": str(p), "bytes": p.stat().st_size, "sha256": h.hexdigest()}


def source_record(interactions: str | Path, items: str | Path, *, name: str, item_noun: str) -> dict:
    """The source record of a CSV pair (module docstring); the files must exist."""
    return {
        "kind": "csv",
        "name": name,
        "item_noun": item_noun,
        "interactions": file_fingerprint(interactions),
        "items": file_fingerprint(items),
    }


def source_problem(record: dict) -> str | None:
    """What moved or changed since ``record`` was taken (which file, what), or None if both files match."""
    for role in ("interactions", "items"):
        then = record[role]
        path = Path(then["path"])
        if not path.exists():
            return f"its {role} file {path} is gone (moved, renamed or deleted)"
        if not path.is_file():
            return f"its {role} file {path} is now a directory, not a file"
        size = path.stat().st_size
        if size != then["bytes"]:
            return f"its {role} file {path} changed: {then['bytes']:,} bytes then, {size:,} now"
        if file_fingerprint(path)["sha256"] != then["sha256"]:
            return f"its {role} file {path} changed: same size ({size:,} bytes), different content (sha256)"
    return None


def csv_spec(record: dict) -> str:
    """``csv:INTERACTIONS,ITEMS`` of a record (what to pass as ``--dataset``)."""
    return f"csv:{record['interactions']['path']},{record['items']['path']}"


# ---- the import index ----------------------------------------------------------------------
def read_index(root: str | Path) -> dict[str, dict]:
    """``{name: source record}`` of the imports recorded under the data directory ``root`` ({} if none)."""
    path = Path(root) / IMPORT_INDEX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise CsvSourceError(
            f"{path}: the import index cannot be read ({e}); delete it and run `python -m recsys data import` again"
        ) from None
    if not isinstance(data, dict):
        raise CsvSourceError(f"{path}: the import index is not a JSON object; delete it and import again")
    return data


@contextlib.contextmanager
def _locked(root: Path):
    """Serialise read-modify-write of the index between processes (flock where available)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / f".{IMPORT_INDEX}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def record_import(root: str | Path, record: dict) -> tuple[Path, dict | None]:
    """Store ``record`` under its name in the index (atomically); returns (index path, the record it replaced)."""
    root = Path(root).expanduser()
    with _locked(root):
        index = read_index(root)
        before = index.get(record["name"])
        index[record["name"]] = {
            **record,
            "imported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        path = root / IMPORT_INDEX
        atomic_write_text(path, json.dumps(index, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path, before


def import_command(record: dict) -> str:
    """The ``data import`` command line that records ``record`` again."""
    return (
        f"python -m recsys data import {record['interactions']['path']} {record['items']['path']} "
        f"--name {record['name']} --item-noun {_quote(record.get('item_noun', 'song'))}"
    )


def _quote(text: str) -> str:
    return f"'{text}'" if " " in text else text


__all__ = [
    "IMPORT_INDEX",
    "CsvSourceError",
    "check_item_noun",
    "csv_dataset_name",
    "csv_spec",
    "file_fingerprint",
    "import_command",
    "read_index",
    "record_import",
    "source_problem",
    "source_record",
]
