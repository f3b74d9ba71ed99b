"""Malformed CSV imports, generated: every one raises CsvImportError naming the right file and line.

Each example starts from a valid pair of files (random ids, quoting, unicode titles with commas,
quotes and newlines, column order and case, BOM, CRLF, blank lines) and plants exactly one defect
of a known kind in a known record, so the expected file, line and words are known. After every
import the inputs must be unchanged, nothing new may exist beside them, no file handle may stay open
and the csv module's global field limit must be untouched.

Issue 15 adds control characters in ids (``a`` and ``a\\0`` used to become two items ``a``), number
spellings outside the documented syntax (``1_000``, ``٣``, ``５``) and weights that underflow float32
(``1e-50`` used to become 0 and drop its row), plus an oracle over arbitrary ids and numbers: an
import either raises CsvImportError or gives exactly the data set written, never a different one.
"""

from __future__ import annotations

import collections
import csv
import io
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data.csv_import import MAX_ID_CHARS, CsvImportError, import_csv

from .conftest import count, log_figures

FIELD_LIMIT = csv.field_size_limit()
TITLE_CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    st.sampled_from([",", '"', "\n", " ", "|", "é", "😀", ";"]),
)
BAD_WEIGHTS = ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0.5", "abc", "", "1e39", "0x10", "1,5", "--1"]
BAD_TIMES = ["1.5", "abc", "", "99999999999999999999", "1e9", "-", "0x10"]
#: Control characters (Unicode category Cc), refused in ids; NUL is the one numpy drops at an id's end.
CONTROL = ["\x00", "\t", "\n", "\r", "\x0b", "\x1f", "\x7f", "\x85", "\x9f"]
#: What Python's float()/int() read as numbers but the import's documented syntax does not allow.
ODD_WEIGHTS = ["1_000", "\u0663", "\uff15", "\u0661\u0662", "1e5_0", "\u00a01", "1\n", "\u20073", "0_1.5"]
ODD_TIMES = ["1_000", "\u0663", "\uff15", "+1_0", "\u00a05", "1\n"]
UNDERFLOW = ["1e-50", "1e-39", "3e-45", "1e-400", "0.00000000000000000000000000000000000000001", "+7E-46"]
KINDS = [
    "missing_column",
    "unknown_column",
    "duplicate_column",
    "semicolons",
    "latin1",
    "utf16",
    "utf16_no_bom",
    "huge_field",
    "unclosed_quote",
    "bad_weight",
    "bad_timestamp",
    "summed_overflow",
    "duplicate_item",
    "unknown_item",
    "empty_id",
    "empty_title",
    "width",
    "empty_file",
    "blank_only",
    "header_only",
    "all_zero",
    "long_id",
    "random_bytes",
    "control_id",
    "odd_number",
    "underflow_weight",
]
ITEM_KINDS = {"duplicate_item", "empty_title"}
INTERACTION_KINDS = {
    "bad_weight",
    "bad_timestamp",
    "summed_overflow",
    "unknown_item",
    "all_zero",
    "long_id",
    "odd_number",
    "underflow_weight",
}
STATS: collections.Counter = collections.Counter()


class Table:
    """A CSV file under construction: header, records, and how to serialise them."""

    def __init__(self, header: list[str], records: list[list[str]]):
        self.header, self.records = header, records
        self.terminator, self.bom, self.blank_after = "\n", False, set()

    def col(self, name: str) -> int:
        return [h.lower() for h in self.header].index(name)

    def render(self) -> tuple[str, list[int]]:
        """(text, start line of every record)."""
        buf = io.StringIO()
        buf.write(_csv_line(self.header, self.terminator))
        starts = []
        for k, rec in enumerate(self.records):
            starts.append(buf.getvalue().count("\n") + 1)
            buf.write(_csv_line(rec, self.terminator))
            if k in self.blank_after:
                buf.write(self.terminator)
        return ("\ufeff" if self.bom else "") + buf.getvalue(), starts


def _csv_line(fields: list[str], terminator: str) -> str:
    """One record, quoted where a reader needs it: the delimiter, a quote, and both line-break characters.

    (Python 3.11's csv writer quotes only the characters of its own line terminator, so with "\n" it
    wrote a bare "\r" unquoted, which every reader takes as a line break, not as part of an id.)
    """
    quoted = ['"' + f.replace('"', '""') + '"' if any(c in f for c in ',"\r\n') else f for f in fields]
    return ",".join(quoted) + terminator


