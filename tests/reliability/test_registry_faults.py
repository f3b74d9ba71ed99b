"""The registry under faults: SIGKILLed saves, readers during writes, tampering, paths that escape.

A worker subprocess (``registry_worker.py``) fits two versions of a small EASE model; each trial
forks a child of it that saves the versions alternately with ``overwrite=True`` and kills it with
SIGKILL after a random delay. Afterwards the registry must list only whole models, load the model
as exactly one version (weights, manifest and extras from the same save), never lose a model that
existed before the trial, and ``clean()`` must remove every leftover.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data.fetch import UnsafeArchiveError, _extract
from recsys.data.synthetic import generate_synthetic
from recsys.models import EASE, Popularity
from recsys.registry import FORMAT_VERSION, MANIFEST, Registry, RegistryError, check_model_id

from .conftest import count, log_figures
from .registry_worker import weights_digest

WORKER = Path(__file__).with_name("registry_worker.py")
MODEL = "ease-live"


class Worker:
    """The warm writer process (see registry_worker.py)."""

    def __init__(self, root: Path, exchange: bool = True):
        self.root = root
        self.exchange = exchange
        env = {**os.environ, "RECSYS_TEST_NO_EXCHANGE": "0" if exchange else "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(root), MODEL],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        hello = self._reply()
        self.digests: dict[str, str] = hello["digests"]
        self.save_s: float = hello["save_s"]

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"registry worker exited with {self.proc.wait()}")
        return json.loads(line)

    def fork(self, first: str) -> int:
        self.proc.stdin.write(f"fork {first}\n")
        return self._reply()["pid"]

    def save(self, version: str) -> None:
        self.proc.stdin.write(f"save {version}\n")
        assert self._reply() == {"saved": version}

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["exchange", "two-renames"])
def worker(request, tmp_path: Path):
    """The writer, saving with the atomic exchange (Linux) and with the two-rename fallback (elsewhere)."""
    w = Worker(tmp_path / "store", exchange=request.param == "exchange")
    yield w
    w.close()


def kill_and_wait(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # reaped at once by the worker (SIGCHLD ignored)
        except ProcessLookupError:
            return
        time.sleep(0.001)
    raise AssertionError(f"child {pid} did not die")


def check_whole(reg: Registry, digests: dict[str, str]) -> str:
    """Load the model and check it is exactly one saved version; returns that version."""
    loaded = reg.load(MODEL)
    version = loaded.manifest["info"]["version"]
    assert weights_digest(loaded.model.state_dict()) == digests[version], "weights of another save"
    assert loaded.manifest["params"]["l2"] == {"A": 50.0, "B": 500.0}[version]
    assert reg.verify(MODEL) == []
    return version


@pytest.mark.slow
def test_sigkill_during_save_never_leaves_a_half_written_model(worker: Worker) -> None:
    trials = count("RECSYS_FAULT_TRIALS")
    reg = Registry(worker.root)
    rng = random.Random(20240611)
    window = max(worker.save_s, 0.005) * 3  # kills land anywhere in the first ~3 saves
    outcomes = {"absent": 0, "A": 0, "B": 0}
    leftovers = delays = 0.0
    t0 = time.perf_counter()
    for trial in range(trials):
        existed = MODEL in reg.ids()
        if trial % 5 == 0 and existed:  # every fifth trial kills the first save of a new model
            reg.remove(MODEL)
            existed = False
        delay = rng.uniform(0, window)
        delays += delay
        pid = worker.fork(rng.choice("AB"))
        time.sleep(delay)
        kill_and_wait(pid)
        if not worker.exchange:  # a kill between the two renames leaves the old model in .old-*: clean() restores it
            leftovers += len(reg.clean())
        entries = reg.list()
        assert all(e.ok for e in entries), [e.problem for e in entries]
        assert reg.ids() in ([], [MODEL]), reg.ids()
        if existed:
            assert reg.ids() == [MODEL], f"trial {trial}: the model that existed before the kill is gone"
        outcomes[check_whole(reg, worker.digests) if reg.ids() else "absent"] += 1
        left = reg.clean()
        leftovers += len(left)
        assert not [p for p in os.listdir(reg.root) if p.startswith(".")]
    worker.save("A")  # the registry still takes a save after all that
    assert check_whole(reg, worker.digests) == "A"
    log_figures(
        "registry_sigkill",
        mode="exchange" if worker.exchange else "two-renames",
        trials=trials,
        outcomes=outcomes,
        leftover_dirs_cleaned=int(leftovers),
        save_s=round(worker.save_s, 4),
        mean_kill_delay_s=round(delays / trials, 4),
        wall_s=round(time.perf_counter() - t0, 1),
    )


@pytest.mark.slow
def test_readers_keep_working_while_a_model_is_overwritten(worker: Worker) -> None:
    """Registry.load and the app's load path (statuses, file signatures) during back-to-back overwrites."""
    from recsys.app_support import files_signature, model_statuses

    seconds = count("RECSYS_READ_SECONDS")
    reg = Registry(worker.root)
    worker.save("A")
    pid = worker.fork("B")
    reads, failures, seen = 0, [], {"A": 0, "B": 0}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                seen[check_whole(reg, worker.digests)] += 1
                files_signature(reg, MODEL)
                statuses = model_statuses(reg)
                assert [s.model_id for s in statuses] == [MODEL], [s.model_id for s in statuses]
                assert statuses[0].ok, statuses[0].problems
            except (AssertionError, RegistryError, OSError) as e:
                failures.append(f"{type(e).__name__}: {e}"[:300])
            reads += 1
    finally:
        kill_and_wait(pid)
    log_figures(
        "registry_readers",
        mode="exchange" if worker.exchange else "two-renames",
        seconds=seconds,
        reads=reads,
        failures=len(failures),
        versions_seen=seen,
        first_failures=failures[:3],
    )
    assert not failures, f"{len(failures)} of {reads} reads failed, e.g. {failures[:3]}"
    assert seen["A"] + seen["B"] == reads


