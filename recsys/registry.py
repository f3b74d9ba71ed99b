"""The model registry: ``models_store/<model_id>/`` directories, verified before every load.

A model directory holds

* ``manifest.json``: format version, model id, family, hyperparameters, dataset (name,
  fingerprint, sizes), metrics, training log, created time, package versions, the sha256 and
  size of every other file, and ``manifest_sha256``, a seal over all of that (format 2);
* ``weights.safetensors``: the model's learned arrays (``Recommender.state_dict()``); its header
  metadata binds it to its manifest (the sha256 of the manifest without file list and seal);
* ``extras.safetensors`` (optional): arrays stored with the model (tag centroids, UMAP map, ...);
* ``items.json``: the item ids, titles, artists and tags, in the model's column order.

Writes are atomic: everything goes to a hidden temporary directory that is renamed into place
(replacing a model swaps the two directories in one ``renameat2(RENAME_EXCHANGE)`` on Linux), so a
reader never sees a half-written or missing model and a crash (even SIGKILL) leaves at most a
``.tmp-*`` directory that ``list`` ignores and ``clean`` removes. Reads open the model directory
once and read every file through that handle, hash the bytes they then parse, and start over when
a concurrent save replaced the directory meanwhile: a load never mixes files of two saves.

Loads verify the seal, the checksums, the weights' binding and the format version first and refuse
anything tampered, truncated, swapped (another model's manifest copied in) or incompatible with a
:class:`RegistryError` that says what to do. Format-1 models (saved before manifests were sealed)
still load, with their files checked against the manifest as before; a format-2 manifest rewritten
as format 1 is caught by the weights' binding. Nothing here unpickles.

Before a byte is read, every reader (list, show, verify, load, and so the app and the CLI) checks
what it is about to read (:mod:`recsys.registry_files`): regular files only (a directory, FIFO,
device or socket is reported by its kind, never opened for reading), links followed only inside the
registry, a file's size compared with the manifest before it is hashed or read (never a 6 GiB sparse
file or ``/dev/zero``), the manifest at most 16 MiB and a safetensors header at most 1 MiB, JSON at
most 64 levels deep, and the manifest's fields of the types every reader relies on (``dataset`` an
object, ``metrics`` an object, ...). A damaged model is listed with one reason; the others work.

What the seal protects against: accidents (a flipped bit, a truncated copy, a half-finished edit,
another model's file copied in), not forgery. It is an unkeyed sha256: whoever can write the
registry can edit a model and recompute every checksum and the seal, and ``verify`` then says ok.
Keep the registry writable only by whom you trust, as you would the code that reads it. Against
forgery, set ``$RECSYS_SEAL_KEY`` (a secret kept outside the registry) when saving and reading: saves
add ``manifest_hmac_sha256``, an HMAC-SHA256 of the manifest (file checksums included), and reads
refuse any model whose keyed seal is missing or does not match, a re-sealed forgery included.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import hashlib
import hmac
import json
import logging
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .data.dataset import Dataset
from .models import get_model_class
from .models.base import Recommender
from .registry_files import (
    MAX_MANIFEST_BYTES,
    MAX_SAFETENSORS_HEADER,
    OpenFile,
    UnsafeFile,
    loads_json,
    open_model_dir,
    open_regular,
    real_root,
    safetensors_header,
)

FORMAT_VERSION = 2
#: Formats this version reads: 1 (manifest not sealed, weights not bound) and 2.
READABLE_FORMATS = (1, 2)
#: Manifest key of the seal: sha256 of the canonical JSON of every other key.
SEAL = "manifest_sha256"
#: Manifest key of the optional keyed seal: HMAC-SHA256 with the key in ``$RECSYS_SEAL_KEY``.
KEYED_SEAL = "manifest_hmac_sha256"
#: Environment variable holding the key of the keyed seal (keep it outside the registry).
SEAL_KEY_ENV = "RECSYS_SEAL_KEY"
#: safetensors header metadata key binding the weights to their manifest (format 2).
BINDING = "recsys.manifest_core_sha256"
#: How often a read starts over when a concurrent save replaced the model directory meanwhile.
READ_ATTEMPTS = 6
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
EXTRAS = "extras.safetensors"
ITEMS = "items.json"
#: Model ids, matched in full (``fullmatch``: a trailing newline is not allowed, as ``$`` would).
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TRACKED_PACKAGES = (
    "numpy",
    "scipy",
    "torch",
    "scikit-surprise",
    "safetensors",
    "pandas",
)


log = logging.getLogger("recsys")


class RegistryError(RuntimeError):
    """A model directory is missing, tampered, truncated or from an incompatible version."""


def default_store() -> Path:
    """``$RECSYS_MODELS_DIR`` or ``models_store/`` at the project root."""
    env = os.environ.get("RECSYS_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models_store"


def _is_id(name: str) -> bool:
    return _ID_RE.fullmatch(name) is not None and ".." not in name


def check_model_id(model_id: str) -> str:
    """Model ids are plain names: letters, digits, ``_ . -``; never a path, never empty."""
    if model_id == "":
        raise RegistryError(
            "invalid model id '': the id is empty; give a model id (`python -m recsys registry list` shows them)"
        )
    if not isinstance(model_id, str) or not _is_id(model_id):
        raise RegistryError(
            f"invalid model id {model_id!r}: use letters, digits, '_', '.', '-' (no '/', no '..', at most 100 chars)"
        )
    return model_id


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    out = {"recsys": __version__, "python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _save_arrays(arrays: dict[str, np.ndarray], path: Path, metadata: dict[str, str] | None = None) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path), metadata=metadata)


def _load_arrays(data: bytes) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    return load(data)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def manifest_core_digest(manifest: dict) -> str:
    """sha256 of the manifest without its file list and seal: what the weights file is bound to."""
    core = {k: v for k, v in manifest.items() if k not in ("files", SEAL, KEYED_SEAL)}
    return hashlib.sha256(_canonical(core)).hexdigest()


def seal_key() -> bytes | None:
    """The key of the keyed seal (``$RECSYS_SEAL_KEY``), or None when it is not set."""
    key = os.environ.get(SEAL_KEY_ENV, "")
    return key.encode("utf-8") if key else None


def manifest_keyed_seal(manifest: dict, key: bytes) -> str:
    """HMAC-SHA256 of the manifest without its seals (file checksums included): only the key's holder can make it."""
    body = {k: v for k, v in manifest.items() if k not in (SEAL, KEYED_SEAL)}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