@st.composite
def valid_tables(draw) -> tuple[Table, Table]:
    n_items = draw(st.integers(1, 6))
    if draw(st.booleans()):
        ids = [str(v) for v in draw(st.lists(st.integers(-99, 999), min_size=n_items, max_size=n_items, unique=True))]
    else:
        ids = draw(
            st.lists(
                st.text(alphabet="abcXYZé-_ .", min_size=1, max_size=6).map(str.strip).filter(bool),
                min_size=n_items,
                max_size=n_items,
                unique=True,
            )
        )
    titles = draw(
        st.lists(st.text(TITLE_CHARS, min_size=1, max_size=10).filter(str.strip), min_size=n_items, max_size=n_items)
    )
    item_cols = ["item", "title", *draw(st.sampled_from([[], ["artist"], ["tags"], ["artist", "tags"]]))]
    item_cols = draw(st.permutations(item_cols))
    extra = {"artist": lambda: draw(st.text(TITLE_CHARS, max_size=6)), "tags": lambda: "rock|pop"}
    item_recs = [
        [ids[k] if c == "item" else titles[k] if c == "title" else extra[c]() for c in item_cols]
        for k in range(n_items)
    ]
    inter_cols = ["user", "item", *draw(st.sampled_from([[], ["weight"], ["timestamp"], ["weight", "timestamp"]]))]
    inter_cols = draw(st.permutations(inter_cols))
    n_rows = draw(st.integers(1, 8))
    users = draw(
        st.lists(st.sampled_from(["u1", "u2", "7", "0", "-3", "listener é"]), min_size=n_rows, max_size=n_rows)
    )
    recs = []
    for k in range(n_rows):
        value = {
            "user": users[k],
            "item": draw(st.sampled_from(ids)),
            "weight": repr(draw(st.floats(0.5, 1e4))) if draw(st.booleans()) else str(draw(st.integers(1, 50))),
            "timestamp": str(draw(st.integers(0, 2_000_000_000))),
        }
        recs.append([value[c] for c in inter_cols])
    items, inter = Table(item_cols, item_recs), Table(inter_cols, recs)
    for t in (items, inter):
        t.header = [draw(st.sampled_from([h, h.upper(), h.title(), f" {h} "])) for h in t.header]
        t.terminator = draw(st.sampled_from(["\n", "\r\n"]))
        t.bom = draw(st.booleans())
        t.blank_after = set(draw(st.lists(st.integers(0, len(t.records) - 1), max_size=2)))
    return items, inter


