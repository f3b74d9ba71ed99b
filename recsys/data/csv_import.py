"""Import your own listening data from two CSV files.

Format
------
Both files are UTF-8 (a byte-order mark is fine), comma-separated, quoted the usual CSV way
(``"Crosby, Stills & Nash"``), with a header line naming the columns (any order, case-insensitive).

``interactions.csv``: one row per (user, item) interaction.

=============  ========  =============================================================
column         required  meaning
=============  ========  =============================================================
``user``       yes       user id (any text; ids that are all integers become ints)
``item``       yes       item id; must be defined in ``items.csv``
``weight``     no        play count / rating: a number >= 0 (default 1; syntax below)
``timestamp``  no        unix seconds, an integer (if the column exists, every row needs one)
=============  ========  =============================================================

``items.csv``: one row per item.

=============  ========  =============================================================
column         required  meaning
=============  ========  =============================================================
``item``       yes       item id, unique in the file
``title``      yes       what the app shows (non-empty)
``artist``     no        artist / creator (default "")
``tags``       no        tags separated by ``|`` (``rock|indie rock``), most relevant first
=============  ========  =============================================================

Numbers have one syntax: a weight is ASCII decimal or scientific notation,
``[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?`` (``3``, ``0.5``, ``.5``, ``2.``, ``1e-3``,
``+4E2``), a timestamp ASCII digits with an optional sign (``[+-]?[0-9]+``); spaces or tabs around
either are allowed. Anything else is refused with its line, also what Python's ``float()`` reads as
a number: digit separators (``1_000``), non-ASCII digits (``٣``, full-width ``５``), ``nan`` /
``inf``; and hexadecimal, decimal commas (``1,5``) and an empty field (write the value, or leave the
whole column out for the default). Weights are stored as float32: a weight above 3.4e38, or one that
is not 0 as written but below float32's smallest normal number (1.18e-38, e.g. ``1e-50``, which
would be stored as 0 or with lost precision) is refused rather than changed; ``0``, ``0.0``, ``-0``,
``0e5`` are 0.

Ids: surrounding spaces are removed; an id may not contain a control character (Unicode category Cc:
U+0000-U+001F, U+007F-U+009F), not even around it: a NUL is what numpy's fixed-width strings drop at
the end of an id (``a`` and ``a\\0`` would become two items ``a``), and a tab or line break inside
an id, which is one token typed on command lines and shown on one line, is almost always a quote that
swallowed a line or pasted text (``u1`` and ``u1<TAB>`` would otherwise be merged or differ
invisibly). Titles, artists and tags may contain them (a title may span lines).

Rules: blank lines are skipped; other columns are refused (so a ``rating`` column is not
silently ignored); duplicate (user, item) rows are merged, their weights summed and the latest
timestamp kept; rows with weight 0 add nothing and are dropped (a user with only such rows is
left out); items nobody interacted with stay in the catalogue. Users are ordered by id, items
keep the order of ``items.csv``.

Errors: the first problem found, in file order, raises one :class:`CsvImportError` naming the
file, the line (1-based; the header is line 1; for a record whose quoted field spans lines, the
line it starts on) and the problem, e.g. ``interactions.csv, line 17: weight 'abc' is not a number``.
Also refused, with their line: a field longer than the csv module's limit (131,072 characters: most
often a quote never closed), a quote still open at the end of the file, ids longer than
:data:`MAX_ID_CHARS` characters, non-UTF-8 bytes (UTF-16 with or without byte-order mark is named as
such), and duplicate rows whose summed weight leaves float32. Messages quote at most
:data:`SHOW_CHARS` (200) characters of a value and :data:`SHOW_NAMES` (10) column names, then say how
many more there are (a header of 100,000 columns gives a message of about 200 characters). Ids
that look like integers become ints only when no two spellings can mean one number (``-0``, ``007``
keep every id text).
:func:`import_csv` is pure (it returns a Dataset or raises), so a failed import leaves nothing
behind: no file written, no file handle left open (even while the error is kept).

Memory and time: rows are streamed with the ``csv`` module and kept as 20 bytes each (codes, weight,
timestamp); assembling the matrix peaks at 164-176 bytes per interaction row. The bound
:func:`memory_needed` documents and enforces is :data:`ROW_BYTES` (200) per row plus
:data:`USER_BYTES` (250) + 6 x (longest user id) per distinct user (measured: 10M rows of 200k
users, 272 MB of CSV: peak 1.64 GB above the interpreter, 164 bytes per row, 37 s of CPU; 2M rows of
864k users: 246 bytes per row; see ``benchmarks/results/reliability.md``). Before reading, the row
count is estimated from the file size and the first MiB; a file whose estimate needs more than
``max_memory`` (default: 80 % of the memory available when the import starts) is refused up front,
and the import stops with the line reached as soon as the rows read so far need more: a big file is
refused with a message, never an out-of-memory crash. Files larger than :data:`MAX_IMPORT_BYTES`
(512 MiB) or with more than :data:`MAX_IMPORT_ROWS` (20 million) interaction rows are refused as
before; raise the limits with ``max_bytes`` / ``max_rows`` / ``max_memory`` on a machine with the
memory for it.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .csv_sources import csv_dataset_name
from .dataset import Dataset, build_dataset

#: Largest file :func:`import_csv` reads (bytes); pass ``max_bytes`` to change it.
MAX_IMPORT_BYTES = 512 * 1024**2
#: Most interaction rows :func:`import_csv` accepts; pass ``max_rows`` to change it.
MAX_IMPORT_ROWS = 20_000_000
#: Longest user or item id (characters): ids are stored as fixed-width strings, so one long id costs
#: its length in every id's slot.
MAX_ID_CHARS = 512
#: Peak memory per interaction row while importing (bytes; measured 164-176, see the module docstring).
ROW_BYTES = 200
#: Memory per distinct user on top of the rows (dict entry, Python string, sorting), plus
#: :data:`ID_CHAR_BYTES` per character of the longest user id.
USER_BYTES = 250
ID_CHAR_BYTES = 6
#: Share of the memory available when an import starts that it may use by default.
DEFAULT_MEMORY_SHARE = 0.8
INTERACTION_COLUMNS = ("user", "item", "weight", "timestamp")
ITEM_COLUMNS = ("item", "title", "artist", "tags")
TAG_SEPARATOR = "|"
_CHUNK = 65_536
_INT_ID = re.compile(r"0|-?[1-9][0-9]{0,17}")  # no "-0": it would be a second spelling of 0
#: The one number syntax of weights (ASCII decimal or scientific notation, surrounding spaces or tabs
#: allowed) and of timestamps (ASCII integers). Python's float()/int() accept more (``1_000``, ``٣``,
#: ``５``, ``nan``), which is refused with the line.
NUMBER_RE = re.compile(r"[ \t]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")
INTEGER_RE = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
_NOT_FINITE = re.compile(r"[ \t]*[+-]?(?:nan|inf|infinity)[ \t]*", re.IGNORECASE)
_NUMBER_CHARS = re.compile(r"[^0-9+\-.eE ]")  # a chunk without these needs no per-value syntax check
_INTEGER_CHARS = re.compile(r"[^0-9+\- ]")
#: Control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F), refused in ids.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Smallest normal float32: a weight that is not 0 as written must store at least this.
_TINY = float(np.finfo(np.float32).tiny)
#: Error messages quote at most this many characters of one value and this many names of a list.
SHOW_CHARS = 200
SHOW_NAMES = 10
_MAX_PROBLEM = 2_000


class CsvImportError(ValueError):
    """A problem in an imported CSV file.

    Attributes
    ----------
    file : str
        The file's path as given.
    line : int or None
        1-based line number (header = 1); None when the problem concerns the whole file.
    problem : str
        What is wrong and, where it helps, what to do.
    """

    def __init__(self, file: str | Path, line: int | None, problem: str) -> None:
        if len(problem) > _MAX_PROBLEM:  # a backstop: messages quote file content through _show / _names
            cut = len(problem) - _MAX_PROBLEM + 300
            problem = f"{problem[: _MAX_PROBLEM - 300]} … ({cut:,} characters left out) … {problem[-300:]}"
        self.file = str(file)
        self.line = line
        self.problem = problem
        where = Path(file).name if line is None else f"{Path(file).name}, line {line}"
        super().__init__(f"{where}: {problem}")


def _show(value: str, limit: int = SHOW_CHARS) -> str:
    """``repr(value)``, of at most ``limit`` characters of it, then how many more there are."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value) - limit:,} more characters)"


