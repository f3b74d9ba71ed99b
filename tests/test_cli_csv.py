"""Your own CSV files through the command line (issue 14): import, name, train, then every command
finds the data again from the model id; moved or changed files are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import recsys.cli as cli
from recsys.data import export_csv, generate_synthetic
from recsys.registry import Registry

INDEX = "csv_imports.json"  # data import's record of names, in the data directory


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=150, n_items=100, n_artists=20, n_tags=5, seed=1)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("recsys.steering.evaluation.write_figure", lambda fig, stem: [])  # no PNG export
    return tmp_path


def files(small, folder: Path, interactions: str = "interactions.csv") -> tuple[Path, Path]:
    inter, items = export_csv(small, folder)
    if inter.name != interactions:
        inter = inter.rename(folder / interactions)
    return inter, items


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def user_of(inter: Path) -> str:
    return inter.read_text().splitlines()[1].split(",")[0]


# ---- 1. ids from a sanitised name, checked before training -----------------------------------
def test_train_on_csv_names_the_model_after_the_files_stem(env, small, capsys):
    inter, items = files(small, env / "my data", "plays (2024).csv")
    assert run("train", "ease", "--dataset", f"csv:{inter},{items}") == 0
    assert "registered ease-csv-plays-2024" in capsys.readouterr().out
    assert Registry().read_manifest("ease-csv-plays-2024")["dataset"]["name"] == "csv-plays-2024"


def test_a_bad_model_id_is_refused_before_the_data_is_read(env, capsys, monkeypatch):
    monkeypatch.setattr("recsys.training.train_from_config", lambda *a, **k: pytest.fail("training started"))
    assert run("train", "ease", "--dataset", "csv:/nowhere/a.csv,/nowhere/b.csv", "--model-id", "a/b") == 2
    err = capsys.readouterr().err
    assert "invalid model id 'a/b'" in err and "--model-id" in err and "no such file" not in err


# ---- 2. the model finds its CSV data again; moved or changed files are named ------------------
def test_recommend_and_steer_eval_find_the_csv_data_from_the_model_id(env, small, capsys):
    inter, items = files(small, env / "d")
    assert run("train", "ease", "--dataset", f"csv:{inter},{items}", "--model-id", "m") == 0
    source = Registry().read_manifest("m")["info"]["source_dataset"]["csv"]
    assert source["interactions"]["path"] == str(inter.resolve()) and len(source["items"]["sha256"]) == 64
    user = user_of(inter)
    assert run("recommend", "--model", "m", "--user", user, "--top", "3") == 0
    assert user in capsys.readouterr().out
    out = env / "se"
    argv = ["steer-eval", "--model", "m", "--users", "10", "--modes", "postfilter", "--alphas-post", "0,2"]
    assert run(*argv, "--out", out) == 0
    assert (out / "steering_m.csv").is_file()

    moved = env / "moved"
    moved.mkdir()
    items.rename(moved / "items.csv")
    assert run("recommend", "--model", "m", "--user", user) == 2
    err = capsys.readouterr().err
    assert f"items file {items.resolve()} is gone" in err and "--dataset csv:" in err
    assert run("recommend", "--model", "m", "--user", user, "--dataset", f"csv:{inter},{moved / 'items.csv'}") == 0

    inter.write_text(inter.read_text().rsplit("\n", 2)[0] + "\n")  # the last row removed
    assert run(*argv, "--out", out) == 2
    err = capsys.readouterr().err
    assert f"interactions file {inter.resolve()} changed:" in err and "bytes then" in err and "--dataset csv:" in err


def test_same_size_edits_are_caught_by_the_hash(env, small, capsys):
    inter, items = files(small, env / "d")
    assert run("train", "popularity", "--dataset", f"csv:{inter},{items}", "--model-id", "p") == 0
    text = items.read_text()
    items.write_text(text.replace("1", "2", 1))
    assert run("recommend", "--model", "p", "--user", user_of(inter)) == 2
    assert "same size" in capsys.readouterr().err


# ---- 3. built-in names never come from file names ----------------------------------------------
def test_a_file_called_ml_1m_gets_its_own_name_and_the_default_protocol(env, small, capsys):
    inter, items = files(small, env / "d", "ml-1m.csv")
    assert run("train", "ease", "--dataset", f"csv:{inter},{items}") == 0  # was: 1200 held-out users ...
    manifest = Registry().read_manifest("ease-csv-ml-1m")
    assert manifest["dataset"]["name"] == "csv-ml-1m"
    assert manifest["info"]["split"]["val_users"] == small.n_users // 10  # not ml-1m's 600


def test_evaluate_on_a_file_called_ml_1m_uses_the_default_held_out_size(env, small, capsys):
    inter, items = files(small, env / "d", "ml-1m.csv")
    argv = ["evaluate", "--dataset", f"csv:{inter},{items}", "--models", "popularity", "--seeds", "0", "--no-search"]
    assert run(*argv) == 0  # was: "1200 held-out users leave no training users among" the 150
    assert "| popularity |" in capsys.readouterr().out


def test_built_in_and_malformed_names_are_refused(env, small, capsys):
    inter, items = files(small, env / "d")
    for bad, why in (("ml-1m", "built-in"), ("MovieLens-1M", "built-in"), ("a/b", "no '/'"), ("..x", "no '/'")):
        assert run("data", "import", inter, items, "--name", bad) == 2
        assert why in capsys.readouterr().err
    assert not (env / "data" / INDEX).exists()


# ---- 4. a directory where a file is expected ------------------------------------------------------
def test_a_directory_for_a_file_says_so(env, small, capsys):
    inter, items = files(small, env / "d")
    assert run("data", "import", inter, env / "d") == 2
    err = capsys.readouterr().err
    assert "is a directory, not a file" in err and f"pass {env / 'd' / 'items.csv'}" in err
    assert run("train", "ease", "--dataset", f"csv:{env / 'd'},{items}") == 2
    assert "is a directory, not a file: pass the interactions CSV file itself" in capsys.readouterr().err


# ---- 5. + 6. data import --name and --item-noun stick ----------------------------------------------
def test_import_records_name_and_noun_and_later_commands_use_them(env, small, capsys):
    inter, items = files(small, env / "d")
    assert run("data", "import", inter, items, "--name", "mine", "--item-noun", "movie") == 0
    out = capsys.readouterr().out
    assert "as 'mine' (movies)" in out and "--dataset mine" in out
    index = json.loads((env / "data" / INDEX).read_text())
    assert index["mine"]["item_noun"] == "movie" and index["mine"]["items"]["path"] == str(items.resolve())

    assert run("data", "describe", "mine") == 0
    assert "movie" in capsys.readouterr().out
    assert run("train", "ease", "--dataset", "mine") == 0
    assert "registered ease-mine" in capsys.readouterr().out
    manifest = Registry().read_manifest("ease-mine")
    assert manifest["dataset"]["name"] == "mine" and manifest["dataset"]["item_noun"] == "movie"
    assert manifest["info"]["source_dataset"]["csv"]["name"] == "mine"
    assert run("recommend", "--model", "ease-mine", "--user", user_of(inter), "--top", "2") == 0

    inter.write_text(inter.read_text() + f"{user_of(inter)},{small.item_ids[-1]},1.0,1\n")
    assert run("data", "describe", "mine") == 2
    err = capsys.readouterr().err
    assert "interactions file" in err and "changed" in err and "data import" in err and "--name mine" in err
    assert run("data", "import", "--interactions", inter, "--items", items, "--name", "mine") == 0
    assert "replacing the earlier import" in capsys.readouterr().out
    assert json.loads((env / "data" / INDEX).read_text())["mine"]["item_noun"] == "song"


def test_import_without_a_name_records_csv_stem(env, small, capsys):
    inter, items = files(small, env / "d", "ml-100k.csv")
    assert run("data", "import", inter, items) == 0
    assert set(json.loads((env / "data" / INDEX).read_text())) == {"csv-ml-100k"}


def test_a_crash_while_recording_leaves_the_index_as_it_was(env, small, capsys, monkeypatch):
    inter, items = files(small, env / "d")
    assert run("data", "import", inter, items, "--name", "one") == 0
    before = (env / "data" / INDEX).read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("recsys.io.os.replace", crash)
    with pytest.raises(OSError):
        run("data", "import", inter, items, "--name", "two")
    assert (env / "data" / INDEX).read_bytes() == before
    assert [p.name for p in (env / "data").iterdir() if p.name.endswith(".tmp")] == []


def test_bad_item_nouns_are_refused(env, small, capsys):
    inter, items = files(small, env / "d")
    assert run("data", "import", inter, items, "--item-noun", "  ") == 2
    assert "item noun" in capsys.readouterr().err


# ---- issue 15: a NUL in an id, a number outside the syntax: refused, nothing recorded --------------
@pytest.mark.parametrize(
    "interactions, items, where",
    [
        ("user,item\nu1,a\n", "item,title\na,A\na\0,B\n", "items.csv, line 3: the item id 'a\\x00' contains NUL"),
        ("user,item\nu1,a\nu1\0,a\n", "item,title\na,A\n", "plays.csv, line 3: the user id 'u1\\x00' contains NUL"),
        ("user,item,weight\nu1,a,1e-50\n", "item,title\na,A\n", "plays.csv, line 2: weight '1e-50' is not 0 but"),
        ("user,item,weight\nu1,a,1_000\n", "item,title\na,A\n", "plays.csv, line 2: weight '1_000' is not a number"),
    ],
)
def test_data_import_refuses_control_characters_and_odd_numbers(env, capsys, interactions, items, where):
    (env / "plays.csv").write_text(interactions, encoding="utf-8")
    (env / "items.csv").write_text(items, encoding="utf-8")
    assert run("data", "import", env / "plays.csv", env / "items.csv", "--name", "mine") == 2
    assert where in capsys.readouterr().err
    assert not (env / "data" / INDEX).exists()