def manifest_seal(manifest: dict) -> str:
    """sha256 of the manifest without its seal: any edit of the manifest (file checksums included) changes it."""
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != SEAL})).hexdigest()


def _safetensors_metadata(head: bytes | None, file_size: int | None = None) -> tuple[dict[str, str] | None, str | None]:
    """(``__metadata__``, None) of a safetensors file from its first bytes, or (None, what is wrong).

    The header's length is bounded before it is read and its JSON depth before it is parsed
    (:func:`recsys.registry_files.safetensors_header`).
    """
    if head is None:
        return None, None
    try:
        header = safetensors_header(head, file_size)
    except ValueError as e:
        return None, str(e)
    meta = header.get("__metadata__")
    return (meta if isinstance(meta, dict) else None), None


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # not thread-safe, hence only where /proc does not tell
    os.umask(old)
    return old


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False  # old kernel or a file system without it: the caller falls back to two renames
    raise OSError(err, os.strerror(err), str(b))


_EXISTS = (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename the directory ``src`` to ``dst`` only if nothing is at ``dst``: FileExistsError otherwise.

    The commit of ``save(overwrite=False)``: Linux ``renameat2(RENAME_NOREPLACE)`` checks and
    renames in one step in the kernel, so of two racing savers exactly one wins and nothing is left
    behind by a crash (no lock file to go stale). Elsewhere ``rename(2)``, which refuses to replace a
    non-empty directory (a saved model never is empty) or to put a directory over a file.
    """
    if sys.platform.startswith("linux"):
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            fn = None
        if fn is not None:
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            at_fdcwd, rename_noreplace = -100, 1
            if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace) == 0:
                return
            err = ctypes.get_errno()
            if err in _EXISTS:
                raise FileExistsError(err, os.strerror(err), str(dst))
            if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
                raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst) and not os.path.isdir(dst):
        raise FileExistsError(errno.EEXIST, "File exists", str(dst))
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno in _EXISTS:
            raise FileExistsError(e.errno, e.strerror, str(dst)) from None
        raise


class _ModelDir:
    """A model directory opened once, with every file of it opened at once, each checked first.

    Reads go through those handles, so they see one directory's files even if a concurrent save
    replaces (and deletes) it meanwhile: the window for a mixed or missing read is the few
    microseconds of opening, and :meth:`Registry._consistent` covers that.

    Only regular files inside the registry are opened (:func:`recsys.registry_files.open_regular`):
    a name that is a directory, FIFO, device, socket or link out of the registry is kept in
    :attr:`problems` with the reason instead, and nothing of it is ever read. Raises
    FileNotFoundError when the directory is gone and UnsafeFile when the directory itself is not a
    directory inside the registry.
    """

    NAMES = (MANIFEST, WEIGHTS, ITEMS, EXTRAS)

    def __init__(self, path: Path, root: Path, names: tuple[str, ...] = NAMES):
        self.path = path
        self.files: dict[str, OpenFile] = {}
        self.problems: dict[str, str] = {}
        top = real_root(root)
        fd = open_model_dir(path, top)
        try:
            for name in names:
                try:
                    self.files[name] = open_regular(name, path, fd, top)  # closed in close()
                except FileNotFoundError:
                    pass
                except UnsafeFile as e:
                    self.problems[name] = f"{name} {e}"
        except BaseException:
            self.close()
            raise
        finally:
            if fd is not None:
                os.close(fd)

    def __enter__(self) -> _ModelDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}

    def _file(self, name: str):
        f = self.files.get(name)
        if f is None:
            raise FileNotFoundError(2, "No such file", str(self.path / name))
        f.file.seek(0)
        return f.file

    def exists(self, name: str) -> bool:
        """Whether anything (a readable file or something refused) has this name."""
        return name in self.files or name in self.problems

    def size(self, name: str) -> int | None:
        f = self.files.get(name)
        return None if f is None else f.size

    def read(self, name: str, limit: int) -> bytes:
        """The file's bytes; callers check :meth:`size` first, ``limit`` bounds a file that grew since."""
        data = self._file(name).read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"{self.path / name} grew past {limit:,} bytes while being read")
        return data

    def digest(self, name: str) -> tuple[str, int] | None:
        """(sha256, size) of a file, streamed; None if it is missing."""
        if name not in self.files:
            return None
        f, h, size = self._file(name), hashlib.sha256(), 0
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
        return h.hexdigest(), size

    def head(self, name: str) -> bytes | None:
        """The header of a safetensors file (at most its bounded length), for its metadata."""
        if name not in self.files:
            return None
        f = self._file(name)
        first = f.read(8)
        n = int.from_bytes(first, "little") if len(first) == 8 else 0
        return first + f.read(min(n, MAX_SAFETENSORS_HEADER))