# ---- tampering -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ds():
    return generate_synthetic(n_users=120, n_items=90, n_artists=20, n_tags=5, seed=5)


@pytest.fixture
def reg(tmp_path: Path, ds) -> Registry:
    r = Registry(tmp_path / "store")
    extras = {"steering.centroids": np.ones((3, 4), np.float32)}
    r.save(EASE(l2=20.0).fit(ds), dataset=ds, model_id="m", extras=extras, info={"note": "original"})
    r.save(Popularity().fit(ds), dataset=ds, model_id="p")
    return r


def refused(reg: Registry, model_id: str, *words: str) -> str:
    with pytest.raises(RegistryError) as e:
        reg.load(model_id)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    assert reg.verify(model_id), "verify() must report what load() refuses"
    return msg


@pytest.mark.parametrize("name", ["weights.safetensors", "items.json", "extras.safetensors", MANIFEST])
@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_a_flipped_byte_anywhere_is_refused(reg: Registry, name: str, where: float) -> None:
    path = reg.root / "m" / name
    data = bytearray(path.read_bytes())
    pos = min(int(len(data) * where), len(data) - 1)
    if name == MANIFEST:  # keep the JSON readable: change one digit of the created time's seconds
        text = data.decode()
        created = text.index('"created"')
        pos = text.index(":", text.index("T", created)) + 4
        data[pos] = ord("0") if data[pos] != ord("0") else ord("1")
    else:
        data[pos] ^= 0x01
    path.write_bytes(bytes(data))
    refused(reg, "m", "refusing to load", name if name != MANIFEST else "manifest")


@pytest.mark.parametrize("name", ["weights.safetensors", "items.json", "extras.safetensors", MANIFEST])
def test_a_truncated_file_is_refused(reg: Registry, name: str) -> None:
    path = reg.root / "m" / name
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 2, 1)])
    with pytest.raises(RegistryError) as e:
        reg.load("m")
    assert name in str(e.value) or "manifest" in str(e.value)


def test_another_models_manifest_is_refused(reg: Registry) -> None:
    (reg.root / "m" / MANIFEST).write_bytes((reg.root / "p" / MANIFEST).read_bytes())
    refused(reg, "m", "swapped")