@st.composite
def malformed(draw, kind: str | None = None):
    """(items bytes, interactions bytes, kind, expected file name, expected line or None, words)."""
    items, inter = draw(valid_tables())
    kind = kind or draw(st.sampled_from(KINDS))
    if kind in ITEM_KINDS:
        target, name = items, "items.csv"
    elif kind in INTERACTION_KINDS:
        target, name = inter, "interactions.csv"
    else:
        target, name = draw(st.sampled_from([(items, "items.csv"), (inter, "interactions.csv")]))
    recs = target.records
    r = draw(st.integers(0, len(recs) - 1))
    marker = None  # (text in the rendered file, bytes to put there)
    line_of = "record"  # the expected line: the start of record r, unless set otherwise
    words: tuple[str, ...]
    raw: bytes | None = None

    if kind == "missing_column":
        required = ["user", "item"] if target is inter else ["item", "title"]
        j = target.col(draw(st.sampled_from(required)))
        target.header.pop(j)
        for rec in recs:
            rec.pop(j)
        line_of, words = 1, ("missing required column",)
    elif kind == "unknown_column":
        target.header.append(draw(st.sampled_from(["rating", "Genre", "plays "])))
        for rec in recs:
            rec.append("1")
        line_of, words = 1, ("unknown column",)
    elif kind == "duplicate_column":
        j = draw(st.integers(0, len(target.header) - 1))
        target.header.append(target.header[j].upper())
        for rec in recs:
            rec.append(rec[j])
        line_of, words = 1, ("appears twice",)
    elif kind == "semicolons":
        text, _ = target.render()
        raw = ";".join(h.strip() for h in target.header).encode() + b"\n" + text.split("\n", 1)[1].encode()
        line_of, words = 1, ("one column",)
    elif kind == "latin1":
        recs[r][0] = "ZZLATINZZ"
        marker = ("ZZLATINZZ", "café".encode("cp1252"))
        words = ("not UTF-8", "re-save")
    elif kind in ("utf16", "utf16_no_bom"):
        text, _ = target.render()
        raw = text.encode("utf-16") if kind == "utf16" else text.lstrip("\ufeff").encode("utf-16-le")
        line_of, words = 1, ("UTF-16",)
    elif kind == "huge_field":
        recs[r][draw(st.integers(0, len(recs[r]) - 1))] = "x" * (FIELD_LIMIT + draw(st.integers(1, 5000)))
        words = ("longer than", "characters")
    elif kind == "unclosed_quote":
        r = len(recs) - 1
        recs[r][-1] = "ZZQUOTEZZ"
        target.blank_after.discard(r)
        marker = ("ZZQUOTEZZ", b'"never closed')
        words = ("never closed",)
    elif kind == "bad_weight":
        if "weight" not in [h.strip().lower() for h in inter.header]:
            inter.header.append("weight")
            for rec in recs:
                rec.append("1")
        recs[r][inter.col_clean("weight")] = draw(st.sampled_from(BAD_WEIGHTS))
        words = ("weight",)
    elif kind == "bad_timestamp":
        if "timestamp" not in [h.strip().lower() for h in inter.header]:
            inter.header.append("timestamp")
            for rec in recs:
                rec.append("100")
        recs[r][inter.col_clean("timestamp")] = draw(st.sampled_from(BAD_TIMES))
        words = ("timestamp",)
    elif kind == "summed_overflow":
        if "weight" not in [h.strip().lower() for h in inter.header]:
            inter.header.append("weight")
            for rec in recs:
                rec.append("1")
        ju, ji, jw = inter.col_clean("user"), inter.col_clean("item"), inter.col_clean("weight")
        first = list(recs[r])
        first[ju], first[jw] = "overflow-user", "3e38"
        recs.insert(r, first)
        second = list(first)
        recs.insert(r + 1 + draw(st.integers(0, len(recs) - r - 1)), second)
        r = recs.index(second, r + 1)
        words = ("add up", "float32")
        _ = ji
    elif kind == "duplicate_item":
        if len(recs) < 2:
            recs.append(list(recs[0]))
        r = draw(st.integers(1, len(recs) - 1))
        j = items.col_clean("item")
        recs[r][j] = recs[draw(st.integers(0, r - 1))][j]
        words = ("defined twice",)
    elif kind == "unknown_item":
        recs[r][inter.col_clean("item")] = "no-such-item"
        words = ("not defined in items.csv",)
    elif kind == "empty_id":
        col = draw(st.sampled_from(["user", "item"])) if target is inter else "item"
        recs[r][target.col_clean(col)] = draw(st.sampled_from(["", "  "]))
        words = ("id is empty",)
    elif kind == "empty_title":
        recs[r][items.col_clean("title")] = draw(st.sampled_from(["", " "]))
        words = ("empty title",)
    elif kind == "width":
        if draw(st.booleans()):
            recs[r].append("extra")
        else:
            recs[r].pop()
        words = ("fields but the header has",)
    elif kind == "empty_file":
        raw, line_of, words = b"", 1, ("empty",)
    elif kind == "blank_only":
        raw = draw(st.sampled_from([b"\n", b"\r\n\r\n", b" \n\n", b",,\n"]))
        line_of, words = 1, ("no header",)
    elif kind == "header_only":
        text, _ = target.render()
        raw = text.split(target.terminator, 1)[0].encode() + target.terminator.encode() * draw(st.integers(0, 2))
        line_of, words = 2, ("has a header but no",)
    elif kind == "all_zero":
        if "weight" not in [h.strip().lower() for h in inter.header]:
            inter.header.append("weight")
            for rec in recs:
                rec.append("0")
        for rec in recs:
            rec[inter.col_clean("weight")] = draw(st.sampled_from(["0", "0.0", "-0", " 0 "]))
        line_of, words = None, ("every weight is 0",)
    elif kind == "long_id":
        recs[r][inter.col_clean("user")] = "u" * (MAX_ID_CHARS + draw(st.integers(1, 2000)))
        words = ("at most",)
    elif kind == "random_bytes":
        raw = draw(st.binary(min_size=1, max_size=300))
        line_of, words = "any", ()
    elif kind == "control_id":
        j = target.col_clean(draw(st.sampled_from(["user", "item"])) if target is inter else "item")
        c, base = draw(st.sampled_from(CONTROL)), recs[r][j]
        where = draw(st.integers(0, len(base)))
        recs[r][j] = base[:where] + c + base[where:]  # at either end too: stripping must not hide it
        words = ("control character", "remove it")
    elif kind == "odd_number":
        column = draw(st.sampled_from(["weight", "timestamp"]))
        if column not in [h.strip().lower() for h in inter.header]:
            inter.header.append(column)
            for rec in recs:
                rec.append("1")
        recs[r][inter.col_clean(column)] = draw(st.sampled_from(ODD_WEIGHTS if column == "weight" else ODD_TIMES))
        words = ("weight", "is not a number") if column == "weight" else ("timestamp", "is not an integer")
    elif kind == "underflow_weight":
        if "weight" not in [h.strip().lower() for h in inter.header]:
            inter.header.append("weight")
            for rec in recs:
                rec.append("1")
        recs[r][inter.col_clean("weight")] = draw(st.sampled_from(UNDERFLOW))
        words = ("weight", "not 0 but too small")
    else:  # pragma: no cover
        raise AssertionError(kind)

    if raw is None:
        text, starts = target.render()
        data = text.encode("utf-8")
        if marker is not None:
            data = data.replace(marker[0].encode(), marker[1])
        if line_of == "record":
            line_of = starts[r]
    else:
        data = raw
    other = inter if target is items else items
    other_text, _ = other.render()
    items_bytes = data if target is items else other_text.encode("utf-8")
    inter_bytes = data if target is inter else other_text.encode("utf-8")
    return items_bytes, inter_bytes, kind, name, line_of, words


