"""The command line, run in-process on a small synthetic data set."""

import pandas as pd
import pytest

import recsys.cli as cli
from recsys.data.synthetic import generate_synthetic
from recsys.registry import Registry


@pytest.fixture(scope="module")
def small():
    return generate_synthetic(n_users=300, n_items=250, n_artists=50, n_tags=6, seed=4)


@pytest.fixture
def env(tmp_path, monkeypatch, small):
    monkeypatch.setattr(cli, "_load_dataset", lambda name, data_dir: small)
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(tmp_path / "store"))
    return tmp_path


def run(*argv: str) -> int:
    return cli.main(list(argv))


def test_help_on_every_command(capsys):
    parser = cli.build_parser()
    commands = [
        [],
        ["data"],
        ["data", "list"],
        ["data", "describe"],
        ["data", "fetch"],
        ["data", "import"],
        ["train"],
        ["evaluate"],
        ["recommend"],
        ["registry"],
        ["registry", "list"],
        ["registry", "show"],
        ["registry", "verify"],
        ["registry", "remove"],
        ["registry", "build-defaults"],
    ]
    for cmd in commands:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([*cmd, "--help"])
        assert e.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_train_then_registry_then_recommend(env, small, capsys):
    assert run("train", "ease", "--set", "l2=100", "--model-id", "ease-small") == 0
    out = capsys.readouterr().out
    assert "registered ease-small" in out and "ndcg@100" in out
    assert Registry().load("ease-small").model.l2 == 100

    assert run("registry", "list") == 0
    assert "ease-small" in capsys.readouterr().out
    assert run("registry", "show", "ease-small") == 0
    assert '"family": "ease"' in capsys.readouterr().out
    assert run("registry", "verify") == 0

    user = str(small.user_ids[0])
    csv = env / "recs.csv"
    assert run("recommend", "--model", "ease-small", "--user", user, "--top", "7", "--csv", str(csv)) == 0
    df = pd.read_csv(csv)
    assert len(df) == 7 and df["rank"].tolist() == list(range(1, 8))
    assert df["score"].is_monotonic_decreasing
    history = set(small.item_ids[small.interactions[0].indices])
    assert not history & set(df["item_id"])

    picks = ",".join(small.item_ids[:3])
    assert run("recommend", "--model", "ease-small", "--items", picks, "--top", "5") == 0
    assert "title" in capsys.readouterr().out


def test_recommend_without_model_uses_latest_autoencoder_template(env, small, capsys):
    assert run("recommend", "--user", str(small.user_ids[0])) == 2
    assert "no models in" in capsys.readouterr().err
    assert run("train", "ease", "--model-id", "older") == 0
    assert run("train", "--template", "autoencoder", "--set", "epochs=2", "--set", "hidden_dim1=16") == 0
    capsys.readouterr()
    user = str(small.user_ids[0])
    csv = env / "ae.csv"
    assert run("recommend", "--user", user, "--top", "10", "--csv", str(csv)) == 0
    assert "using model autoencoder-synthetic" in capsys.readouterr().err
    df = pd.read_csv(csv)
    assert len(df) == 10 and df["score"].is_monotonic_decreasing
    assert not set(small.item_ids[small.interactions[0].indices]) & set(df["item_id"])


@pytest.mark.parametrize("template", ["flow", "mlp_flow"])
def test_flow_templates_train(env, template, capsys):
    assert run("train", "--template", template, "--set", "epochs=1", "--set", "flow_epochs=1") == 0
    assert f"registered {template}-synthetic" in capsys.readouterr().out


def test_user_errors_are_one_line_not_tracebacks(env, capsys):
    assert run("registry", "show", "missing") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert run("train", "ease", "--set", "lambda=3") == 2
    assert "has no parameter 'lambda'" in capsys.readouterr().err
    assert run("train", "ease", "--model-id", "e") == 0
    assert run("recommend", "--model", "e", "--items", "nope") == 2
    assert "unknown item ids" in capsys.readouterr().err
    assert run("recommend", "--model", "e", "--user", "nobody") == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_tampered_model_fails_verify(env, capsys):
    assert run("train", "popularity", "--model-id", "p") == 0
    weights = Registry().root / "p" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-3])
    with pytest.raises(SystemExit) as e:
        run("registry", "verify")
    assert e.value.code == 1
    assert "truncated" in capsys.readouterr().out


def test_evaluate_prints_mean_std_table(env, tmp_path, capsys):
    out = tmp_path / "res.md"
    assert (
        run("evaluate", "--models", "popularity,ease", "--seeds", "0,1", "--heldout-users", "30", "--out", str(out))
        == 0
    )
    text = capsys.readouterr().out
    assert "| popularity |" in text and "| ease |" in text and "±" in text
    written = out.read_text()
    assert "machine:" in written and "command:" in written and "| ease |" in written


def test_train_from_template(env, capsys):
    assert run("train", "--template", "popularity", "--model-id", "pop-t") == 0
    assert Registry().read_manifest("pop-t")["info"]["config"]["family"] == "popularity"


def test_train_on_another_data_set_names_the_model_after_it(env, small, capsys, monkeypatch):
    import recsys.cli as cli_module

    monkeypatch.setattr(cli_module, "_load_dataset", lambda name, data_dir: small)
    assert run("train", "--template", "ease", "--dataset", "lastfm-2k") == 0
    assert "registered ease-lastfm-2k" in capsys.readouterr().out


def test_train_ddp_flag(env, small, capsys, monkeypatch):
    import recsys.cli as cli_module
    import recsys.training as training

    monkeypatch.setattr(cli_module, "_load_dataset", lambda name, data_dir: small)
    assert run("train", "ease", "--ddp", "2") == 2
    assert "--ddp trains multvae only" in capsys.readouterr().err
    assert run("train", "--template", "multvae", "--ddp", "two") == 2
    assert "--ddp takes a process count or 'env'" in capsys.readouterr().err
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    assert run("train", "--template", "multvae", "--ddp", "env") == 2
    assert "launch with `torchrun" in capsys.readouterr().err
    calls = []
    monkeypatch.setattr(
        training, "train_distributed", lambda cfg, n, **kw: calls.append((cfg["family"], n)) or ("m", {"ndcg@100": 0.5})
    )
    assert run("train", "--template", "multvae", "--ddp", "3") == 0
    assert calls == [("multvae", 3)] and "ndcg@100" in capsys.readouterr().out
