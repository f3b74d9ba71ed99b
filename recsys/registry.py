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
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import platform
import re
import shutil
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

FORMAT_VERSION = 2
#: Formats this version reads: 1 (manifest not sealed, weights not bound) and 2.
READABLE_FORMATS = (1, 2)
#: Manifest key of the seal: sha256 of the canonical JSON of every other key.
SEAL = "manifest_sha256"
#: safetensors header metadata key binding the weights to their manifest (format 2).
BINDING = "recsys.manifest_core_sha256"
#: How often a read starts over when a concurrent save replaced the model directory meanwhile.
READ_ATTEMPTS = 6
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
EXTRAS = "extras.safetensors"
ITEMS = "items.json"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
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


def check_model_id(model_id: str) -> str:
    """Model ids are plain names: letters, digits, ``_ . -``; never a path."""
    if not isinstance(model_id, str) or not _ID_RE.match(model_id) or ".." in model_id:
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
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k not in ("files", SEAL)})).hexdigest()


def manifest_seal(manifest: dict) -> str:
    """sha256 of the manifest without its seal: any edit of the manifest (file checksums included) changes it."""
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != SEAL})).hexdigest()


def _safetensors_metadata(head: bytes | None) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file from its first bytes (None if absent or unreadable)."""
    if head is None or len(head) < 8:
        return None
    n = int.from_bytes(head[:8], "little")
    if n > len(head) - 8:
        return None
    try:
        header = json.loads(head[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else None


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


_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


class _ModelDir:
    """A model directory opened once, with every file of it opened at once.

    Reads go through those handles, so they see one directory's files even if a concurrent save
    replaces (and deletes) it meanwhile: the window for a mixed or missing read is the few
    microseconds of opening, and :meth:`Registry._consistent` covers that.
    """

    NAMES = (MANIFEST, WEIGHTS, ITEMS, EXTRAS)

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, Any] = {}
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY) if _DIR_FD else None
        try:
            for name in self.NAMES:
                try:
                    if fd is None:
                        self.files[name] = open(path / name, "rb")  # closed in close()
                    else:
                        self.files[name] = os.fdopen(os.open(name, os.O_RDONLY, dir_fd=fd), "rb")
                except FileNotFoundError:
                    pass
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
        f.seek(0)
        return f

    def exists(self, name: str) -> bool:
        return name in self.files

    def read(self, name: str) -> bytes:
        return self._file(name).read()

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
        """The header of a safetensors file (at most 1 MiB), for its metadata."""
        if name not in self.files:
            return None
        f = self._file(name)
        first = f.read(8)
        n = int.from_bytes(first, "little") if len(first) == 8 else 0
        return first + f.read(min(n, 1 << 20))


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
        if final.exists() and not overwrite:
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
        """Make the complete directory ``tmp`` the model ``final``; readers see the old or the new one, never none."""
        if not final.exists():
            try:
                os.replace(tmp, final)
                return
            except OSError as e:  # another process saved the same id meanwhile
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.exists():
                    raise
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
        path = self._dir(model_id)
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{model_id}-", dir=self.root))
        os.replace(path, trash / model_id)  # atomic disappearance, then the slow delete
        shutil.rmtree(trash, ignore_errors=True)

    def clean(self) -> list[str]:
        """Remove leftovers of interrupted writes (``.tmp-*``, ``.trash-*``, ``.old-*``); returns their names.

        A model that an interrupted overwrite left only in ``.old-*`` (where no atomic exchange exists)
        is put back first.
        """
        removed = []
        if self.root.is_dir():
            for p in sorted(self.root.iterdir()):
                if p.name.startswith(".old-") and p.is_dir():
                    for inner in p.iterdir():
                        target = self.root / inner.name
                        if _ID_RE.match(inner.name) and (inner / MANIFEST).is_file() and not target.exists():
                            os.replace(inner, target)
                            log.warning("restored model %r from an interrupted overwrite", inner.name)
                if p.name.startswith((".tmp-", ".trash-", ".old-")):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        return removed

    # ---- reading -----------------------------------------------------------------------
    def _dir(self, model_id: str) -> Path:
        path = self.root / check_model_id(model_id)
        if not (path / MANIFEST).is_file():
            known = ", ".join(e.model_id for e in self.list()) or "none"
            raise RegistryError(f"no model {model_id!r} in {self.root} (known: {known})")
        return path

    def _open(self, model_id: str) -> _ModelDir:
        path = self._dir(model_id)
        try:
            return _ModelDir(path)
        except FileNotFoundError:
            raise RegistryError(f"no model {model_id!r} in {self.root} (it was removed meanwhile)") from None

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
        names = {
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and _ID_RE.match(p.name)
        }
        for old in self.root.glob(".old-*"):  # an overwrite half-way (no atomic exchange here): still listed
            try:
                names.update(p.name for p in old.iterdir() if _ID_RE.match(p.name))
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
        path = self.root / check_model_id(model_id) / MANIFEST
        try:
            raw = d.read(MANIFEST) if d is not None else path.read_bytes()
        except FileNotFoundError:
            if any(self.root.glob(f".old-{model_id}-*/{model_id}")):
                raise RegistryError(
                    f"model {model_id!r}: an overwrite was interrupted; Registry.clean() (run by `python -m recsys "
                    "registry build-defaults`) puts the previous version back"
                ) from None
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is missing ({path})") from None
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RegistryError(
                f"model {model_id!r}: {MANIFEST} is not valid JSON ({e}); remove the model and retrain it"
            ) from None
        if not isinstance(manifest, dict):
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is not a JSON object")
        version = manifest.get("format_version")
        if type(version) is not int or version not in READABLE_FORMATS:
            raise RegistryError(
                f"model {model_id!r} was written in registry format {version!r}; this recsys "
                f"({__version__}) reads formats {', '.join(map(str, READABLE_FORMATS))}: retrain it with "
                "`python -m recsys train`"
            )
        if manifest.get("model_id") != model_id:
            raise RegistryError(
                f"model {model_id!r}: its manifest names model {manifest.get('model_id')!r} "
                "(a copied or swapped manifest)"
            )
        for key in ("family", "params", "files", "dataset"):
            if key not in manifest:
                raise RegistryError(f"model {model_id!r}: manifest lacks {key!r}")
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
            return self._problems(model_id, manifest, d.digest, lambda: d.head(WEIGHTS), d.exists)

    def _problems(
        self,
        model_id: str,
        manifest: dict,
        digest: Callable[[str], tuple[str, int] | None],
        weights_head: Callable[[], bytes | None],
        exists: Callable[[str], bool],
    ) -> list[str]:
        """What is wrong with a parsed manifest and the files ``digest`` reads; [] when intact."""
        files = manifest["files"]
        if not isinstance(files, dict) or WEIGHTS not in files or ITEMS not in files:
            return [f"model {model_id!r}: manifest's file list is incomplete"]
        problems = []
        version = manifest.get("format_version")
        if version >= 2 and manifest.get(SEAL) != manifest_seal(manifest):
            problems.append(
                f"model {model_id!r}: {MANIFEST} was modified after saving (its content does not match its "
                f"seal {SEAL!r})"
            )
        for name, meta in files.items():
            if name not in (WEIGHTS, EXTRAS, ITEMS):
                problems.append(f"model {model_id!r}: manifest lists an unexpected file {name!r}")
                continue
            found = digest(name)
            meta = meta if isinstance(meta, dict) else {}
            if found is None:
                problems.append(f"model {model_id!r}: {name} is missing")
            elif found[1] != meta.get("bytes"):
                problems.append(
                    f"model {model_id!r}: {name} has {found[1]} bytes, manifest says "
                    f"{meta.get('bytes')} (truncated or replaced)"
                )
            elif found[0] != meta.get("sha256"):
                problems.append(f"model {model_id!r}: {name} does not match its sha256 (modified after saving)")
        if EXTRAS not in files and exists(EXTRAS):
            problems.append(f"model {model_id!r}: {EXTRAS} is not listed in the manifest (added after saving)")
        bound = (_safetensors_metadata(weights_head()) or {}).get(BINDING)
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
        replaced by a concurrent save is read again, never mixed.
        """
        return self._consistent(model_id, self._load_once)

    def _load_once(self, model_id: str) -> LoadedModel:
        with self._open(model_id) as d:
            manifest = self._read_manifest_once(model_id, d)
            listed = manifest["files"] if isinstance(manifest["files"], dict) else {}
            blobs: dict[str, bytes] = {}
            for name in (WEIGHTS, ITEMS, EXTRAS):
                if name in listed:
                    try:
                        blobs[name] = d.read(name)
                    except FileNotFoundError:
                        pass
            problems = self._problems(
                model_id,
                manifest,
                lambda n: (hashlib.sha256(blobs[n]).hexdigest(), len(blobs[n])) if n in blobs else None,
                lambda: blobs.get(WEIGHTS),
                d.exists,
            )
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
            items = pd.DataFrame(json.loads(blobs[ITEMS].decode("utf-8")))
            items["tags"] = [tuple(t) for t in items["tags"]]
            extras = _load_arrays(blobs[EXTRAS]) if EXTRAS in blobs else {}
        except RegistryError:
            raise
        except Exception as e:  # a file that passed its checksum but does not fit this code
            raise RegistryError(f"model {model_id!r} could not be rebuilt ({type(e).__name__}: {e}); retrain it") from e
        if len(items) != model.n_items_:
            raise RegistryError(f"model {model_id!r}: {len(items)} items stored for a model of {model.n_items_}")
        return LoadedModel(model=model, manifest=manifest, items=items, extras=extras)
