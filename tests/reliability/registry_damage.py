"""Structural damage to a saved model, for the registry fuzzer, the targeted tests and the app abuse test.

Each damage changes *what kind of thing* a registry file is, how big it is or how its JSON is shaped
(not only its bytes): a directory, FIFO, link in or out of the registry, a link to ``/dev/zero``, a
6 GiB sparse file, JSON nested 100,000 levels, a safetensors header that is deep or claims 2^40
bytes, manifest fields of the wrong type (re-sealed, so only the schema check can tell). Every
damage here really damages the model: a registry must refuse it, and only it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from recsys.registry import MANIFEST, SEAL, manifest_seal

WEIGHTS, EXTRAS, ITEMS = "weights.safetensors", "extras.safetensors", "items.json"
FILES = (MANIFEST, WEIGHTS, ITEMS, EXTRAS)
DEEP = 100_000

#: kind -> the files it applies to ("." is the model directory itself).
KINDS: dict[str, tuple[str, ...]] = {
    "directory": FILES,
    "fifo": FILES,
    "link-outside": (*FILES, "."),
    "link-devzero": FILES,
    "link-dangling": (*FILES, "."),
    "link-loop": (*FILES, "."),
    "link-other-model": (*FILES, "."),
    "sparse-6GiB": FILES,
    "empty": FILES,
    "random-bytes": FILES,
    "deep-json": (MANIFEST, ITEMS),
    "deep-header": (WEIGHTS, EXTRAS),
    "huge-header": (WEIGHTS, EXTRAS),
    "schema": (MANIFEST,),
    "deep-field": (MANIFEST,),
    "file": (".",),
}

#: Manifest edits that keep the JSON valid and re-seal it: only the schema check refuses them.
SCHEMA_EDITS = {
    "dataset-string": lambda m: m.__setitem__("dataset", "x"),
    "metrics-list": lambda m: m.__setitem__("metrics", []),
    "files-list": lambda m: m.__setitem__("files", []),
    "file-entry-string": lambda m: m["files"].__setitem__(WEIGHTS, "x"),
    "file-bytes-text": lambda m: m["files"][ITEMS].__setitem__("bytes", "12"),
    "file-bytes-negative": lambda m: m["files"][ITEMS].__setitem__("bytes", -1),
    "params-list": lambda m: m.__setitem__("params", [1, 2]),
    "family-number": lambda m: m.__setitem__("family", 7),
    "format-text": lambda m: m.__setitem__("format_version", "2"),
    "format-list": lambda m: m.__setitem__("format_version", [2]),
    "info-list": lambda m: m.__setitem__("info", ["x"]),
    "training-log-object": lambda m: m.__setitem__("training_log", {"a": 1}),
    "training-log-junk": lambda m: m.__setitem__("training_log", [1, "x", [2]]),
    "dataset-name-number": lambda m: m["dataset"].__setitem__("name", 5),
    "dataset-no-fingerprint": lambda m: m["dataset"].pop("fingerprint"),
    "model-id-list": lambda m: m.__setitem__("model_id", ["m"]),
    "no-dataset": lambda m: m.pop("dataset"),
    "created-number": lambda m: m.__setitem__("created", 1.5),
}


def reseal(manifest: dict) -> dict:
    manifest[SEAL] = manifest_seal(manifest)
    return manifest


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _deep_header(depth: int) -> bytes:
    header = b'{"__metadata__":' + b"[" * depth + b"]" * depth + b"}"
    return len(header).to_bytes(8, "little") + header


def damage(model: Path, kind: str, name: str, *, outside: Path, other: Path, rng: random.Random) -> str:
    """Apply one damage of ``kind`` to ``model / name``; returns a short description.

    ``outside`` is a folder outside the registry (links point there), ``other`` another model's
    directory in the same registry (for links that stay inside but lead to the wrong file).
    """
    path = model if name == "." else model / name
    what = f"{kind} {name}"
    if kind in ("schema", "deep-field"):
        m = json.loads((model / MANIFEST).read_text())
        if kind == "schema":
            edit = rng.choice(sorted(SCHEMA_EDITS))
            SCHEMA_EDITS[edit](m)
            what += f" ({edit})"
        else:  # valid JSON nested too deep inside a field (sealed as it was before: the depth check comes first)
            depth = rng.choice([65, 200, 5000, DEEP])
            m["info"] = "DEEP"
            text = json.dumps(reseal(m)).replace('"info": "DEEP"', '"info": ' + "[" * depth + "]" * depth)
            (model / MANIFEST).write_text(text)
            return what + f" ({depth} levels)"
        (model / MANIFEST).write_text(json.dumps(reseal(m)))
        return what
    if kind == "link-outside":  # the outside copy has the same bytes: only where it lies is wrong
        copy = outside / f"copy-{rng.randrange(1 << 30)}"
        (shutil.copytree if name == "." else shutil.copy)(path, copy)
        _remove(path)
        os.symlink(copy, path)
        return what
    if name != "." and kind not in ("deep-json", "deep-header", "huge-header", "empty", "random-bytes", "sparse-6GiB"):
        _remove(path)
    if kind == "directory":
        path.mkdir()
        (path / "x").write_text("x")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-devzero":
        os.symlink("/dev/zero", path)
    elif kind == "link-dangling":
        if name == ".":
            _remove(path)
        os.symlink(path.parent / f"missing-{rng.randrange(1 << 30)}", path)
    elif kind == "link-loop":
        if name == ".":
            _remove(path)
        os.symlink(path.name, path)
    elif kind == "link-other-model":
        if name == ".":
            _remove(path)
            os.symlink(other, path)
        else:
            os.symlink(other / name, path)
    elif kind == "sparse-6GiB":
        with open(path, "r+b") as f:
            f.truncate(6 << 30)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random-bytes":
        path.write_bytes(rng.randbytes(rng.choice([1, 7, 8, 100, 5000])))
    elif kind == "deep-json":
        depth = rng.choice([65, 1000, DEEP])
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        path.write_text(opener * depth + "1" + closer * depth)
        what += f" ({depth} levels)"
    elif kind == "deep-header":
        depth = rng.choice([65, 1000, DEEP])
        path.write_bytes(_deep_header(depth) + b"\0" * 16)
        what += f" ({depth} levels)"
    elif kind == "huge-header":
        n = rng.choice([1 << 21, 1 << 40, (1 << 64) - 1])
        path.write_bytes(n.to_bytes(8, "little") + b"{}")
    elif kind == "file":
        _remove(path)
        path.write_text("not a directory")
    else:
        raise ValueError(f"unknown damage {kind!r}")
    return what


#: Damages after which the file is still a regular file of ordinary size: re-filing them in the manifest
#: (size and sha256, re-sealed: a forgery) gets them past the checksums to the parsers behind.
REFILABLE = ("empty", "random-bytes", "deep-json", "deep-header", "huge-header")


def refile(model: Path, name: str) -> bool:
    """Record ``model / name``'s current size and sha256 in the manifest and re-seal it.

    False (nothing changed) where the manifest itself is no longer an ordinary, sane JSON file.
    """
    import hashlib

    man = model / MANIFEST
    if man.is_symlink() or not man.is_file() or man.stat().st_size > 1 << 20:
        return False
    try:
        m = json.loads(man.read_text())
        m["files"][name] = {"sha256": hashlib.sha256((model / name).read_bytes()).hexdigest(), "bytes": 0}
        m["files"][name]["bytes"] = (model / name).stat().st_size
        text = json.dumps(reseal(m))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return False
    man.write_text(text)
    return True


def preserve_outside(outside: Path) -> dict[str, bytes]:
    """Every file under ``outside`` with its bytes: what no registry call may change."""
    return {str(p.relative_to(outside)): p.read_bytes() for p in sorted(outside.rglob("*")) if p.is_file()}