def _col_clean(self: Table, name: str) -> int:
    return [h.strip().lower() for h in self.header].index(name)


Table.col_clean = _col_clean
Table.col = _col_clean


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_malformed_imports_raise_the_documented_error_with_file_and_line() -> None:
    """``RECSYS_CSV_EXAMPLES`` examples, split evenly over the defect kinds."""
    n = count("RECSYS_CSV_EXAMPLES")
    per_kind = -(-n // len(KINDS))
    t0 = time.perf_counter()
    STATS.clear()

    @settings(
        max_examples=per_kind,
        deadline=None,
        derandomize=os.environ.get("RECSYS_HYPOTHESIS_RANDOM") != "1",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        database=None,
    )
    def check(case) -> None:
        items_bytes, inter_bytes, kind, name, line, words = case
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "items.csv").write_bytes(items_bytes)
            (d / "interactions.csv").write_bytes(inter_bytes)
            before, fds = _snapshot(d), _open_fds()
            try:
                import_csv(d / "interactions.csv", d / "items.csv", max_memory=0)
            except CsvImportError as e:
                err = e
            else:
                raise AssertionError(f"{kind}: the import succeeded")
            msg, err_file, err_line, problem = str(err), Path(err.file).name, err.line, err.problem
            # checked while the error (and its traceback) is still held, as an app showing it would
            assert _open_fds() == fds, f"{kind}: a file handle stays open while the error is held"
            del err
            assert _snapshot(d) == before, f"{kind}: the import changed or added files"
            assert csv.field_size_limit() == FIELD_LIMIT
        if kind != "random_bytes":
            assert err_file == name, f"{kind}: {msg}"
            assert err_line == line, f"{kind}: expected line {line}: {msg}"
        assert (err_line is None or err_line >= 1) and msg.startswith(err_file)
        for w in words:
            assert w in problem, f"{kind}: {w!r} not in {msg!r}"
        STATS[kind] += 1

    for kind in KINDS:
        given(case=malformed(kind))(check)()
    total = sum(STATS.values())
    log_figures(
        "csv_malformed",
        examples=total,
        by_kind=dict(sorted(STATS.items())),
        wall_s=round(time.perf_counter() - t0, 1),
    )
    assert total >= n and set(STATS) == set(KINDS), STATS


