"""Uploads from the "Your data" page: size limits, where files go, the import's own messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.data import CsvImportError, CsvSourceError, export_csv, imported_datasets, load_dataset
from recsys.data.synthetic import generate_synthetic
from recsys.uploads import UploadedCsv, UploadError, check_upload, import_upload, safe_file_name, store_upload


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[UploadedCsv, UploadedCsv]:
    small = generate_synthetic(n_users=60, n_items=120, n_artists=20, n_tags=5)
    inter, items = export_csv(small, tmp_path_factory.mktemp("export"))
    return UploadedCsv("plays.csv", inter.read_bytes()), UploadedCsv("songs.csv", items.read_bytes())


def test_a_file_over_the_limit_is_refused_with_its_name_and_the_way_around(pair) -> None:
    big = UploadedCsv("huge plays.csv", b"x" * (2 * 1024 * 1024 + 1))
    with pytest.raises(UploadError, match=r"huge plays.csv \(the interactions file\) is 2.0 MB.*up to 2 MB") as e:
        check_upload(big, "interactions", limit_mb=2)
    assert "python -m recsys data import" in str(e.value) and "RECSYS_MAX_UPLOAD_MB" in str(e.value)
    with pytest.raises(UploadError, match="empty"):
        check_upload(UploadedCsv("songs.csv", b""), "items", limit_mb=2)
    check_upload(pair[0], "interactions", limit_mb=2)  # a normal file passes


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.uploads import DEFAULT_MAX_UPLOAD_MB, max_upload_mb

    assert max_upload_mb() == DEFAULT_MAX_UPLOAD_MB
    monkeypatch.setenv("RECSYS_MAX_UPLOAD_MB", "7")
    assert max_upload_mb() == 7
    monkeypatch.setenv("RECSYS_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="RECSYS_MAX_UPLOAD_MB"):
        max_upload_mb()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\plays.csv", "plays.csv"),
        ("my plays (2).csv", "my plays (2).csv"),
        ("", "items.csv"),
        ("..", "items.csv"),
        ("ä/ö.csv", "_.csv"),
    ],
)
def test_file_names_become_plain_names_inside_the_upload_folder(given: str, kept: str) -> None:
    assert safe_file_name(given, "items") == kept


def test_an_upload_is_stored_once_per_content_and_a_new_one_keeps_the_old(pair, tmp_path: Path) -> None:
    plays, songs = pair
    first = store_upload(plays, songs, name="mine", data_dir=tmp_path)
    again = store_upload(plays, songs, name="mine", data_dir=tmp_path)
    assert first == again and first[0].name == "plays.csv" and first[1].name == "songs.csv"
    assert first[0].read_bytes() == plays.data
    changed = UploadedCsv("plays.csv", plays.data + b"\n")  # one byte more: another content folder
    second = store_upload(changed, songs, name="mine", data_dir=tmp_path)
    assert second[0].parent.parent != first[0].parent.parent
    assert first[0].read_bytes() == plays.data  # models trained on the first still find their files
    assert not [p for p in (tmp_path / "uploads" / "mine").iterdir() if p.name.startswith(".upload-")]


def test_import_records_the_data_set_so_every_command_finds_it(pair, tmp_path: Path) -> None:
    ds = import_upload(*pair, name="mine", item_noun="track", data_dir=tmp_path)
    assert ds.name == "mine" and ds.item_noun == "track" and ds.n_users == 60
    record = imported_datasets(tmp_path)["mine"]
    assert record["interactions"]["path"].endswith("/interactions/plays.csv")
    again = load_dataset("mine", data_dir=tmp_path)
    assert again.fingerprint == ds.fingerprint and again.item_noun == "track"


def test_a_broken_file_names_the_uploaded_file_and_line_and_records_nothing(pair, tmp_path: Path) -> None:
    plays, songs = pair
    lines = plays.data.decode().splitlines(keepends=True)
    lines[3] = lines[3].replace(",", ",,", 1)  # one field too many on line 4
    broken = UploadedCsv("my plays.csv", "".join(lines).encode())
    with pytest.raises(CsvImportError) as e:
        import_upload(broken, songs, name="mine", data_dir=tmp_path)
    assert Path(e.value.file).name == "my plays.csv" and e.value.line == 4
    assert "mine" not in imported_datasets(tmp_path)


def test_names_and_nouns_are_checked_before_anything_is_written(pair, tmp_path: Path) -> None:
    with pytest.raises(CsvSourceError, match="built-in"):
        import_upload(*pair, name="ml-1m", data_dir=tmp_path)
    with pytest.raises(CsvSourceError, match="data set name"):
        import_upload(*pair, name="../up", data_dir=tmp_path)
    with pytest.raises(CsvSourceError, match="item noun"):
        import_upload(*pair, name="mine", item_noun="<b>", data_dir=tmp_path)
    assert not (tmp_path / "uploads").exists()