_JSON_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool | type(None) | dict | list | str):
        return _JSON_TYPE_NAMES[type(value)]
    return "a number" if isinstance(value, int | float) else type(value).__name__


#: The manifest's fields and their JSON types (required ones first); what every reader may rely on.
_MANIFEST_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "family": ((str,), True),
    "params": ((dict,), True),
    "files": ((dict,), True),
    "dataset": ((dict,), True),
    "class": ((str,), False),
    "metrics": ((dict,), False),
    "training_log": ((list,), False),
    "fit_seconds": ((int, float, type(None)), False),
    "info": ((dict,), False),
    "created": ((str,), False),
    "versions": ((dict,), False),
    SEAL: ((str,), False),
    KEYED_SEAL: ((str,), False),
}
_DATASET_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "fingerprint": (str,),
    "n_users": (int,),
    "n_items": (int,),
    "item_noun": (str,),
}


def _schema_problem(manifest: dict) -> str | None:
    """What is wrong with the types of a parsed manifest's fields (None when every reader can use it).

    Completes the sentence "manifest.json ...". Checked on every read (list, show, verify, load), so
    a field of the wrong type (``"dataset": "x"``, ``"metrics": []``) marks the model as damaged
    instead of failing whoever reads the field later.
    """
    for key, (types, required) in _MANIFEST_FIELDS.items():
        if key not in manifest:
            if required:
                return f"lacks {key!r}"
            continue
        value = manifest[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = " or ".join(_JSON_TYPE_NAMES.get(t, "a number") for t in dict.fromkeys(types))
            return f"field {key!r} must be {want}, not {_json_type(value)}"
    if any(not isinstance(epoch, dict) for epoch in manifest.get("training_log", [])):
        return "field 'training_log' must be a list of objects (one per epoch)"
    dataset = manifest["dataset"]
    for key, types in _DATASET_FIELDS.items():
        value = dataset.get(key)
        if key in ("name", "fingerprint") and value is None:
            return f"field 'dataset' lacks {key!r}"
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return (
                f"field 'dataset.{key}' must be {_JSON_TYPE_NAMES.get(types[0], 'a number')}, not {_json_type(value)}"
            )
    for name, meta in manifest["files"].items():
        if not isinstance(meta, dict):
            return f"lists file {name[:100]!r} with {_json_type(meta)} instead of its sha256 and size"
        digest, size = meta.get("sha256"), meta.get("bytes")
        if not isinstance(digest, str) or type(size) is not int or size < 0:
            return f"lists file {name[:100]!r} without a sha256 (text) and a size (bytes >= 0)"
    return None


def _items_problem(raw: bytes) -> str | None:
    """What is wrong with items.json's content (None when a load can build its table)."""
    try:
        items = loads_json(raw)
    except ValueError as e:
        return str(e)
    if not isinstance(items, dict):
        return f"must hold a JSON object, not {_json_type(items)}"
    columns = ("item_id", "title", "artist", "tags")
    lengths = set()
    for key in columns:
        column = items.get(key)
        if not isinstance(column, list):
            return f"lacks the list {key!r}"
        lengths.add(len(column))
        if key == "tags":
            ok = all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in column)
        else:
            ok = all(isinstance(x, str) for x in column)
        if not ok:
            return f"column {key!r} holds values of the wrong type"
    if len(lengths) != 1:
        return "has columns of different lengths"
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class LoadedModel:
    """A verified model with what it was stored with."""

    model: Recommender
    manifest: dict
    items: pd.DataFrame
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]


