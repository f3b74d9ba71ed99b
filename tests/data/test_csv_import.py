"""CSV import: the format, every documented error (file, line, problem), and the export round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.data import CsvImportError, export_csv, generate_synthetic, import_csv, load_dataset
from recsys.data import csv_import as ci

ITEMS = "item,title,artist,tags\ns1,Song One,Band A,rock|indie\ns2,Song Two,Band B,pop\ns3,Song Three,,\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def run(tmp_path: Path, interactions: str | bytes, items: str | bytes = ITEMS, **kw):
    return import_csv(write(tmp_path, "interactions.csv", interactions), write(tmp_path, "items.csv", items), **kw)


def fails(tmp_path, interactions, items=ITEMS, **kw) -> CsvImportError:
    with pytest.raises(CsvImportError) as e:
        run(tmp_path, interactions, items, **kw)
    err = e.value
    assert isinstance(err, ValueError)
    where = Path(err.file).name if err.line is None else f"{Path(err.file).name}, line {err.line}"
    assert str(err) == f"{where}: {err.problem}"
    return err


# ---- the happy path --------------------------------------------------------------------------
def test_minimal_files(tmp_path):
    ds = run(tmp_path, "user,item\nu2,s1\nu1,s2\nu1,s1\n")
    assert ds.n_users == 2 and ds.n_items == 3 and ds.interactions.nnz == 3
    assert list(ds.user_ids) == ["u1", "u2"]
    assert list(ds.item_ids) == ["s1", "s2", "s3"]  # items keep file order, unused ones stay
    assert (ds.interactions.data == 1.0).all() and ds.timestamps is None
    assert ds.items["tags"][0] == ("rock", "indie") and ds.items["tags"][2] == ()
    assert ds.items["artist"][2] == "" and ds.name == "csv-interactions"


def test_weights_timestamps_duplicates_and_order(tmp_path):
    text = "timestamp,Weight,USER,item\n100,2,7,s2\n300,1.5,7,s2\n200,3,10,s1\n50,0,10,s3\n"
    ds = run(tmp_path, text, name="mine", item_noun="podcast")
    assert ds.name == "mine" and ds.item_noun == "podcast"
    assert list(ds.user_ids) == [7, 10] and ds.user_ids.dtype == np.int64  # integer ids sort numerically
    x = ds.interactions.toarray()
    assert x[0, 1] == pytest.approx(3.5)  # duplicates summed
    assert x[1, 0] == 3 and x[1, 2] == 0  # the zero-weight row is dropped
    assert ds.interactions.nnz == 2
    assert list(ds.timestamps) == [300, 200]  # the latest timestamp of a merged pair


def test_csv_quoting_bom_blank_lines_and_crlf(tmp_path):
    items = '\ufeffitem,title,artist\r\n"s,1","Crosby, Stills & Nash","A ""quoted"" band"\r\n\r\ns2,Two,B\r\n'
    ds = run(tmp_path, 'user,item\r\n\r\nu,"s,1"\r\nu,s2\r\n', items)
    assert list(ds.item_ids) == ["s,1", "s2"]
    assert ds.items["title"][0] == "Crosby, Stills & Nash" and ds.items["artist"][0] == 'A "quoted" band'
    assert ds.interactions.nnz == 2


def test_ids_with_leading_zeros_stay_text(tmp_path):
    ds = run(tmp_path, "user,item\n007,1\n7,2\n", "item,title\n1,a\n2,b\n")
    assert list(ds.user_ids) == ["007", "7"] and list(ds.item_ids) == [1, 2]


def test_users_with_only_zero_weights_drop_out(tmp_path):
    ds = run(tmp_path, "user,item,weight\na,s1,0\nb,s1,1\n")
    assert list(ds.user_ids) == ["b"]
    err = fails(tmp_path, "user,item,weight\na,s1,0\n")
    assert err.line is None and "every weight is 0" in err.problem


def test_round_trip_through_export(tmp_path):
    ds = generate_synthetic(n_users=60, n_items=120, n_artists=20, n_tags=5, seed=3)
    inter, items = export_csv(ds, tmp_path / "out")
    back = import_csv(inter, items, name="synthetic")
    assert back.fingerprint == ds.fingerprint
    assert (back.interactions != ds.interactions).nnz == 0
    np.testing.assert_array_equal(back.timestamps, ds.timestamps)
    assert list(back.items["tags"]) == list(ds.items["tags"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["interactions.csv", "items.csv"]


def test_a_directory_for_a_file_says_so_and_what_to_pass(tmp_path):
    write(tmp_path, "items.csv", ITEMS)
    (tmp_path / "plays").mkdir()
    with pytest.raises(CsvImportError, match=r"plays is a directory, not a file: pass the interactions CSV file"):
        import_csv(tmp_path / "plays", tmp_path / "items.csv")
    write(tmp_path, "interactions.csv", "user,item\nu,s1\n")
    with pytest.raises(CsvImportError, match=r"directory, not a file: .*\(it holds items.csv: pass .*items.csv\)"):
        import_csv(tmp_path / "interactions.csv", tmp_path)


def test_names_never_come_from_a_built_in_data_set(tmp_path):
    from recsys.data import check_dataset_name, dataset_name
    from recsys.data.splits import strong_generalization_split

    inter, items = export_csv(generate_synthetic(n_users=120, n_items=80, n_artists=10, n_tags=4, seed=3), tmp_path)
    inter = write(tmp_path, "ml-1m.csv", inter.read_text())
    ds = load_dataset(f"csv:{inter},{items}")
    assert ds.name == "csv-ml-1m" == dataset_name(f"csv:{inter},{items}")
    assert ds.source["interactions"]["bytes"] == inter.stat().st_size
    assert strong_generalization_split(ds, 0).val_foldin.shape[0] == 12  # n // 10, not ml-1m's 600
    assert load_dataset(f"csv:{tmp_path}").name == f"csv-{tmp_path.name}"[:60].rstrip("-_.")
    assert dataset_name("ML1M") == "ml-1m" and dataset_name("csv:/x/a b (1).csv,/x/i.csv") == "csv-a-b-1"
    for bad in ("synthetic", "lastfm", "ml-100k", "a/b", "x y", "", "..", "-x"):
        with pytest.raises(ValueError):
            check_dataset_name(bad)
    assert check_dataset_name("my-ml-1m") == "my-ml-1m"


def test_load_dataset_csv_prefix(tmp_path):
    write(tmp_path, "interactions.csv", "user,item\nu,s1\n")
    write(tmp_path, "items.csv", ITEMS)
    a = load_dataset(f"csv:{tmp_path / 'interactions.csv'},{tmp_path / 'items.csv'}")
    b = load_dataset(f"csv:{tmp_path}")
    assert a.fingerprint == b.fingerprint and a.interactions.nnz == 1


def test_first_problem_in_file_order_wins_across_kinds(tmp_path):
    # a bad number (checked per chunk) before a structural problem (checked per row)
    err = fails(tmp_path, "user,item,weight\nu,s1,1\nu,s2,abc\nu,nope,1\n")
    assert err.line == 3 and err.problem.startswith("weight 'abc' is not a number")


def test_errors_past_the_first_chunk_have_the_right_line(tmp_path, monkeypatch):
    monkeypatch.setattr(ci, "_CHUNK", 4)
    rows = "".join(f"u{k},s1,{k}\n" for k in range(10))
    err = fails(tmp_path, "user,item,weight\n" + rows + "u,s1,-2\n")
    assert err.line == 12 and "negative" in err.problem


# ---- every documented error ------------------------------------------------------------------
@pytest.mark.parametrize(
    "interactions, items, file, line, words",
    [
        ("", ITEMS, "interactions.csv", 1, ["empty", "header"]),
        ("user,item\n", ITEMS, "interactions.csv", 2, ["header but no interactions"]),
        ("\n\n", ITEMS, "interactions.csv", 1, ["no header"]),
        (
            "user,song\nu,s1\n",
            ITEMS,
            "interactions.csv",
            1,
            ["missing required column(s) item", "found columns: user, song"],
        ),
        ("user,item,rating\nu,s1,5\n", ITEMS, "interactions.csv", 1, ["unknown column(s) rating"]),
        ("user;item\nu;s1\n", ITEMS, "interactions.csv", 1, ["one column", "commas"]),
        ("user,item,user\nu,s1,u\n", ITEMS, "interactions.csv", 1, ["'user' appears twice"]),
        ("user,item,weight\nu,s1,1\nu,s2,abc\n", ITEMS, "interactions.csv", 3, ["weight 'abc' is not a number"]),
        ("user,item,weight\nu,s1,\n", ITEMS, "interactions.csv", 2, ["weight '' is not a number"]),
        ("user,item,weight\nu,s1,nan\n", ITEMS, "interactions.csv", 2, ["'nan' is not a finite number"]),
        ("user,item,weight\nu,s1,inf\n", ITEMS, "interactions.csv", 2, ["'inf' is not a finite number"]),
        ("user,item,weight\nu,s1,-1\n", ITEMS, "interactions.csv", 2, ["'-1' is negative"]),
        ("user,item,timestamp\nu,s1,1.5\n", ITEMS, "interactions.csv", 2, ["timestamp '1.5' is not an integer"]),
        ("user,item,timestamp\nu,s1,2020-01-01\n", ITEMS, "interactions.csv", 2, ["not an integer (unix seconds)"]),
        ("user,item,timestamp\nu,s1,99999999999999999999\n", ITEMS, "interactions.csv", 2, ["not an integer"]),
        ("user,item\nu,s1\nu,s9\n", ITEMS, "interactions.csv", 3, ["item 's9' is not defined in items.csv"]),
        ("user,item\nu,s1\nu,s2,5\n", ITEMS, "interactions.csv", 3, ["3 fields but the header has 2 (user, item)"]),
        ("user,item\nu,s1\nu\n", ITEMS, "interactions.csv", 3, ["1 fields but the header has 2"]),
        ("user,item\n,s1\n", ITEMS, "interactions.csv", 2, ["user id is empty"]),
        ('user,item\nu,"s1\n', ITEMS, "interactions.csv", 2, ["malformed CSV"]),
        ("user,item\nu,s1\n", "", "items.csv", 1, ["empty"]),
        ("user,item\nu,s1\n", "item,title\n", "items.csv", 2, ["header but no items"]),
        ("user,item\nu,s1\n", "item,name\ns1,x\n", "items.csv", 1, ["missing required column(s) title"]),
        (
            "user,item\nu,s1\n",
            "item,title\ns1,a\ns2,b\ns1,c\n",
            "items.csv",
            4,
            ["'s1' is defined twice (lines 2 and 4)"],
        ),
        ("user,item\nu,s1\n", "item,title\ns1,\n", "items.csv", 2, ["empty title"]),
        ("user,item\nu,s1\n", "item,title\n,x\n", "items.csv", 2, ["item id is empty"]),
        ("user,item\nu,s1\n", "item,title\ns1,a,b\n", "items.csv", 2, ["3 fields"]),
    ],
)
def test_error_cases(tmp_path, interactions, items, file, line, words):
    err = fails(tmp_path, interactions, items)
    assert Path(err.file).name == file and err.line == line, str(err)
    for w in words:
        assert w in err.problem, str(err)


def test_latin1_file_is_refused_with_advice(tmp_path):
    items = "item,title\ns1,Caf\u00e9\ns2,Ol\u00e9\n".encode("latin-1")
    err = fails(tmp_path, "user,item\nu,s1\n", items)
    assert Path(err.file).name == "items.csv" and err.line == 2
    assert "0xe9" in err.problem and "not UTF-8" in err.problem and "re-save the file as UTF-8" in err.problem
    assert "'s1,Café'" in err.problem  # how the line reads as latin-1


def test_utf16_file_is_refused(tmp_path):
    err = fails(tmp_path, "user,item\nu,s1\n".encode("utf-16"))
    assert err.line == 1 and "UTF-16" in err.problem and "UTF-8" in err.problem


def test_missing_file(tmp_path):
    with pytest.raises(CsvImportError, match="no such file"):
        import_csv(tmp_path / "nope.csv", write(tmp_path, "items.csv", ITEMS))


def test_size_and_row_limits(tmp_path):
    err = fails(tmp_path, "user,item\nu,s1\n", max_bytes=10)
    assert err.line is None and "more than the import limit of 10" in err.problem and "max_bytes" in err.problem
    assert ci.MAX_IMPORT_BYTES >= 100 * 1024**2
    err = fails(tmp_path, "user,item\na,s1\nb,s1\nc,s1\n", max_rows=2)
    assert err.line == 4 and "more than 2 interaction rows" in err.problem


def test_weight_too_large_for_float32(tmp_path):
    err = fails(tmp_path, "user,item,weight\nu,s1,1e39\n")
    assert err.line == 2 and "too large" in err.problem


# ---- issue 15: control characters in ids, one number syntax, underflow, message length --------
@pytest.mark.parametrize(
    "interactions, items, file, line, what",
    [
        ("user,item\nu1,a\n", "item,title\na,A\na\0,B\n", "items.csv", 3, "NUL"),  # numpy drops a trailing NUL
        ("user,item\nu1,a\nu1\0,a\n", "item,title\na,A\n", "interactions.csv", 3, "NUL"),
        ("user,item\nu1,a\n\0u1,a\n", "item,title\na,A\n", "interactions.csv", 3, "NUL"),
        ("user,item\nu1,a\nu1,a\0\n", "item,title\na,A\n", "interactions.csv", 3, "NUL"),
        ("user,item\nu1,a\n", "item,title\na,A\na\x1f,B\n", "items.csv", 3, "U+001F"),  # str.strip() drops it
        ("user,item\nu1,a\nu1\x1f,a\n", "item,title\na,A\n", "interactions.csv", 3, "U+001F"),
        ('user,item\nu1,a\n"u1\t",a\n', "item,title\na,A\n", "interactions.csv", 3, "a tab"),
        ('user,item\nu1,"a\t"\n', "item,title\na,A\n", "interactions.csv", 2, "a tab"),
        ('user,item\n"u\n1",a\n', "item,title\na,A\n", "interactions.csv", 2, "a line break"),
        ("user,item\nu1,a\n", 'item,title\n"a\r\nb",A\n', "items.csv", 2, "a line break"),
        ("user,item\nu\x7f,a\n", "item,title\na,A\n", "interactions.csv", 2, "U+007F"),
        ("user,item\nu1,a\n", "item,title\na\x85,A\n", "items.csv", 2, "U+0085"),
    ],
)
def test_control_characters_in_ids_are_refused(tmp_path, interactions, items, file, line, what):
    err = fails(tmp_path, interactions, items)
    assert Path(err.file).name == file and err.line == line, str(err)
    assert what in err.problem and "control characters" in err.problem and "remove it" in err.problem, str(err)


def test_control_characters_elsewhere_are_kept(tmp_path):
    """Titles and artists may hold tabs and line breaks; spaces around ids are still removed."""
    ds = run(tmp_path, "user,item\n u1 ,a\nu1,a\n", 'item,title,artist\na,"two\nlines","x\ty"\n')
    assert list(ds.user_ids) == ["u1"] and ds.interactions.data.tolist() == [2.0]
    assert ds.items["title"][0] == "two\nlines" and ds.items["artist"][0] == "x\ty"


@pytest.mark.parametrize(
    "weight, stored",
    [
        ("1e-50", "stored as 0;"),
        ("1e-400", "stored as 0;"),
        ("1e-40", "stored as 1e-40"),
        ("0.00000000000000000000000000000000000000001", "stored as 1e-41"),
    ],
)
def test_weights_that_underflow_are_refused(tmp_path, weight, stored):
    err = fails(tmp_path, f"user,item,weight\nu,s1,1\nu,s2,{weight}\n")
    assert err.line == 3 and f"weight {weight!r} is not 0 but too small" in err.problem and stored in err.problem


def test_zero_spellings_and_the_smallest_normal_weight_are_kept(tmp_path):
    ds = run(tmp_path, "user,item,weight\nu,s1,0e5\nu,s2,-0\nu,s3,0.000\nv,s1,1.2e-38\n")
    assert list(ds.user_ids) == ["v"] and ds.interactions.data[0] == np.float32(1.2e-38)
    err = fails(tmp_path, "user,item,weight\nu,s1,-1e-50\n")
    assert err.line == 2 and "negative" in err.problem


@pytest.mark.parametrize(
    "value", ["1_000", "\u0663", "\uff15", "0x10", "1,5", "1e", ".", "+", "1\n", "\u00a01", "1e5_0"]
)
def test_weights_outside_the_number_syntax_are_refused(tmp_path, value):
    err = fails(tmp_path, f'user,item,weight\nu,s1,1\nu,s2,"{value}"\n')
    assert err.line == 3 and err.problem.startswith(f"weight {value!r} is not a number (write ASCII digits")


@pytest.mark.parametrize("value", ["1_000", "\u0663", "\uff15", "1e3", "1.0", "0x10", "\u00a05"])
def test_timestamps_outside_the_number_syntax_are_refused(tmp_path, value):
    err = fails(tmp_path, f'user,item,timestamp\nu,s1,1\nu,s2,"{value}"\n')
    assert err.line == 3 and err.problem.startswith(f"timestamp {value!r} is not an integer (unix seconds)")


def test_the_number_syntax_accepts_what_it_documents(tmp_path):
    weights = [" 2 ", "+.5", "1.", "3E2", "1e-3", "\t4\t", "+0.25e+1", "7"]
    text = "user,item,weight,timestamp\n" + "".join(f'u{k},s1,"{w}", +{k} \n' for k, w in enumerate(weights))
    ds = run(tmp_path, text)
    assert ds.interactions.toarray()[:, 0].tolist() == pytest.approx([2, 0.5, 1, 300, 1e-3, 4, 2.5, 7])
    assert ds.timestamps.tolist() == list(range(len(weights)))


def test_the_first_bad_number_in_file_order_wins_between_weight_and_timestamp(tmp_path):
    err = fails(tmp_path, "user,item,weight,timestamp\nu,s1,1,1\nu,s2,1,x\nu,s3,y,1\n")
    assert err.line == 3 and err.problem.startswith("timestamp 'x'")
    err = fails(tmp_path, "user,item,weight,timestamp\nu,s1,1,1\nu,s2,1_0,1\nu,s3,1,x\n")
    assert err.line == 3 and err.problem.startswith("weight '1_0'")


def test_messages_quote_at_most_ten_names_and_200_characters(tmp_path):
    wide = ",".join(["user", "item", *(f"col{k}" for k in range(100_000))]) + "\n"
    err = fails(tmp_path, wide + "u,s1\n")
    assert err.line == 1 and len(str(err)) < 400, len(str(err))  # was 1.58 MB
    assert "unknown column(s) col0, col1," in err.problem and "col9, … and 99,990 more" in err.problem
    assert "found columns: user, item, col0" in err.problem and "… and 99,992 more" in err.problem
    cols = ",".join(["user", "item", *(f"weight{k}" for k in range(50_000))])
    err = fails(tmp_path, "user,item\nu,s1\n" + cols + "\n")  # a row 50,002 fields wide: the header is short
    assert err.line == 3 and len(str(err)) < 300
    long = "x" * 100_000
    for text, word in [
        (f"user,item,weight\nu,s1,{'9' * 100_000}\n", "too large"),
        (f"user,item,weight\nu,s1,{long}\n", "not a number"),
        (f"user,item,timestamp\nu,s1,{long}\n", "not an integer"),
        (f"user;item;{long}\nu;s1;1\n", "one column"),
        (f"user,item,{long},{'y' * 100_000}\n", "unknown column"),
        (f"user,item,{long},{long.upper()}\n", "appears twice"),
        (f"user,item\nu,{long}\n", "not defined"),
        (f"user,item\nu\0{long},s1\n", "control characters"),
    ]:
        err = fails(tmp_path, text)
        msg = str(err)
        assert word in err.problem and len(msg) < 500 and ("more characters)" in msg or "…" in msg), msg[:600]
    err = fails(tmp_path, "user,item\nu,s1\n", f"item,title\ns1,a\n{'y' * 500},b\n{'y' * 500},c\n")
    assert "defined twice" in err.problem and "(300 more characters)" in err.problem and len(str(err)) < 400
    assert len(str(ci.CsvImportError("f.csv", 1, "z" * 10**6))) < 2100  # the backstop