@st.composite
def valid_cases(draw):
    items, inter = draw(valid_tables())
    return items, inter


def test_valid_files_import_exactly_with_unique_ids() -> None:
    """The oracle: summed weights per (user, item) computed in Python; every id is unique in the Dataset."""
    n = max(count("RECSYS_CSV_EXAMPLES") // 5, 50)

    @settings(max_examples=n, deadline=None, derandomize=True, database=None)
    @given(case=valid_cases(), numeric=st.booleans(), data=st.data())
    def check(case, numeric, data) -> None:
        items, inter = case
        ju, ji = inter.col_clean("user"), inter.col_clean("item")
        # integer-looking user ids (the Dataset turns them into ints): other spellings of one number must not
        # collapse into duplicate ids
        pool = ["0", "-0", "7", "-3", " 12"] if numeric else ["0", "-0", "00", "7", "07", "+7", " 7", "u1"]
        for rec in inter.records:
            if numeric or data.draw(st.booleans()):
                rec[ju] = data.draw(st.sampled_from(pool))
        jw = inter.col_clean("weight") if "weight" in [h.strip().lower() for h in inter.header] else None
        expected: dict[tuple[str, str], float] = collections.defaultdict(float)
        for rec in inter.records:
            expected[(rec[ju].strip(), rec[ji].strip())] += float(rec[jw]) if jw is not None else 1.0
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "items.csv").write_text(items.render()[0], encoding="utf-8")
            (d / "interactions.csv").write_text(inter.render()[0], encoding="utf-8")
            ds = import_csv(d / "interactions.csv", d / "items.csv", max_memory=0)
        assert len(set(map(str, ds.user_ids))) == ds.n_users
        assert len(set(map(str, ds.item_ids))) == ds.n_items
        x = ds.interactions.tocoo()
        users = {u.strip() for u, _ in expected}
        assert ds.n_users == len(users)
        assert x.nnz == len(expected)
        got = {}
        raw_users = sorted(users, key=lambda u: ds.user_ids.tolist().index(_canon(u, ds.user_ids.dtype)))
        index = {_canon(u, ds.user_ids.dtype): u for u in raw_users}
        for r, c, w in zip(x.row, x.col, x.data, strict=True):
            got[(index[ds.user_ids[r].item() if ds.user_ids.dtype != object else ds.user_ids[r]], str(c))] = w
        for (u, i), w in expected.items():
            col = str([str(v).strip() for v in items.records_ids()].index(i))
            assert got[(u, col)] == pytest.approx(np.float32(w), rel=1e-6), (u, i)

    check()


def _canon(u: str, dtype) -> object:
    return int(u) if dtype.kind == "i" else u


def _records_ids(self: Table) -> list[str]:
    j = self.col_clean("item")
    return [rec[j].strip() for rec in self.records]


Table.records_ids = _records_ids


# ---- issue 15: arbitrary ids and numbers are imported exactly as written, or refused ---------------
# The documented syntax, written out here independently of the importer's own pattern.
WEIGHT_SYNTAX = re.compile(r"[ \t]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t]*", re.ASCII)
TIME_SYNTAX = re.compile(r"[ \t]*[+-]?\d+[ \t]*", re.ASCII)
ID_CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),  # Cc, Zs, Zl, Cf, digits of every script, ...
    st.sampled_from([*CONTROL, " ", ",", '"', "7", "-", "0"]),
    st.sampled_from(list("abcxyz1234")),
)
#: Ids without control characters (the other half of the files): Zs, Zl, Cf, digits of every script, ...
CLEAN_ID_CHARS = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    st.sampled_from([" ", ",", '"', "7", "-", "0", *"abcxyz1234"]),
)
GOOD_WEIGHTS = st.one_of(
    st.integers(0, 50).map(str),
    st.floats(1e-30, 1e6).map(repr),
    st.sampled_from(["0", "-0", "0e5", ".5", "2.", " 3 ", "+1E2"]),
)
WEIGHTS = st.one_of(GOOD_WEIGHTS, st.sampled_from(ODD_WEIGHTS + UNDERFLOW + ["nan", "inf", "", "-1"]))
GOOD_TIMES = st.one_of(st.integers(-10, 2_000_000_000).map(str), st.sampled_from(["+5", " 7 "]))
TIMES = st.one_of(GOOD_TIMES, st.sampled_from([*ODD_TIMES, "1e3", ""]))