@dataclass
class ModelEntry:
    """One row of ``Registry.list()``: the manifest if it could be read, else the problem."""

    model_id: str
    manifest: dict | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class Registry:
    """Save, list, load, verify and remove models in a directory (``models_store/`` by default)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_store()

    # ---- writing -----------------------------------------------------------------------
    def save(
        self,
        model: Recommender,
        *,
        dataset: Dataset,
        model_id: str | None = None,
        metrics: dict | None = None,
        extras: dict[str, np.ndarray] | None = None,
        info: dict | None = None,
        overwrite: bool = False,
    ) -> str:
        """Store a fitted model atomically; returns its id.

        ``dataset`` is the data the model's item columns come from (its items table is stored).
        ``info`` is free-form JSON (split, training template, notes).
        """
        if not model.is_fitted:
            raise RegistryError("only fitted models can be saved")
        if dataset.n_items != model.n_items_:
            raise RegistryError(f"dataset has {dataset.n_items} items but the model has {model.n_items_}")
        model_id = check_model_id(model_id or f"{model.family}-{dataset.name}")
        final = self.root / model_id
        if os.path.lexists(final) and not overwrite:
            raise RegistryError(f"model {model_id!r} already exists in {self.root}; pass overwrite=True to replace it")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{model_id}-", dir=self.root))
        try:
            manifest = {
                "format_version": FORMAT_VERSION,
                "model_id": model_id,
                "family": model.family,
                "class": type(model).__name__,
                "params": _jsonable(model.get_params()),
                "dataset": {
                    "name": dataset.name,
                    "fingerprint": dataset.fingerprint,
                    "n_users": dataset.n_users,
                    "n_items": dataset.n_items,
                    "item_noun": dataset.item_noun,
                },
                "metrics": _jsonable(metrics or {}),
                "training_log": _jsonable(model.training_log_ or []),
                "fit_seconds": getattr(model, "fit_seconds_", None),
                "info": _jsonable(info or {}),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "versions": package_versions(),
            }
            manifest = json.loads(json.dumps(manifest, ensure_ascii=False))  # exactly what a reader will parse
            binding = {BINDING: manifest_core_digest(manifest), "recsys.model_id": model_id}
            _save_arrays(model.state_dict(), tmp / WEIGHTS, metadata=binding)
            files = [WEIGHTS, ITEMS]
            if extras:
                _save_arrays(extras, tmp / EXTRAS)
                files.append(EXTRAS)
            items = {
                "item_id": [str(v) for v in dataset.items["item_id"]],
                "title": [str(v) for v in dataset.items["title"]],
                "artist": [str(v) for v in dataset.items["artist"]],
                "tags": [list(t) for t in dataset.items["tags"]],
            }
            (tmp / ITEMS).write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
            manifest["files"] = {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files}
            key = seal_key()
            if key is not None:  # the keyed seal: refuses a re-sealed forgery where the key is set
                manifest[KEYED_SEAL] = manifest_keyed_seal(manifest, key)
            manifest[SEAL] = manifest_seal(manifest)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            umask = _umask()
            for f in [*files, MANIFEST]:
                os.chmod(tmp / f, 0o666 & ~umask)  # readable like any file this user writes (mkstemp: 0600)
                with open(tmp / f, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700: others sharing the registry could not read it
            _fsync_dir(tmp)
            self._swap_in(tmp, final, model_id, overwrite)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return model_id

    def _swap_in(self, tmp: Path, final: Path, model_id: str, overwrite: bool) -> None:
        """Make the complete directory ``tmp`` the model ``final``; readers see the old or the new one, never none.

        Without ``overwrite`` the commit is create-exclusive (:func:`_rename_noreplace`): of two
        processes saving one new id at once, exactly one wins and the other gets a RegistryError.
        """
        if not overwrite or not os.path.lexists(final):
            try:
                _rename_noreplace(tmp, final)
                return
            except FileExistsError:  # another process saved the same id meanwhile
                if not overwrite:
                    raise RegistryError(
                        f"model {model_id!r} was saved by another process meanwhile; pass overwrite=True to replace it"
                    ) from None
        if _rename_exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the replaced model
            return
        # no atomic exchange here: two renames; a crash in between leaves the old model in .old-*,
        # which clean() puts back
        old = Path(tempfile.mkdtemp(prefix=f".old-{model_id}-", dir=self.root))
        os.replace(final, old / model_id)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def remove(self, model_id: str) -> None:
        """Delete a model, damaged ones included (whatever is at its name: never followed if a link)."""
        path = self.root / check_model_id(model_id)
        if not os.path.lexists(path):
            known = ", ".join(self.ids()) or "none"
            raise RegistryError(f"no model {model_id!r} in {self.root} (known: {known})")
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{model_id}-", dir=self.root))
        os.replace(path, trash / model_id)  # atomic disappearance, then the slow delete
        shutil.rmtree(trash, ignore_errors=True)

    def clean(self) -> list[str]:
        """Remove leftovers of interrupted writes (``.tmp-*``, ``.trash-*``, ``.old-*``); returns their names.

        A model that an interrupted overwrite left only in ``.old-*`` (where no atomic exchange exists)
        is put back first. Links are never followed: a leftover name that is a link (or a file) is
        unlinked, and only real directories inside ``.old-*`` are put back.
        """
        removed = []
        if not self.root.is_dir():
            return removed
        for p in sorted(self.root.iterdir()):
            if not p.name.startswith((".tmp-", ".trash-", ".old-")):
                continue
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):  # a link (maybe out of the registry) or a file: never followed
                p.unlink(missing_ok=True)
                removed.append(p.name)
                continue
            if p.name.startswith(".old-"):
                for inner in p.iterdir():
                    target = self.root / inner.name
                    if (
                        _is_id(inner.name)
                        and not inner.is_symlink()
                        and inner.is_dir()
                        and (inner / MANIFEST).is_file()
                        and not (inner / MANIFEST).is_symlink()
                    ):
                        try:
                            _rename_noreplace(inner, target)
                        except FileExistsError:
                            continue
                        log.warning("restored model %r from an interrupted overwrite", inner.name)
            shutil.rmtree(p, ignore_errors=True)
            if not os.path.lexists(p):
                removed.append(p.name)
        return removed

    # ---- reading -----------------------------------------------------------------------
    def _dir(self, model_id: str) -> Path:
        path = self.root / check_model_id(model_id)
        if not os.path.lexists(path) and not self._interrupted(model_id):
            known = ", ".join(self.ids()) or "none"
            raise RegistryError(f"no model {model_id!r} in {self.root} (known: {known})")
        return path

    def _interrupted(self, model_id: str) -> bool:
        """Whether an overwrite without atomic exchange left this model only in ``.old-*``."""
        return any(self.root.glob(f".old-{model_id}-*/{model_id}"))

    def _open(self, model_id: str, names: tuple[str, ...] = _ModelDir.NAMES) -> _ModelDir:
        """The model's directory with its files open; every failure is a RegistryError naming the model."""
        path = self._dir(model_id)
        try:
            return _ModelDir(path, self.root, names)
        except FileNotFoundError:
            if self._interrupted(model_id):
                raise RegistryError(
                    f"model {model_id!r}: an overwrite was interrupted; Registry.clean() (run by `python -m recsys "
                    "registry build-defaults`) puts the previous version back"
                ) from None
            raise RegistryError(f"no model {model_id!r} in {self.root} (it was removed meanwhile)") from None
        except UnsafeFile as e:
            raise RegistryError(f"model {model_id!r}: its folder {path} {e}; remove it") from None
        except OSError as e:  # permissions, I/O errors: still the registry's error, with the cause
            raise RegistryError(f"model {model_id!r}: its files cannot be opened ({e})") from None

    def _consistent(self, model_id: str, read: Callable[[str], Any], failed: Callable[[Any], bool] | None = None):
        """``read(model_id)``, started over when a concurrent save replaced the model's directory meanwhile.

        A read that raises (or whose result ``failed``) is retried only if the directory changed
        under it (or an overwrite without atomic exchange is half-way), so real damage is reported
        at once.
        """
        path = self.root / check_model_id(model_id)
        delay = 0.01
        for attempt in range(READ_ATTEMPTS):
            before = _identity(path)
            last = attempt + 1 == READ_ATTEMPTS
            try:
                result = read(model_id)
            except (RegistryError, OSError):
                if last or not self._replaced(model_id, before):
                    raise
            else:
                if failed is None or not failed(result) or last or not self._replaced(model_id, before):
                    return result
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _replaced(self, model_id: str, before: tuple[int, int] | None) -> bool:
        if _identity(self.root / model_id) != before:
            return True
        return before is None and any(p.name.startswith(f".old-{model_id}-") for p in self.root.glob(".old-*"))

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # a link with a model's name is listed whatever it leads to, so a broken one shows as damaged
        names = {p.name for p in self.root.iterdir() if _is_id(p.name) and (p.is_dir() or p.is_symlink())}
        for old in self.root.glob(".old-*"):  # an overwrite half-way (no atomic exchange here): still listed
            if old.is_symlink():  # never followed (clean() unlinks it)
                continue
            try:
                # only what clean() would put back: real directories, never links
                names.update(p.name for p in old.iterdir() if _is_id(p.name) and not p.is_symlink() and p.is_dir())
            except OSError:
                pass
        return sorted(names)

    def list(self) -> list[ModelEntry]:
        """Every model directory with its manifest; unreadable ones carry a ``problem`` instead."""
        entries = []
        for model_id in self.ids():
            try:
                entries.append(ModelEntry(model_id, self.read_manifest(model_id)))
            except RegistryError as e:
                entries.append(ModelEntry(model_id, None, str(e)))
        return entries

    def read_manifest(self, model_id: str) -> dict:
        """The model's manifest, parsed and checked for format and id (not for integrity: see :meth:`verify`)."""
        return self._consistent(model_id, self._read_manifest_once)

    def _read_manifest_once(self, model_id: str, d: _ModelDir | None = None) -> dict:
        if d is None:
            with self._open(model_id, (MANIFEST,)) as opened:
                return self._read_manifest_once(model_id, opened)
        path = self.root / model_id / MANIFEST
        if MANIFEST in d.problems:
            raise RegistryError(f"model {model_id!r}: {d.problems[MANIFEST]}; remove the model and retrain it")
        size = d.size(MANIFEST)
        if size is None:
            if self._interrupted(model_id):
                raise RegistryError(
                    f"model {model_id!r}: an overwrite was interrupted; Registry.clean() (run by `python -m recsys "
                    "registry build-defaults`) puts the previous version back"
                )
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is missing ({path})")
        if size > MAX_MANIFEST_BYTES:
            raise RegistryError(
                f"model {model_id!r}: {MANIFEST} has {size:,} bytes, more than a manifest can have "
                f"({MAX_MANIFEST_BYTES:,}); remove the model and retrain it"
            )
        try:
            manifest = loads_json(d.read(MANIFEST, MAX_MANIFEST_BYTES))
        except ValueError as e:
            raise RegistryError(f"model {model_id!r}: {MANIFEST} {e}; remove the model and retrain it") from None
        except OSError as e:
            raise RegistryError(f"model {model_id!r}: {MANIFEST} cannot be read ({e})") from None
        if not isinstance(manifest, dict):
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is not a JSON object")
        version = manifest.get("format_version")
        if type(version) is not int or version not in READABLE_FORMATS:
            shown = version if isinstance(version, int | float | str | None) else type(version).__name__
            raise RegistryError(
                f"model {model_id!r} was written in registry format {str(shown)[:40]!r}; this recsys "
                f"({__version__}) reads formats {', '.join(map(str, READABLE_FORMATS))}: retrain it with "
                "`python -m recsys train`"
            )
        if manifest.get("model_id") != model_id:
            named = manifest.get("model_id")
            shown = named[:100] if isinstance(named, str) else type(named).__name__
            raise RegistryError(
                f"model {model_id!r}: its manifest names model {shown!r} (a copied or swapped manifest)"
            )
        problem = _schema_problem(manifest)
        if problem:
            raise RegistryError(f"model {model_id!r}: {MANIFEST} {problem}; remove the model and retrain it")
        return manifest

    def verify(self, model_id: str) -> list[str]:
        """Every problem found (empty list = intact): seal, binding, file sizes and sha256 sums."""
        return self._consistent(model_id, self._verify_once, failed=bool)

    def _verify_once(self, model_id: str) -> list[str]:
        try:
            d = self._open(model_id)
        except RegistryError as e:
            return [str(e)]
        with d:
            try:
                manifest = self._read_manifest_once(model_id, d)
            except RegistryError as e:
                return [str(e)]
            try:
                return self._problems(model_id, manifest, d)
            except OSError as e:  # an I/O error while hashing
                return [f"model {model_id!r}: its files cannot be read ({e})"]

    def _problems(
        self, model_id: str, manifest: dict, d: _ModelDir, blobs: dict[str, bytes] | None = None
    ) -> list[str]:
        """What is wrong with a parsed manifest and the files of ``d``; [] when intact.

        Each file's kind and size are checked before a byte of it is read; the sha256 is then taken of
        ``blobs[name]`` (the bytes a load parses) when given, else streamed from the file.
        """
        files = manifest["files"]
        if WEIGHTS not in files or ITEMS not in files:
            return [f"model {model_id!r}: manifest's file list is incomplete"]
        problems = []
        version = manifest["format_version"]
        if version >= 2 and manifest.get(SEAL) != manifest_seal(manifest):
            problems.append(
                f"model {model_id!r}: {MANIFEST} was modified after saving (its content does not match its "
                f"seal {SEAL!r})"
            )
        key = seal_key()
        if key is not None:  # only models sealed with this key are trusted
            keyed = manifest.get(KEYED_SEAL)
            if keyed is None:
                problems.append(
                    f"model {model_id!r}: {MANIFEST} has no keyed seal, and {SEAL_KEY_ENV} is set: models saved "
                    f"without the key are not trusted; save it again with {SEAL_KEY_ENV} set"
                )
            elif not hmac.compare_digest(keyed, manifest_keyed_seal(manifest, key)):
                problems.append(
                    f"model {model_id!r}: {MANIFEST} does not match its keyed seal: it was changed by someone "
                    f"without the key (or saved with another {SEAL_KEY_ENV})"
                )
        sizes_ok = True
        for name, meta in files.items():
            if name not in (WEIGHTS, EXTRAS, ITEMS):
                problems.append(f"model {model_id!r}: manifest lists an unexpected file {name[:100]!r}")
                continue
            size = d.size(name)
            if name in d.problems:
                problems.append(f"model {model_id!r}: {d.problems[name]}")
            elif size is None:
                problems.append(f"model {model_id!r}: {name} is missing")
            elif size != meta["bytes"]:
                problems.append(
                    f"model {model_id!r}: {name} has {size:,} bytes, manifest says {meta['bytes']:,} "
                    "(truncated or replaced)"
                )
            else:
                found = (
                    (hashlib.sha256(blobs[name]).hexdigest(), len(blobs[name]))
                    if blobs is not None and name in blobs
                    else d.digest(name)
                )
                if found is None or found[1] != size:
                    problems.append(f"model {model_id!r}: {name} changed size while being read")
                elif found[0] != meta["sha256"]:
                    problems.append(f"model {model_id!r}: {name} does not match its sha256 (modified after saving)")
                elif name == ITEMS:  # what load parses must parse (a re-sealed forgery passes the checksums)
                    raw = blobs[ITEMS] if blobs is not None and ITEMS in blobs else d.read(ITEMS, size)
                    bad = _items_problem(raw)
                    if bad:
                        problems.append(f"model {model_id!r}: {ITEMS} {bad}")
                continue
            sizes_ok = sizes_ok and name != WEIGHTS
        if EXTRAS not in files and d.exists(EXTRAS):
            problems.append(f"model {model_id!r}: {EXTRAS} is not listed in the manifest (added after saving)")
        if not sizes_ok:  # the weights cannot be read: their binding cannot be checked either
            return problems
        heads: dict[str, tuple[dict | None, str | None]] = {}
        for name in (WEIGHTS, EXTRAS):
            if name in files and d.size(name) is not None:
                head = (
                    blobs[name][: 8 + MAX_SAFETENSORS_HEADER] if blobs is not None and name in blobs else d.head(name)
                )
                heads[name] = _safetensors_metadata(head, d.size(name))
                if heads[name][1]:
                    problems.append(f"model {model_id!r}: {name} {heads[name][1]}")
        meta, unreadable = heads.get(WEIGHTS, (None, None))
        if unreadable:
            return problems
        bound = (meta or {}).get(BINDING)
        if bound is not None and bound != manifest_core_digest(manifest):
            problems.append(
                f"model {model_id!r}: {MANIFEST} does not belong to {WEIGHTS}: the weights were saved with "
                + (
                    "another manifest (a swapped or copied manifest)"
                    if version >= 2
                    else f"a format-2 manifest, this one says format {version} (a replaced or downgraded manifest)"
                )
            )
        elif bound is None and version >= 2:
            problems.append(
                f"model {model_id!r}: {WEIGHTS} does not name its manifest (format {version} weights always do): "
                "it was replaced after saving"
            )
        return problems

    def load(self, model_id: str) -> LoadedModel:
        """Verify, then rebuild the model from family + params + weights. Raises RegistryError.

        The bytes that are checked are the bytes that are parsed, all from one directory: a model
        replaced by a concurrent save is read again, never mixed. No file is read before its kind and
        its size (against the manifest) are checked.
        """
        return self._consistent(model_id, self._load_once)

    def _load_once(self, model_id: str) -> LoadedModel:
        with self._open(model_id) as d:
            manifest = self._read_manifest_once(model_id, d)
            listed = manifest["files"]
            blobs: dict[str, bytes] = {}
            try:
                for name in (WEIGHTS, ITEMS, EXTRAS):
                    meta = listed.get(name)
                    if meta is not None and name not in d.problems and d.size(name) == meta["bytes"]:
                        blobs[name] = d.read(name, meta["bytes"])
            except OSError as e:
                raise RegistryError(f"model {model_id!r}: its files cannot be read ({e})") from None
            problems = self._problems(model_id, manifest, d, blobs)
        if problems:
            raise RegistryError(
                "refusing to load: "
                + "; ".join(problems)
                + ". Remove the model (`python -m recsys registry remove`) and retrain it."
            )
        try:
            cls = get_model_class(manifest["family"])
        except KeyError as e:
            raise RegistryError(f"model {model_id!r}: {e.args[0]}") from None
        try:
            model = cls(**manifest["params"])
            model.load_state_dict(_load_arrays(blobs[WEIGHTS]))
            model.training_log_ = manifest.get("training_log") or []
            items = pd.DataFrame(loads_json(blobs[ITEMS]))
            items["tags"] = [tuple(t) for t in items["tags"]]
            extras = _load_arrays(blobs[EXTRAS]) if EXTRAS in blobs else {}
        except RegistryError:
            raise
        except Exception as e:  # a file that passed its checksum but does not fit this code
            raise RegistryError(f"model {model_id!r} could not be rebuilt ({type(e).__name__}: {e}); retrain it") from e
        if len(items) != model.n_items_:
            raise RegistryError(f"model {model_id!r}: {len(items)} items stored for a model of {model.n_items_}")
        return LoadedModel(model=model, manifest=manifest, items=items, extras=extras)