def test_a_manifest_of_the_same_model_id_from_another_registry_is_refused(reg: Registry, ds, tmp_path) -> None:
    other = Registry(tmp_path / "other-machine")
    other.save(EASE(l2=20.0).fit(ds), dataset=ds, model_id="m", info={"note": "other"})
    shutil.copy(other.root / "m" / MANIFEST, reg.root / "m" / MANIFEST)
    refused(reg, "m", "manifest", "does not belong")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("params", {"l2": 99.0}),
        ("family", "popularity"),
        ("metrics", {"ndcg@100": 0.99}),
        ("info", {"note": "edited"}),
        ("dataset", {"name": "x", "fingerprint": "0" * 64, "n_users": 1, "n_items": 90, "item_noun": "song"}),
    ],
)
def test_an_edited_manifest_is_refused(reg: Registry, key: str, value) -> None:
    path = reg.root / "m" / MANIFEST
    m = json.loads(path.read_text())
    m[key] = value
    path.write_text(json.dumps(m, indent=2))
    refused(reg, "m", "manifest", "modified")


def test_a_manifest_with_edited_file_checksums_is_refused(reg: Registry) -> None:
    """Replace the weights with another model's and patch the checksums in the manifest to match."""
    mdir, pdir = reg.root / "m", reg.root / "p"
    m = json.loads((mdir / MANIFEST).read_text())
    p = json.loads((pdir / MANIFEST).read_text())
    shutil.copy(pdir / "weights.safetensors", mdir / "weights.safetensors")
    m["files"]["weights.safetensors"] = p["files"]["weights.safetensors"]
    m["family"], m["params"] = p["family"], p["params"]
    (mdir / MANIFEST).write_text(json.dumps(m, indent=2))
    refused(reg, "m", "manifest")


def test_a_downgraded_manifest_is_refused(reg: Registry) -> None:
    """A sealed manifest rewritten as the older, unsealed format is still caught (the weights know)."""
    path = reg.root / "m" / MANIFEST
    m = json.loads(path.read_text())
    m["format_version"] = 1
    m.pop("manifest_sha256", None)
    m["params"] = {"l2": 99.0}
    path.write_text(json.dumps(m, indent=2))
    refused(reg, "m", "manifest")