def _documented_weight(v: str) -> float | None:
    """The weight the docs promise for ``v``, or None where they say it is refused."""
    if not WEIGHT_SYNTAX.fullmatch(v):
        return None
    x = float(v)
    nonzero = re.search("[1-9]", v.lower().split("e")[0]) is not None
    if (x < 0 and nonzero) or not np.isfinite(np.float32(x)) or (nonzero and abs(np.float32(x)) < 1.1754944e-38):
        return None
    return x


@st.composite
def any_ids_and_numbers(draw):
    chars = ID_CHARS if draw(st.booleans()) else CLEAN_ID_CHARS
    n_items = draw(st.integers(1, 4))
    item_ids = draw(st.lists(st.text(chars, min_size=1, max_size=4), min_size=n_items, max_size=n_items))
    n_rows = draw(st.integers(1, 6))
    odd = draw(st.booleans())  # half the files with odd numbers, half with good ones (their ids still vary)
    rows = [
        (
            draw(st.text(chars, min_size=1, max_size=4)),
            draw(st.sampled_from(item_ids)),
            draw(WEIGHTS if odd else GOOD_WEIGHTS),
            draw(TIMES if odd else GOOD_TIMES),
        )
        for _ in range(n_rows)
    ]
    return item_ids, rows


def test_any_ids_and_numbers_import_exactly_or_are_refused() -> None:
    """Ids with any characters (control characters included), numbers in any spelling: the import raises
    CsvImportError, and must where the docs refuse (a control character in an id, a number outside the
    syntax, a weight that underflows), or returns exactly the data set written (ids stripped, weights
    summed), never one with ids merged, truncated or numbers read differently."""
    n = max(count("RECSYS_CSV_EXAMPLES") // 2, 100)
    outcomes: collections.Counter = collections.Counter()

    @settings(
        max_examples=n,
        deadline=None,
        derandomize=os.environ.get("RECSYS_HYPOTHESIS_RANDOM") != "1",
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(case=any_ids_and_numbers())
    def check(case) -> None:
        item_ids, rows = case
        all_ids = item_ids + [u for u, *_ in rows]
        weights = [_documented_weight(w) for _, _, w, _ in rows]
        must_refuse = (
            any(any(0 <= ord(c) < 32 or 127 <= ord(c) < 160 for c in i) for i in all_ids)
            or None in weights
            or not all(TIME_SYNTAX.fullmatch(t) for *_, t in rows)
        )
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            with open(d / "items.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["item", "title"])
                w.writerows([i, "t"] for i in item_ids)
            with open(d / "interactions.csv", "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["user", "item", "weight", "timestamp"])
                w.writerows(rows)
            try:
                ds = import_csv(d / "interactions.csv", d / "items.csv", max_memory=0)
            except CsvImportError as e:
                outcomes["refused" if must_refuse else "refused (other reason)"] += 1
                assert len(str(e)) < 1000
                return
        assert not must_refuse, f"imported without an error: {item_ids!r} {rows!r}"
        outcomes["imported"] += 1
        assert [str(i) for i in ds.item_ids] == [i.strip() for i in item_ids]
        expected: dict[tuple[str, str], float] = collections.defaultdict(float)
        for (u, i, _, _), wt in zip(rows, weights, strict=True):
            expected[(u.strip(), i.strip())] += wt
        expected = {k: v for k, v in expected.items() if v > 0}
        assert sorted(str(u) for u in ds.user_ids) == sorted({u for u, _ in expected})
        x = ds.interactions.tocoo()
        got = {(str(ds.user_ids[r]), str(ds.item_ids[c])): v for r, c, v in zip(x.row, x.col, x.data, strict=True)}
        assert got.keys() == expected.keys()
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, rel=1e-5), k

    check()
    log_figures("csv_any_ids_and_numbers", examples=n, **outcomes)
    assert outcomes["refused"] > 0 and outcomes["imported"] > 0, outcomes
