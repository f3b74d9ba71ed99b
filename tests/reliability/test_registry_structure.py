"""A registry whose *structure* is damaged: kinds of file, sizes, JSON nesting, field types, links.

Issue 15's rows, each as a test (a directory, FIFO, ``/dev/zero`` link or 6 GiB sparse file where a
file should be; JSON nested 100,000 levels in the manifest or a safetensors header; manifest fields
of the wrong type; ``.old-*`` links out of the registry and ``clean()``; ids with a trailing newline
or empty), then a property-based fuzzer over all of it: ``RECSYS_FUZZ_REGISTRIES`` damaged
registries (500 in CI), each with one to three damages to one model. Every registry call (list,
ids, verify, show, load, clean, what the pages call and the CLI) must finish within 5 s and raise
nothing but :class:`RegistryError`; the damaged model must be refused by ``verify`` and ``load``;
the other model must keep loading; nothing outside the registry may change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys import cli
from recsys.data.synthetic import generate_synthetic
from recsys.models import EASE, Popularity
from recsys.registry import MANIFEST, Registry, RegistryError, check_model_id

from .conftest import count, log_figures
from .registry_damage import DEEP, ITEMS, KINDS, REFILABLE, WEIGHTS, damage, preserve_outside, refile, reseal

CALL_LIMIT_S = 5.0


class Hang(BaseException):
    """Raised by SIGALRM in a call that ran past CALL_LIMIT_S (a BaseException: no ``except Exception`` eats it)."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    def on_alarm(signum, frame):
        raise Hang(f"{what} took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """Two small models: "m" (EASE with extras, the one damaged) and "p" (Popularity, never touched)."""
    ds = generate_synthetic(n_users=60, n_items=40, n_artists=10, n_tags=4, seed=3)
    root = tmp_path_factory.mktemp("pristine") / "store"
    reg = Registry(root)
    extras = {"steering.centroids": np.ones((3, 4), np.float32)}
    reg.save(EASE(l2=20.0).fit(ds), dataset=ds, model_id="m", extras=extras, metrics={"ndcg@100": 0.5})
    other = generate_synthetic(n_users=50, n_items=30, n_artists=8, n_tags=4, seed=4)  # other files than m's
    reg.save(Popularity().fit(other), dataset=other, model_id="p", metrics={"ndcg@100": 0.1})
    return root


@pytest.fixture
def fresh(pristine: Path, tmp_path: Path):
    """(registry, outside folder) for one test: a private copy of the pristine registry."""
    root = Path(shutil.copytree(pristine, tmp_path / "store", symlinks=True))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("not the registry's")
    return Registry(root), outside


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue() + err.getvalue()


def exercise(reg: Registry, damaged: str = "m", healthy: str = "p", cli_calls: bool = True) -> dict:
    """Every read a person can make, each within the time limit, only RegistryError allowed out.

    Returns what was seen: the damaged model's verify problems and load error, and the healthy one's.
    """
    from recsys.app_support import (
        comparison_table,
        datasets_loaded,
        files_signature,
        manifest_text_or_problem,
        model_statuses,
        registry_table,
    )

    seen: dict = {}

    def call(name, fn, *args):
        t0 = time.perf_counter()
        with time_limit(CALL_LIMIT_S, name):
            try:
                result = fn(*args)
            except RegistryError as e:
                result = e
        seen.setdefault("seconds", {})[name] = time.perf_counter() - t0
        return result

    seen["list"] = call("list", reg.list)
    call("ids", reg.ids)
    seen["verify"] = call("verify", reg.verify, damaged)
    call("show", reg.read_manifest, damaged)
    seen["load"] = call("load", reg.load, damaged)
    seen["healthy_verify"] = call("verify healthy", reg.verify, healthy)
    seen["healthy_load"] = call("load healthy", reg.load, healthy)
    statuses = call("model_statuses", model_statuses, reg)
    seen["statuses"] = statuses
    call("tables", lambda: (registry_table(statuses), datasets_loaded(statuses), comparison_table(statuses)))
    call("files_signature", files_signature, reg, damaged)
    call("manifest viewer", manifest_text_or_problem, reg, damaged)
    if cli_calls:
        r = str(reg.root)
        seen["cli"] = {
            "list": call("cli list", _cli, "registry", "list", "--registry", r),
            "verify": call("cli verify", _cli, "registry", "verify", "--registry", r),
            "show": call("cli show", _cli, "registry", "show", damaged, "--registry", r),
        }
    return seen


def assert_damaged_alone(seen: dict, what: str) -> None:
    """The damaged model refused with a clear reason, the healthy one untouched."""
    problems = [str(seen["verify"])] if isinstance(seen["verify"], RegistryError) else seen["verify"]
    assert problems, f"{what}: verify found nothing wrong"
    assert all("Traceback" not in p and len(p) < 2000 for p in problems), problems
    assert isinstance(seen["load"], RegistryError), f"{what}: load did not refuse it ({seen['load']!r})"
    assert seen["healthy_verify"] == [], f"{what}: the other model suffered: {seen['healthy_verify']}"
    assert not isinstance(seen["healthy_load"], RegistryError), f"{what}: {seen['healthy_load']}"
    by_id = {e.model_id: e for e in seen["list"]}
    assert by_id["p"].ok, by_id["p"].problem
    statuses = {s.model_id: s for s in seen["statuses"]}
    assert statuses["p"].ok, statuses["p"].problems
    if "m" in statuses:  # absent only when "m" is no longer a folder or a link (a plain file): no model
        assert not statuses["m"].ok, f"{what}: the pages would use the damaged model"
    for name, (rc, text) in seen.get("cli", {}).items():
        assert rc in (0, 1, 2) and "Traceback" not in text, (name, rc, text[-2000:])


# ---- issue 15's rows, one by one ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "name", "words"),
    [
        ("directory", MANIFEST, "is a directory"),
        ("deep-json", MANIFEST, "nested deeper"),
        ("deep-field", MANIFEST, "nested deeper"),
        ("deep-header", WEIGHTS, "nested deeper"),
        ("deep-json", ITEMS, "nested deeper"),
        ("huge-header", WEIGHTS, "header of"),
        ("fifo", WEIGHTS, "FIFO"),
        ("fifo", MANIFEST, "FIFO"),
        ("link-devzero", WEIGHTS, "outside the registry"),
        ("link-devzero", MANIFEST, "outside the registry"),
        ("link-outside", ITEMS, "outside the registry"),
        ("link-outside", ".", "outside the registry"),
        ("sparse-6GiB", WEIGHTS, "6,442,450,944 bytes"),
        ("sparse-6GiB", MANIFEST, "more than a manifest can have"),
    ],
)
def test_structural_damage_is_refused_quickly_with_one_clear_reason(fresh, kind, name, words) -> None:
    reg, outside = fresh
    rng = random.Random(0)
    if kind in ("deep-json", "deep-header"):  # the depth, not a random one
        rng = type("R", (), {"choice": staticmethod(lambda xs: DEEP if DEEP in xs else xs[0])})()
    what = damage(reg.root / "m", kind, name, outside=outside, other=reg.root / "p", rng=rng)
    if kind in ("deep-header", "huge-header") or (kind, name) == ("deep-json", ITEMS):
        refile(reg.root / "m", name)  # a forgery past the checksums: only the bounded parsers can tell
    seen = exercise(reg)
    assert_damaged_alone(seen, what)
    assert words in str(seen["load"]), str(seen["load"])
    assert max(seen["seconds"].values()) < CALL_LIMIT_S


@pytest.mark.parametrize(
    "edit",
    [
        "dataset-string",
        "metrics-list",
        "files-list",
        "file-entry-string",
        "format-text",
        "no-dataset",
        "training-log-junk",
    ],
)
def test_manifest_fields_of_the_wrong_type_mark_the_model_damaged(fresh, edit) -> None:
    from .registry_damage import SCHEMA_EDITS

    reg, _ = fresh
    path = reg.root / "m" / MANIFEST
    m = json.loads(path.read_text())
    SCHEMA_EDITS[edit](m)
    path.write_text(json.dumps(reseal(m)))  # re-sealed: only the schema check can tell
    entry = {e.model_id: e for e in reg.list()}["m"]
    assert not entry.ok and ("manifest.json" in entry.problem or "format" in entry.problem), entry
    assert "'str' object" not in entry.problem and "has no attribute" not in entry.problem
    assert_damaged_alone(exercise(reg), edit)


def test_the_manifest_viewer_draws_curves_only_from_well_formed_epochs() -> None:
    """The Models page shows the manifest of damaged models too (format 1 has no seal to stop it)."""
    from recsys.app_support import training_curves

    assert training_curves({"training_log": [1, "x", {"val_ndcg@100": 0.2}]}) is None
    assert training_curves({"training_log": {"a": 1}}) is None
    fig = training_curves({"training_log": [{"train_loss": 1.0, "val_ndcg@100": "x"}, 7, {"train_loss": 0.5}]})
    assert fig is not None and len(fig.data[0].y) == 2


def test_clean_unlinks_an_old_link_out_of_the_registry_and_never_moves_what_it_points_to(fresh) -> None:
    reg, outside = fresh
    victim = outside / "folder"
    (victim / "m2").mkdir(parents=True)
    (victim / "m2" / MANIFEST).write_text("{}")  # looks like a model left by an interrupted overwrite
    before = preserve_outside(outside)
    os.symlink(victim, reg.root / ".old-m2-abc")
    assert "m2" not in reg.ids()  # a link is never followed, not even for listing
    assert reg.clean() == [".old-m2-abc"]
    assert not os.path.lexists(reg.root / ".old-m2-abc")
    assert not os.path.lexists(reg.root / "m2")
    assert preserve_outside(outside) == before
    assert (victim / "m2" / MANIFEST).is_file()


def test_clean_does_not_restore_a_link_inside_an_old_folder(fresh) -> None:
    reg, outside = fresh
    shutil.copytree(reg.root / "m", outside / "m3")
    old = reg.root / ".old-m3-abc"
    old.mkdir()
    os.symlink(outside / "m3", old / "m3")
    before = preserve_outside(outside)
    assert reg.clean() == [".old-m3-abc"]
    assert not os.path.lexists(reg.root / "m3") and preserve_outside(outside) == before


@pytest.mark.parametrize("bad", ["x\n", "m\n", "m\r", "m\x00", " m", "m ", "m\t"])
def test_ids_must_match_in_full(fresh, bad) -> None:
    reg, _ = fresh
    with pytest.raises(RegistryError, match="invalid model id"):
        check_model_id(bad)
    with pytest.raises(RegistryError, match="invalid model id"):
        reg.load(bad)


def test_empty_ids_are_refused_everywhere_with_a_clear_message(fresh) -> None:
    reg, _ = fresh
    for call in (check_model_id, reg.load, reg.verify, reg.read_manifest, reg.remove):
        with pytest.raises(RegistryError, match="the id is empty"):
            call("")
    r = str(reg.root)
    for argv in (["registry", "verify", ""], ["registry", "show", ""], ["recommend", "--model", "", "--items", "x"]):
        rc, text = _cli(*argv, "--registry", r)
        assert rc == 2 and "the id is empty" in text, (argv, rc, text)
    rc, text = _cli("registry", "verify", "--registry", r)
    assert rc == 0 and "m: ok" in text and "p: ok" in text


# ---- the fuzzer ----------------------------------------------------------------------------------------
_PAIRS = [(kind, name) for kind, names in KINDS.items() for name in names]
DAMAGES = st.one_of(
    st.lists(st.sampled_from([p for p in _PAIRS if p[1] != "."]), min_size=1, max_size=3, unique_by=lambda p: p[1]),
    st.sampled_from([p for p in _PAIRS if p[1] == "."]).map(lambda p: [p]),
)
#: Damage around the models: leftovers a crash or a person may leave, some of them links out.
EXTRA = st.sampled_from(["none", "old-link-out", "tmp-fifo", "old-with-link", "stray-file", "bad-name-dir"])


def _extra(reg: Registry, outside: Path, kind: str) -> None:
    if kind == "old-link-out":
        (outside / "victim" / "m9").mkdir(parents=True, exist_ok=True)
        (outside / "victim" / "m9" / MANIFEST).write_text("{}")
        os.symlink(outside / "victim", reg.root / ".old-m9-x")
    elif kind == "tmp-fifo":
        os.mkfifo(reg.root / ".tmp-m-x")
    elif kind == "old-with-link":
        (reg.root / ".old-m8-y").mkdir()
        os.symlink(outside, reg.root / ".old-m8-y" / "m8")
    elif kind == "stray-file":
        (reg.root / "notes.txt").write_text("a file, not a model")
    elif kind == "bad-name-dir":
        (reg.root / "x\n").mkdir()


def test_fuzzed_structural_damage_never_escapes_hangs_or_spreads(pristine: Path, tmp_path_factory) -> None:
    n = count("RECSYS_FUZZ_REGISTRIES")
    base = tmp_path_factory.mktemp("fuzz")
    stats = {"registries": 0, "damages": {}, "escaped": 0, "hangs": 0, "max_call_s": 0.0}
    t0 = time.perf_counter()

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(damages=DAMAGES, extra=EXTRA, seed=st.integers(0, 2**32 - 1), forge=st.booleans())
    def one(damages, extra, seed, forge) -> None:
        k = stats["registries"]
        stats["registries"] += 1
        root = base / f"r{k}" / "store"
        outside = base / f"r{k}" / "outside"
        outside.mkdir(parents=True)
        (outside / "precious.txt").write_text("keep me")
        shutil.copytree(pristine, root, symlinks=True)
        reg = Registry(root)
        rng = random.Random(seed)
        what = [damage(root / "m", kind, name, outside=outside, other=root / "p", rng=rng) for kind, name in damages]
        for kind, name in damages:  # half the time, past the checksums (re-sealed) to the parsers
            if forge and kind in REFILABLE and name != MANIFEST and refile(root / "m", name):
                what.append(f"refiled {name}")
        _extra(reg, outside, extra)
        before = preserve_outside(outside)
        for w in what:
            key = w.split(" (")[0] if not w.startswith("refiled") else "refiled"
            stats["damages"][key] = stats["damages"].get(key, 0) + 1
        try:
            seen = exercise(reg, cli_calls=k % 10 == 0)  # the CLI prints tables: every tenth registry
            with time_limit(CALL_LIMIT_S, "clean"):
                reg.clean()
        except Hang:
            stats["hangs"] += 1
            raise
        except BaseException:
            stats["escaped"] += 1
            raise
        stats["max_call_s"] = max(stats["max_call_s"], *seen["seconds"].values())
        assert_damaged_alone(seen, f"{what} + {extra}")
        assert preserve_outside(outside) == before, f"{what} + {extra}: something outside the registry changed"
        assert not [p for p in os.listdir(root) if p.startswith((".old-", ".tmp-"))]
        shutil.rmtree(base / f"r{k}", ignore_errors=True)

    one()
    log_figures(
        "registry_structure_fuzz",
        registries=stats["registries"],
        escaped=stats["escaped"],
        hangs=stats["hangs"],
        max_call_s=round(stats["max_call_s"], 3),
        damages=stats["damages"],
        wall_s=round(time.perf_counter() - t0, 1),
    )
    assert stats["registries"] >= n