def _names(names: list[str], limit: int = SHOW_NAMES) -> str:
    """At most ``limit`` names (each cut to 40 characters), comma-separated, then how many more there are."""
    shown = ", ".join(n if len(n) <= 40 else f"{n[:40]}…" for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, … and {len(names) - limit:,} more"


_CONTROL_NAMES = {"\x00": "NUL", "\t": "a tab", "\n": "a line break (LF)", "\r": "a line break (CR)"}


def _id_problem(kind: str, raw: str) -> str | None:
    """Why the field ``raw`` cannot be a ``kind`` id (a control character in it), or None."""
    m = _CONTROL.search(raw)
    if m is None:
        return None
    c = m.group()
    what = _CONTROL_NAMES.get(c, f"control character U+{ord(c):04X}")
    advice = (
        " (a NUL usually means the file is UTF-16 or not text: re-save it as UTF-8)"
        if c == "\x00"
        else " (often a quote that swallowed a line, or pasted text)"
    )
    return (
        f"the {kind} id {_show(raw)} contains {what} at character {m.start() + 1}: ids may not contain "
        f"control characters (NUL, tabs, line breaks, U+0000-U+001F, U+007F-U+009F){advice}; remove it"
    )


# ---- reading ---------------------------------------------------------------------------------
def _check_size(path: Path, max_bytes: int, role: str = "interactions") -> None:
    if path.is_dir():
        inside = path / f"{role}.csv"
        hint = f" (it holds {inside.name}: pass {inside})" if inside.is_file() else ""
        raise CsvImportError(path, None, f"{path} is a directory, not a file: pass the {role} CSV file itself{hint}")
    if not path.is_file():
        raise CsvImportError(path, None, f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CsvImportError(path, 1, "the file is empty; the first line must be a header naming the columns")
    if size > max_bytes:
        raise CsvImportError(
            path,
            None,
            f"the file has {size:,} bytes, more than the import limit of {max_bytes:,} "
            f"(about 160 bytes of memory per row are needed); pass max_bytes= to raise it",
        )


def _first_undecodable(path: Path) -> tuple[int, str]:
    """(line, description) of the first line that is not valid UTF-8."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return 1, "the file is UTF-16 text"
        f.seek(0)
        sample = f.read(4096)
        if sample.count(b"\x00") > len(sample) // 4:
            return 1, "the file looks like UTF-16 text without a byte-order mark (every other byte is NUL)"
        f.seek(0)
        for n, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                byte = raw[e.start]
                guess = ""
                try:
                    text = raw.decode("cp1252").strip()
                    guess = f" (as Windows-1252/latin-1 the line reads {text[:60]!r})"
                except UnicodeDecodeError:
                    pass
                return n, f"byte 0x{byte:02x} at column {e.start + 1} is not UTF-8{guess}"
    return 1, "the file is not UTF-8 text"


def _read_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) for every non-blank record, header included.

    The line number is where the record starts (a quoted field may span lines).
    """
    reader = None
    start = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            for row in reader:
                if row and any(field.strip() for field in row):
                    yield start, row
                start = reader.line_num + 1
    except UnicodeDecodeError:
        line, what = _first_undecodable(path)
        raise CsvImportError(path, line, f"{what}; re-save the file as UTF-8 (CSV UTF-8) and import again") from None
    except csv.Error as e:
        text = str(e)
        if "field larger than field limit" in text:
            limit = csv.field_size_limit()
            problem = (
                f'a field is longer than {limit:,} characters (the CSV field limit); is a quote (") '
                "opened here and never closed?"
            )
        elif "unexpected end of data" in text:
            problem = 'malformed CSV: a quoted field opened here is never closed: the file ends inside quotes (")'
        else:
            start = reader.line_num if reader is not None else 1
            problem = f"malformed CSV ({e})"
        raise CsvImportError(path, max(start, 1), problem) from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], allowed: tuple, required: tuple) -> dict[str, int]:
    """Column name -> field index, after checking names against ``allowed`` / ``required``."""
    try:
        line, fields = next(rows)
    except StopIteration:
        raise CsvImportError(path, 1, "the file has no header line (only blank lines)") from None
    if any("\x00" in f for f in fields):
        raise CsvImportError(
            path,
            line,
            "the header contains NUL bytes: the file looks like UTF-16 without a byte-order mark, or not "
            "text at all; re-save it as UTF-8 (CSV UTF-8) and import again",
        )
    names = [f.strip().lower() for f in fields]
    expected = ", ".join(required) + "".join(f"[, {c}]" for c in allowed if c not in required)
    if len(names) == 1 and any(sep in fields[0] for sep in ";\t"):
        raise CsvImportError(
            path, line, f"the header {_show(fields[0])} is one column: separate the columns with commas ({expected})"
        )
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise CsvImportError(path, line, f"column {_show(name, 40)} appears twice in the header")
        seen[name] = j
    missing = [c for c in required if c not in seen]
    unknown = [fields[j].strip() for n, j in seen.items() if n not in allowed]
    if missing or unknown:
        found = _names([f.strip() for f in fields])
        what = f"missing required column(s) {', '.join(missing)}" if missing else ""
        if unknown:
            what += ("; " if what else "") + f"unknown column(s) {_names(unknown)}"
        raise CsvImportError(path, line, f"{what} (found columns: {found}; expected {expected})")
    return seen