def test_older_registries_still_load_and_their_errors_stay_clear(reg: Registry, ds, tmp_path) -> None:
    """A format-1 model (no seal, no binding in the weights), as written before this version."""
    from safetensors.numpy import save_file

    old = tmp_path / "old-store" / "m1"
    shutil.copytree(reg.root / "m", old)
    arrays = EASE(l2=20.0).fit(ds).state_dict()
    save_file(arrays, str(old / "weights.safetensors"))  # no metadata, as format 1 wrote it
    m = json.loads((old / MANIFEST).read_text())
    m["format_version"], m["model_id"] = 1, "m1"
    m.pop("manifest_sha256", None)
    import hashlib

    data = (old / "weights.safetensors").read_bytes()
    m["files"]["weights.safetensors"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (old / MANIFEST).write_text(json.dumps(m, indent=2))
    legacy = Registry(tmp_path / "old-store")
    assert legacy.verify("m1") == []
    assert legacy.load("m1").manifest["format_version"] == 1
    (old / "items.json").write_bytes((old / "items.json").read_bytes()[:50])
    msg = refused(legacy, "m1", "items.json", "truncated")
    assert "Traceback" not in msg
    m["format_version"] = FORMAT_VERSION + 1
    (old / MANIFEST).write_text(json.dumps(m))
    refused(legacy, "m1", "format", "retrain")


# ---- paths that escape the registry or the data folder ------------------------------------------------
_SEGMENT = st.text(alphabet="abc.-_/\\", min_size=0, max_size=6)
ESCAPING_IDS = st.one_of(
    st.builds(lambda a, b: f"{a}../{b}", _SEGMENT, _SEGMENT),
    st.builds(lambda a, b: f"{a}..{b}", _SEGMENT, _SEGMENT),
    st.builds(lambda a: f"/{a}", _SEGMENT),
    st.builds(lambda a: f"{a}/../../etc", _SEGMENT),
    st.just(".."),
    st.builds(lambda a: f"{a}\\..\\x", _SEGMENT),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model_id=ESCAPING_IDS)
def test_model_ids_with_dot_dot_or_absolute_paths_are_refused(tmp_path_factory, model_id: str) -> None:
    root = tmp_path_factory.getbasetemp() / "ids-store"
    reg = Registry(root)
    for call in (check_model_id, reg.load, reg.verify, reg.read_manifest, reg.remove):
        try:
            out = call(model_id)
        except RegistryError as e:
            assert "invalid model id" in str(e) or "no model" in str(e), str(e)
            continue
        assert call == reg.verify and out and "invalid model id" in out[0], (call, out)
    with pytest.raises(RegistryError, match="invalid model id"):
        check_model_id(model_id)


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for n in names:
            zf.writestr(zipfile.ZipInfo(n), "x\n")
    return path


EVIL_MEMBERS = st.one_of(
    st.builds(lambda a: f"../{a}", st.text(alphabet="abc/", min_size=1, max_size=8)),
    st.builds(lambda a: f"ml-100k/../../{a}", st.text(alphabet="abc", min_size=1, max_size=5)),
    st.builds(lambda a: f"/tmp/{a}", st.text(alphabet="abc", min_size=1, max_size=5)),
    st.builds(lambda a: f"C:/{a}", st.text(alphabet="abc", min_size=1, max_size=5)),
    st.builds(lambda a: f"..\\{a}", st.text(alphabet="abc", min_size=1, max_size=5)),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evil=EVIL_MEMBERS, position=st.integers(0, 3))
def test_archive_members_that_escape_are_refused_before_anything_is_written(tmp_path_factory, evil, position):
    base = Path(tmp_path_factory.mktemp("zip"))
    names = ["ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.user"]
    names.insert(min(position, len(names)), evil)
    archive = _zip(base / "a.zip", names)
    dest = base / "data"
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        _extract(archive, dest, "ml-100k", ("u.data",), "0" * 64)
    assert not dest.exists() or not any(dest.iterdir())
    assert sorted(p.name for p in base.iterdir()) == ["a.zip"]


def test_concurrent_saves_of_one_id_leave_one_whole_model(tmp_path: Path, ds) -> None:
    """Two threads overwrite the same model; the survivor is one of them, whole."""
    reg = Registry(tmp_path / "store")
    models = {"A": EASE(l2=10.0).fit(ds), "B": EASE(l2=1000.0).fit(ds)}
    errors: list[BaseException] = []

    def run(v: str) -> None:
        for _ in range(15):
            try:
                reg.save(models[v], dataset=ds, model_id="m", info={"version": v}, overwrite=True)
            except RegistryError as e:  # losing a race is allowed, with a clear message
                errors.append(e)
            except OSError as e:
                errors.append(e)

    threads = [threading.Thread(target=run, args=(v,)) for v in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = reg.load("m")
    v = loaded.manifest["info"]["version"]
    assert weights_digest(loaded.model.state_dict()) == weights_digest(models[v].state_dict())
    assert all(isinstance(e, RegistryError) for e in errors), errors


def test_a_crash_between_the_two_renames_of_the_fallback_is_repaired_by_clean(reg: Registry, ds, monkeypatch) -> None:
    """Where no atomic exchange exists, an overwrite is two renames; a crash between them loses nothing."""
    import recsys.registry as registry_module

    monkeypatch.setattr(registry_module, "_rename_exchange", lambda a, b: False)
    real_replace = os.replace

    def crash_after_first_rename(src, dst):
        real_replace(src, dst)
        if ".old-" in str(dst):
            raise KeyboardInterrupt("crash between the renames")

    monkeypatch.setattr(registry_module.os, "replace", crash_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        reg.save(Popularity().fit(ds), dataset=ds, model_id="m", overwrite=True)
    monkeypatch.setattr(registry_module.os, "replace", real_replace)
    assert not (reg.root / "m").exists()  # the old model sits in .old-*: still listed, with what to do
    assert reg.ids() == ["m", "p"]
    assert "overwrite was interrupted" in reg.list()[0].problem
    assert any(name.startswith(".old-m-") for name in reg.clean())
    assert reg.load("m").manifest["info"] == {"note": "original"}
    assert not [p for p in os.listdir(reg.root) if p.startswith(".")]


def test_saved_models_are_readable_by_whoever_may_read_the_registry(reg: Registry) -> None:
    """mkdtemp/mkstemp create 0700/0600; a registry shared with a group must stay readable (umask applies)."""
    mode = os.stat(reg.root / "m").st_mode & 0o777
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o777 & ~umask
    for f in (reg.root / "m").iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f.name
