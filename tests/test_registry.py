"""Registry round trip, atomic writes and refusal of tampered, truncated or foreign files."""

import json
import os

import numpy as np
import pytest

from recsys.data.synthetic import generate_synthetic
from recsys.models import EASE, Popularity
from recsys.registry import FORMAT_VERSION, SEAL, Registry, RegistryError, check_model_id, manifest_seal


@pytest.fixture(scope="module")
def ds():
    return generate_synthetic(n_users=200, n_items=150, n_artists=40, n_tags=5, seed=2)


@pytest.fixture
def reg(tmp_path, ds):
    r = Registry(tmp_path / "store")
    r.save(
        EASE(l2=50.0).fit(ds),
        dataset=ds,
        model_id="ease-x",
        metrics={"ndcg@100": 0.5},
        extras={"centroids": np.ones((3, 4), np.float32)},
    )
    return r


def test_round_trip_identical_scores(reg, ds):
    loaded = reg.load("ease-x")
    original = EASE(l2=50.0).fit(ds)
    assert np.array_equal(loaded.model.score(ds.interactions[:20]), original.score(ds.interactions[:20]))
    assert loaded.manifest["metrics"]["ndcg@100"] == 0.5
    assert loaded.manifest["dataset"]["fingerprint"] == ds.fingerprint
    assert list(loaded.items["item_id"]) == list(ds.items["item_id"])
    assert loaded.items["tags"][0] == ds.items["tags"][0]
    assert loaded.extras["centroids"].shape == (3, 4)
    assert reg.verify("ease-x") == []
    assert [e.model_id for e in reg.list()] == ["ease-x"]


def test_refuses_flipped_byte(reg):
    path = reg.root / "ease-x" / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match="sha256"):
        reg.load("ease-x")


def test_refuses_truncated_file(reg):
    path = reg.root / "ease-x" / "items.json"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(RegistryError, match="truncated"):
        reg.load("ease-x")


def test_refuses_swapped_manifest(reg, ds):
    reg.save(Popularity().fit(ds), dataset=ds, model_id="pop-x")
    (reg.root / "ease-x" / "manifest.json").write_text((reg.root / "pop-x" / "manifest.json").read_text())
    with pytest.raises(RegistryError, match="swapped"):
        reg.load("ease-x")


def test_refuses_other_format_version(reg):
    path = reg.root / "ease-x" / "manifest.json"
    m = json.loads(path.read_text())
    m["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(m))
    with pytest.raises(RegistryError, match="format"):
        reg.load("ease-x")
    entry = reg.list()[0]
    assert not entry.ok and "format" in entry.problem


def test_refuses_garbage_manifest(reg):
    (reg.root / "ease-x" / "manifest.json").write_text("{not json")
    with pytest.raises(RegistryError, match="not valid JSON"):
        reg.load("ease-x")


@pytest.mark.parametrize("bad", ["../evil", "/abs", "a/b", "..", "", ".hidden", "x" * 101])
def test_bad_model_ids(bad):
    with pytest.raises(RegistryError, match="invalid model id"):
        check_model_id(bad)


def test_no_overwrite_unless_asked(reg, ds):
    with pytest.raises(RegistryError, match="already exists"):
        reg.save(Popularity().fit(ds), dataset=ds, model_id="ease-x")
    reg.save(Popularity().fit(ds), dataset=ds, model_id="ease-x", overwrite=True)
    assert reg.load("ease-x").manifest["family"] == "popularity"
    assert not [p for p in os.listdir(reg.root) if p.startswith(".")]


def test_interrupted_write_leaves_no_model(tmp_path, ds, monkeypatch):
    reg = Registry(tmp_path)
    import recsys.registry as registry_module

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(registry_module, "_sha256", boom)
    with pytest.raises(OSError):
        reg.save(Popularity().fit(ds), dataset=ds, model_id="pop")
    assert reg.list() == []
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_unknown_model_lists_known(reg):
    with pytest.raises(RegistryError, match="known: ease-x"):
        reg.load("nope")


def test_remove_and_clean(reg, ds):
    (reg.root / ".tmp-leftover-123").mkdir()
    assert reg.clean() == [".tmp-leftover-123"]
    reg.remove("ease-x")
    assert reg.list() == []


def test_unfitted_model_not_saved(tmp_path, ds):
    with pytest.raises(RegistryError, match="fitted"):
        Registry(tmp_path).save(EASE(), dataset=ds)


def _forge(reg, model_id, params):
    """Edit a model's params and recompute the (unkeyed) seal, as anyone who can write the registry could."""
    path = reg.root / model_id / "manifest.json"
    m = json.loads(path.read_text())
    m["params"] = params
    m[SEAL] = manifest_seal(m)
    path.write_text(json.dumps(m))


def test_the_unkeyed_seal_catches_accidents_not_forgery(reg):
    """Documented limit: a re-sealed edit passes the sha256 seal (only the weights' binding is left)."""
    _forge(reg, "ease-x", {"l2": 99.0})
    problems = reg.verify("ease-x")
    assert problems and all("seal" not in p for p in problems), problems  # the seal itself says ok


def test_a_keyed_seal_refuses_a_resealed_forgery(tmp_path, ds, monkeypatch):
    monkeypatch.setenv("RECSYS_SEAL_KEY", "secret kept outside the registry")
    reg = Registry(tmp_path / "store")
    reg.save(Popularity().fit(ds), dataset=ds, model_id="pop", metrics={"ndcg@100": 0.1})
    assert reg.verify("pop") == []
    assert reg.load("pop").manifest["manifest_hmac_sha256"]
    path = reg.root / "pop" / "manifest.json"
    original = path.read_text()
    m = json.loads(original)
    m["metrics"] = {"ndcg@100": 0.99}  # a forgery: metrics edited, unkeyed seal recomputed
    m[SEAL] = manifest_seal(m)
    path.write_text(json.dumps(m))
    with pytest.raises(RegistryError, match="keyed seal"):
        reg.load("pop")
    monkeypatch.setenv("RECSYS_SEAL_KEY", "another key")
    path.write_text(original)
    assert any("keyed seal" in p for p in reg.verify("pop"))
    monkeypatch.delenv("RECSYS_SEAL_KEY")
    assert reg.verify("pop") == []  # without the key, the model reads as before


def test_with_a_seal_key_set_models_saved_without_it_are_refused(reg, monkeypatch):
    monkeypatch.setenv("RECSYS_SEAL_KEY", "k")
    problems = reg.verify("ease-x")
    assert len(problems) == 1 and "no keyed seal" in problems[0], problems