def _width_problem(row: list[str], cols: dict[str, int]) -> str | None:
    if len(row) == len(cols):
        return None
    names = _names(sorted(cols, key=cols.get))
    return f"the row has {len(row)} fields but the header has {len(cols)} ({names})"


def _canonical_ids(ids: list[str]) -> np.ndarray:
    """Ids as int64 when every one is a plain integer (no leading zeros), else as str."""
    if all(_INT_ID.fullmatch(i) for i in ids):
        return np.asarray([int(i) for i in ids], dtype=np.int64)
    return np.asarray(ids, dtype=str)


# ---- items -----------------------------------------------------------------------------------
def _read_items(path: Path, delimiter: str, max_bytes: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """(items table, raw id -> row) from the items file."""
    _check_size(path, max_bytes, "items")
    with contextlib.closing(_read_rows(path, delimiter)) as rows:  # closed at once, also when raising
        return _parse_items(path, rows)


def _parse_items(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[pd.DataFrame, dict[str, int]]:
    cols = _header(path, rows, ITEM_COLUMNS, ("item", "title"))
    ji, jt, ja, jg = (cols.get(c) for c in ITEM_COLUMNS)
    index: dict[str, int] = {}
    lines: list[int] = []
    ids, titles, artists, tags = [], [], [], []
    for line, row in rows:
        if (problem := _width_problem(row, cols)) is not None:
            raise CsvImportError(path, line, problem)
        item = row[ji].strip()
        if not item:
            raise CsvImportError(path, line, "the item id is empty")
        if (problem := _id_problem("item", row[ji])) is not None:
            raise CsvImportError(path, line, problem)
        if len(item) > MAX_ID_CHARS:
            raise CsvImportError(
                path, line, f"the item id is {len(item):,} characters long; ids may have at most {MAX_ID_CHARS}"
            )
        if item in index:
            first = lines[index[item]]
            raise CsvImportError(path, line, f"item {_show(item)} is defined twice (lines {first} and {line})")
        title = row[jt].strip()
        if not title:
            raise CsvImportError(path, line, f"item {_show(item)} has an empty title")
        index[item] = len(ids)
        lines.append(line)
        ids.append(item)
        titles.append(title)
        artists.append(row[ja].strip() if ja is not None else "")
        raw_tags = row[jg].split(TAG_SEPARATOR) if jg is not None else []
        tags.append(tuple(dict.fromkeys(t.strip() for t in raw_tags if t.strip())))
    if not ids:
        raise CsvImportError(path, 2, "the file has a header but no items")
    items = pd.DataFrame({"item_id": _canonical_ids(ids), "title": titles, "artist": artists, "tags": tags})
    return items, index


# ---- interactions ----------------------------------------------------------------------------
class _Chunk:
    """Rows of one chunk, kept as text until the chunk is converted in one vectorised step."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.users: list[int] = []
        self.items: list[int] = []
        self.weights: list[str] = []
        self.times: list[str] = []


def _first_unlike(values: list[str], pattern: re.Pattern, chars: re.Pattern) -> int:
    """Index of the first value that does not fullmatch ``pattern``; ``len(values)`` if none.

    ``chars`` finds a character no valid value has: a chunk without one is checked in one scan of C code
    (a value made of those characters that still breaks the syntax, such as ``1e``, fails to convert).
    """
    if chars.search(" ".join(values)) is None:
        return len(values)
    for k, v in enumerate(values):
        if not pattern.fullmatch(v):
            return k
    return len(values)


def _first_bad(values: list[str], dtype: type) -> int:
    """Index of the first value numpy cannot convert (the same conversion as the whole chunk's)."""
    for k, v in enumerate(values):
        try:
            np.asarray([v], dtype=dtype)
        except (ValueError, OverflowError):
            return k
    return len(values)


def _nonzero_as_written(value: str) -> bool:
    """Whether a weight in the number syntax is not 0 as written (a non-zero digit before any exponent)."""
    return any(c in "123456789" for c in value.lower().split("e")[0])


def _weights(values: list[str]) -> tuple[np.ndarray, tuple[int, str] | None]:
    """(float32 weights, (index, problem) of the first bad one or None): syntax, sign, finiteness, range."""
    k_syntax = _first_unlike(values, NUMBER_RE, _NUMBER_CHARS)
    head = values[:k_syntax]
    try:
        w64 = np.asarray(head, dtype=np.float64)
    except ValueError:  # within the allowed characters but not a number, e.g. "1e", "--1", ""
        k_syntax = _first_bad(head, np.float64)
        head = values[:k_syntax]
        w64 = np.asarray(head, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        w = w64.astype(np.float32)
    for k in np.flatnonzero(~np.isfinite(w) | (w < _TINY)):  # also negatives, zeros, subnormals: sorted out here
        v = values[k]
        if not np.isfinite(w[k]):  # nan / inf spellings are outside the syntax: this is a numeral too large
            what = "is too large (weights are stored as float32, at most 3.4e38)"
        elif w[k] < 0 or (v.strip().startswith("-") and _nonzero_as_written(v)):
            what = "is negative (weights must be >= 0)"
        elif w[k] == 0 and not _nonzero_as_written(v):
            continue  # a real 0: the row is dropped, as documented
        else:
            what = (
                f"is not 0 but too small for a float32 weight (it would be stored as {float(w[k]):.3g}; the "
                f"smallest is {_TINY:.3g}): write 0, or scale every weight up"
            )
        return w, (int(k), f"weight {_show(v)} {what}")
    if k_syntax < len(values):
        v = values[k_syntax]
        what = (
            "is not a finite number"
            if _NOT_FINITE.fullmatch(v)
            else "is not a number (write ASCII digits with an optional sign, '.' and exponent: 3, 0.5, 1e-3)"
        )
        return w, (k_syntax, f"weight {_show(v)} {what}")
    return w, None


def _timestamps(values: list[str]) -> tuple[np.ndarray, tuple[int, str] | None]:
    """(int64 timestamps, (index, problem) of the first bad one or None)."""
    k = _first_unlike(values, INTEGER_RE, _INTEGER_CHARS)
    try:
        t = np.asarray(values[:k], dtype=np.int64)
    except (ValueError, OverflowError):  # e.g. "-", "", or more than int64 holds
        k = _first_bad(values[:k], np.int64)
        t = np.asarray(values[:k], dtype=np.int64)
    if k == len(values):
        return t, None
    top = np.iinfo(np.int64).max
    return t, (k, f"timestamp {_show(values[k])} is not an integer (unix seconds): write ASCII digits, at most {top:,}")


def _convert(path: Path, chunk: _Chunk, has_w: bool, has_t: bool) -> tuple[np.ndarray, ...]:
    """(user codes, item codes, weights, timestamps or None) of a chunk, validating numbers.

    The first bad number in file order is reported, whether a weight or a timestamp.
    """
    w, w_bad = _weights(chunk.weights) if has_w else (np.ones(len(chunk.lines), dtype=np.float32), None)
    t, t_bad = _timestamps(chunk.times) if has_t else (None, None)
    bad = [b for b in (w_bad, t_bad) if b is not None]
    if bad:
        k, problem = min(bad)
        raise CsvImportError(path, chunk.lines[k], problem)
    return np.asarray(chunk.users, dtype=np.int32), np.asarray(chunk.items, dtype=np.int32), w, t


def available_memory() -> int | None:
    """Memory the system can give a new allocation now (``MemAvailable``, bytes); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def memory_needed(rows: int, users: int = 0, longest_user_id: int = 0) -> int:
    """Documented peak memory (bytes) of importing ``rows`` interaction rows of ``users`` distinct users."""
    return rows * ROW_BYTES + users * (USER_BYTES + ID_CHAR_BYTES * longest_user_id)


def _estimate_rows(path: Path, size: int) -> int:
    """Interaction rows of a file estimated from its size and the mean line length of its first MiB."""
    with open(path, "rb") as f:
        sample = f.read(1 << 20)
    lines = max(sample.count(b"\n") - 1, 1)  # minus the header
    if len(sample) == size:
        return lines
    return int(size / (len(sample) / (lines + 1)))


def _read_interactions(
    path: Path, item_index: dict[str, int], items_name: str, delimiter: str, max_rows: int, budget: tuple[int, str]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(user ids in first-seen order, user codes, item rows, weights, timestamps or None)."""
    with contextlib.closing(_read_rows(path, delimiter)) as rows:  # closed at once, also when raising
        return _parse_interactions(path, rows, item_index, items_name, max_rows, budget)


def _parse_interactions(
    path: Path,
    rows: Iterator[tuple[int, list[str]]],
    item_index: dict[str, int],
    items_name: str,
    max_rows: int,
    budget: tuple[int, str],
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    cols = _header(path, rows, INTERACTION_COLUMNS, ("user", "item"))
    ju, ji, jw, jt = (cols.get(c) for c in INTERACTION_COLUMNS)
    has_w, has_t = jw is not None, jt is not None
    users: dict[str, int] = {}
    longest = 0
    parts: list[tuple[np.ndarray, ...]] = []
    chunk = _Chunk()
    n_rows = 0
    max_memory, why = budget

    def fail(line: int, problem: str) -> CsvImportError:
        _convert(path, chunk, has_w, has_t)  # an earlier bad number in this chunk is reported first
        return CsvImportError(path, line, problem)

    def check_memory(line: int) -> None:
        need = memory_needed(n_rows, len(users), longest)
        if max_memory and need > max_memory:
            raise fail(
                line,
                f"by this line the import needs about {_gb(need)} of memory ({n_rows:,} rows x {ROW_BYTES} bytes + "
                f"{len(users):,} users), more than the {_gb(max_memory)} allowed ({why}); stopped before running out. "
                "Free memory, split the file, or pass max_memory= (bytes)",
            )

    for line, row in rows:
        if (problem := _width_problem(row, cols)) is not None:
            raise fail(line, problem)
        user, item = row[ju].strip(), row[ji].strip()
        if not user or not item:
            raise fail(line, f"the {'user' if not user else 'item'} id is empty")
        col = item_index.get(item)
        if col is None or len(item) != len(row[ji]):  # items.csv ids are checked; a stripped one may hide one
            if (problem := _id_problem("item", row[ji])) is not None:
                raise fail(line, problem)
            if col is None:
                raise fail(line, f"item {_show(item, 80)} is not defined in {items_name}")
        code = users.get(user)
        if code is None or len(user) != len(row[ju]):  # checked once per user, and whenever spaces were cut
            if (problem := _id_problem("user", row[ju])) is not None:
                raise fail(line, problem)
        if code is None:
            if len(user) > MAX_ID_CHARS:
                raise fail(line, f"the user id is {len(user):,} characters long; ids may have at most {MAX_ID_CHARS}")
            code = users[user] = len(users)
            longest = max(longest, len(user))
        n_rows += 1
        if n_rows > max_rows:
            raise fail(line, f"more than {max_rows:,} interaction rows (the import limit); pass max_rows= to raise it")
        chunk.lines.append(line)
        chunk.users.append(code)
        chunk.items.append(col)
        if has_w:
            chunk.weights.append(row[jw])
        if has_t:
            chunk.times.append(row[jt])
        if len(chunk.lines) >= _CHUNK:
            check_memory(line)
            parts.append(_convert(path, chunk, has_w, has_t))
            chunk = _Chunk()
    if chunk.lines:
        check_memory(chunk.lines[-1])
        parts.append(_convert(path, chunk, has_w, has_t))
    if not parts:
        raise CsvImportError(path, 2, "the file has a header but no interactions")
    u, i, w, t = (np.concatenate([p[k] for p in parts]) if parts[0][k] is not None else None for k in range(4))
    return list(users), u, i, w, t


def import_csv(
    interactions_path: str | Path,
    items_path: str | Path,
    name: str | None = None,
    *,
    item_noun: str = "song",
    description: str = "",
    delimiter: str = ",",
    max_bytes: int | None = None,
    max_rows: int | None = None,
    max_memory: int | None = None,
) -> Dataset:
    """Read an interactions CSV and an items CSV (format: module docstring) into a Dataset.

    Parameters
    ----------
    interactions_path, items_path : str or Path
        The two files.
    name : str, optional
        Data set name; default ``csv-<the interactions file's name without extension>``
        (:func:`recsys.data.csv_sources.csv_dataset_name`), so a file called ``ml-1m.csv`` never
        takes a built-in data set's name and evaluation protocol.
    item_noun : str
        What an item is called ("song", "artist", "podcast", ...).
    description : str
        Free text stored with the data set (default: where it was imported from).
    delimiter : str
        Field separator (default ``,``).
    max_bytes, max_rows : int, optional
        Size limits (default :data:`MAX_IMPORT_BYTES`, :data:`MAX_IMPORT_ROWS`).
    max_memory : int, optional
        Most memory (bytes) the import may need by :func:`memory_needed`; default
        :data:`DEFAULT_MEMORY_SHARE` of :func:`available_memory` when the import starts; 0: no check.
        A file estimated to need more is refused before it is read, and the import stops as soon as
        the rows read so far need more.

    Returns
    -------
    Dataset
        Weights as given (1.0 without a weight column), timestamps if the column exists.

    Raises
    ------
    CsvImportError
        For the first problem found (file, line, problem).
    """
    ipath, tpath = Path(interactions_path), Path(items_path)
    max_bytes = MAX_IMPORT_BYTES if max_bytes is None else max_bytes
    max_rows = MAX_IMPORT_ROWS if max_rows is None else max_rows
    _check_size(ipath, max_bytes)
    if max_memory is None:
        avail = available_memory()
        budget = (
            (0, "")
            if avail is None
            else (int(avail * DEFAULT_MEMORY_SHARE), f"{DEFAULT_MEMORY_SHARE:.0%} of the {_gb(avail)} available now")
        )
    else:
        budget = (int(max_memory), "max_memory")
    if budget[0]:
        rows = _estimate_rows(ipath, ipath.stat().st_size)
        need = memory_needed(rows)
        if need > budget[0]:
            raise CsvImportError(
                ipath,
                None,
                f"the file has about {rows:,} rows ({ipath.stat().st_size:,} bytes): importing it needs about "
                f"{_gb(need)} of memory ({ROW_BYTES} bytes per row), more than the {_gb(budget[0])} allowed "
                f"({budget[1]}); refused before reading it. Free memory, split the file, or pass max_memory= (bytes)",
            )
    items, item_index = _read_items(tpath, delimiter, max_bytes)
    user_names, u, i, w, t = _read_interactions(ipath, item_index, tpath.name, delimiter, max_rows, budget)

    keep = w > 0
    if not keep.any():
        raise CsvImportError(ipath, None, "every weight is 0: there are no interactions to learn from")
    user_ids = _canonical_ids(user_names)
    order = np.argsort(user_ids, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    positions = items.assign(item_id=np.arange(len(items)))  # build on positions, then put the ids back
    with np.errstate(over="ignore"):  # a sum that leaves float32 is reported below, with its line
        ds = build_dataset(
            "tmp",
            rank[u[keep]],
            i[keep],
            w[keep],
            positions,
            timestamps=None if t is None else t[keep],
        )
    present = np.unique(rank[u[keep]])  # users with only zero weights drop out
    if not np.isfinite(ds.interactions.data).all():
        k = int(np.flatnonzero(~np.isfinite(ds.interactions.data))[0])
        row = int(np.searchsorted(ds.interactions.indptr, k, side="right") - 1)
        user, item = user_names[order[present[row]]], list(item_index)[ds.interactions.indices[k]]
        raise CsvImportError(
            ipath,
            _overflow_line(ipath, delimiter, user, item),
            f"the weights of user {user!r} and item {item!r} add up to more than a float32 holds (3.4e38): "
            "duplicate rows are summed; scale the weights down",
        )
    return Dataset(
        name=name or csv_dataset_name(ipath),
        interactions=ds.interactions,
        items=items,
        user_ids=user_ids[order][present],
        timestamps=ds.timestamps,
        item_noun=item_noun,
        description=description or f"imported from {ipath.name} and {tpath.name}",
    )


def _overflow_line(path: Path, delimiter: str, user: str, item: str) -> int | None:
    """The line where the summed weight of (user, item) leaves float32 (read again: the error path only)."""
    with contextlib.closing(_read_rows(path, delimiter)) as rows:
        cols = _header(path, rows, INTERACTION_COLUMNS, ("user", "item"))
        total = np.float32(0)
        for line, row in rows:
            if row[cols["user"]].strip() == user and row[cols["item"]].strip() == item:
                with np.errstate(over="ignore"):
                    total = np.float32(total + np.float32(row[cols["weight"]]))
                if not np.isfinite(total):
                    return line
    return None


# ---- export ----------------------------------------------------------------------------------
def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_csv(dataset: Dataset, directory: str | Path) -> tuple[Path, Path]:
    """Write ``interactions.csv`` and ``items.csv`` in the import format (each file atomically).

    ``import_csv`` on the result gives back the same interactions, ids, titles, artists and tags.
    Returns the two paths.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    bad = [t for tags in dataset.items["tags"] for t in tags if TAG_SEPARATOR in t]
    if bad:
        raise ValueError(f"tag {bad[0]!r} contains {TAG_SEPARATOR!r}, the tag separator of the CSV format")
    x = dataset.interactions.tocoo()
    inter = pd.DataFrame(
        {
            "user": np.asarray(dataset.user_ids)[x.row],
            "item": dataset.item_ids[x.col],
            "weight": x.data.astype(np.float64),
        }
    )
    if dataset.timestamps is not None:
        inter["timestamp"] = dataset.timestamps
    items = pd.DataFrame(
        {
            "item": dataset.items["item_id"].to_numpy(),
            "title": dataset.items["title"].to_numpy(),
            "artist": dataset.items["artist"].to_numpy(),
            "tags": [TAG_SEPARATOR.join(t) for t in dataset.items["tags"]],
        }
    )
    paths = (d / "interactions.csv", d / "items.csv")
    _write_atomic(items, paths[1])
    _write_atomic(inter, paths[0])
    return paths
