"""The model registry: ``models_store/<model_id>/`` directories, verified before every load.

A model directory holds

* ``manifest.json``: format version, model id, family, hyperparameters, dataset (name,
  fingerprint, sizes), metrics, training log, created time, package versions, and the sha256 and
  size of every other file;
* ``weights.safetensors``: the model's learned arrays (``Recommender.state_dict()``);
* ``extras.safetensors`` (optional): arrays stored with the model (tag centroids, UMAP map, ...);
* ``items.json``: the item ids, titles, artists and tags, in the model's column order.

Writes are atomic: everything goes to a hidden temporary directory that is renamed into place,
so a reader never sees a half-written model and a crash leaves at most a ``.tmp-*`` directory that
``list`` ignores and ``clean`` removes. Loads verify checksums and the format version first and
refuse anything tampered, truncated or incompatible with a :class:`RegistryError` that says what to
do. Nothing here unpickles.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
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

FORMAT_VERSION = 1
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


def _save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


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
            _save_arrays(model.state_dict(), tmp / WEIGHTS)
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
            (tmp / ITEMS).write_text(json.dumps(items, ensure_ascii=False))
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
                "files": {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in files},
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
            for f in [*files, MANIFEST]:
                with open(tmp / f, "rb+") as fh:
                    os.fsync(fh.fileno())
            _fsync_dir(tmp)
            if final.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".trash-{model_id}-", dir=self.root))
                os.replace(final, trash / model_id)
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return model_id

    def remove(self, model_id: str) -> None:
        path = self._dir(model_id)
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{model_id}-", dir=self.root))
        os.replace(path, trash / model_id)  # atomic disappearance, then the slow delete
        shutil.rmtree(trash, ignore_errors=True)

    def clean(self) -> list[str]:
        """Remove leftovers of interrupted writes (``.tmp-*``, ``.trash-*``); returns their names."""
        removed = []
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith((".tmp-", ".trash-")):
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

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and _ID_RE.match(p.name)
        )

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
        path = self.root / check_model_id(model_id) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is missing ({path})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RegistryError(
                f"model {model_id!r}: {MANIFEST} is not valid JSON ({e}); remove the model and retrain it"
            ) from None
        if not isinstance(manifest, dict):
            raise RegistryError(f"model {model_id!r}: {MANIFEST} is not a JSON object")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise RegistryError(
                f"model {model_id!r} was written in registry format {version!r}; this recsys "
                f"({__version__}) reads format {FORMAT_VERSION}: retrain it with `python -m recsys train`"
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
        """Every problem found (empty list = intact): manifest, file sizes and sha256 sums."""
        try:
            path = self._dir(model_id)
            manifest = self.read_manifest(model_id)
        except RegistryError as e:
            return [str(e)]
        problems = []
        files = manifest["files"]
        if not isinstance(files, dict) or WEIGHTS not in files or ITEMS not in files:
            return [f"model {model_id!r}: manifest's file list is incomplete"]
        for name, meta in files.items():
            if name not in (WEIGHTS, EXTRAS, ITEMS):
                problems.append(f"model {model_id!r}: manifest lists an unexpected file {name!r}")
                continue
            f = path / name
            if not f.is_file():
                problems.append(f"model {model_id!r}: {name} is missing")
            elif f.stat().st_size != meta.get("bytes"):
                problems.append(
                    f"model {model_id!r}: {name} has {f.stat().st_size} bytes, manifest says "
                    f"{meta.get('bytes')} (truncated or replaced)"
                )
            elif _sha256(f) != meta.get("sha256"):
                problems.append(f"model {model_id!r}: {name} does not match its sha256 (modified after saving)")
        return problems

    def load(self, model_id: str) -> LoadedModel:
        """Verify, then rebuild the model from family + params + weights. Raises RegistryError."""
        problems = self.verify(model_id)
        if problems:
            raise RegistryError(
                "refusing to load: "
                + "; ".join(problems)
                + ". Remove the model (`python -m recsys registry remove`) and retrain it."
            )
        path = self.root / model_id
        manifest = self.read_manifest(model_id)
        try:
            cls = get_model_class(manifest["family"])
        except KeyError as e:
            raise RegistryError(f"model {model_id!r}: {e.args[0]}") from None
        try:
            model = cls(**manifest["params"])
            model.load_state_dict(_load_arrays(path / WEIGHTS))
            model.training_log_ = manifest.get("training_log") or []
            raw = json.loads((path / ITEMS).read_text())
            items = pd.DataFrame(raw)
            items["tags"] = [tuple(t) for t in items["tags"]]
            extras = _load_arrays(path / EXTRAS) if (path / EXTRAS).is_file() else {}
        except RegistryError:
            raise
        except Exception as e:  # a file that passed its checksum but does not fit this code
            raise RegistryError(f"model {model_id!r} could not be rebuilt ({type(e).__name__}: {e}); retrain it") from e
        if len(items) != model.n_items_:
            raise RegistryError(f"model {model_id!r}: {len(items)} items stored for a model of {model.n_items_}")
        return LoadedModel(model=model, manifest=manifest, items=items, extras=extras)
