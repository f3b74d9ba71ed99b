"""Download the official data set archives (``python -m recsys data fetch NAME``).

The archive is streamed to a partial file outside ``dest_dir`` (``partial_dir``, default
``<tmp>/recsys-fetch``), resumed with an HTTP ``Range`` request when an earlier attempt broke off
and the server supports it, and checked against a pinned sha256 (and the zip CRCs). It is
extracted into a hidden temporary folder inside ``dest_dir`` that is renamed into place
(``dest_dir/<folder>``) only when complete, so a failed or interrupted fetch leaves nothing in
``dest_dir``. Members with absolute paths or ``..`` (zip slip) are refused before anything is
written. The folder gets an ``archive.sha256`` file (``sha256sum`` format) recording what it was
extracted from.

Checksums: sha256 and sizes of ``ml-100k.zip`` / ``ml-1m.zip`` as published in TensorFlow
Datasets' ``url_checksums/movielens.txt`` (their md5 matches GroupLens' ``.md5`` files); the
Last.fm archive's sha256 as pinned by several independent projects. They could not be re-checked
by download where this module was written (no network).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger("recsys")

#: Largest total size of the extracted files (guards against zip bombs).
MAX_EXTRACTED_BYTES = 2 * 1024**3
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Archive:
    """Where a data set comes from and what its archive must contain."""

    url: str
    sha256: str | None
    size: int | None
    folder: str  # directory name under dest_dir
    required: tuple[str, ...]  # files the extracted folder must hold


ARCHIVES: dict[str, Archive] = {
    "lastfm-2k": Archive(
        "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",
        "6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c",
        None,
        "hetrec2011-lastfm-2k",
        ("artists.dat", "user_artists.dat", "tags.dat", "user_taggedartists.dat"),
    ),
    "ml-1m": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        5_917_549,
        "ml-1m",
        ("ratings.dat", "movies.dat", "users.dat"),
    ),
    "ml-100k": Archive(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        4_924_029,
        "ml-100k",
        ("u.data", "u.item", "u.user"),
    ),
}


class FetchError(RuntimeError):
    """A download failed or its archive is not what it should be."""


class ChecksumError(FetchError):
    """The downloaded archive's sha256 differs from the pinned one."""


class UnsafeArchiveError(FetchError):
    """An archive member would be written outside the target folder (zip slip)."""


Progress = Callable[[int, int | None], None]


def default_fetch_dir() -> Path:
    """``$RECSYS_DATA_DIR`` if set, else ``~/.cache/recsys/data`` (where ``resolve_data_dir`` looks)."""
    env = os.environ.get("RECSYS_DATA_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "recsys" / "data"


# ---- download --------------------------------------------------------------------------------
def _open(url: str, offset: int, timeout: float):
    if not url.startswith(("http://", "https://", "file:")):
        raise FetchError(f"unsupported URL {url!r}: use http(s):// or file:")
    req = urllib.request.Request(url, headers={"User-Agent": "recsys-fetch"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(req, timeout=timeout)


def _download(url: str, part: Path, progress: Progress | None, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming from its current size when the server allows."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not offset:  # 416: our partial file is already complete, or stale
            raise FetchError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
        part.unlink()
        offset, resp = 0, _open(url, 0, timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise FetchError(f"cannot reach {url}: {getattr(e, 'reason', e)}; check the network or pass url=") from None
    with resp:
        resumed = offset > 0 and getattr(resp, "status", 200) == 206
        if offset and not resumed:
            offset = 0  # the server sent the whole file
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        done = offset
        with open(part, "ab" if resumed else "wb") as f:
            try:
                while block := resp.read(_BLOCK):
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
            except (OSError, http.client.HTTPException) as e:
                raise FetchError(
                    f"download of {url} broke off after {done:,} bytes ({e}); run the fetch again to resume"
                ) from None
    if total is not None and done != total:
        raise FetchError(f"download of {url} stopped at {done:,} of {total:,} bytes; run the fetch again to resume")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---- extraction ------------------------------------------------------------------------------
def _safe_members(zf: zipfile.ZipFile, archive_name: str) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths, drive letters and ``..`` components."""
    total = 0
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
            raise UnsafeArchiveError(
                f"{archive_name}: member {info.filename!r} would be written outside the target folder "
                f"(absolute path or '..'); refusing to extract this archive"
            )
        total += info.file_size
    if total > MAX_EXTRACTED_BYTES:
        raise FetchError(f"{archive_name}: {total:,} bytes when extracted, more than {MAX_EXTRACTED_BYTES:,}")
    return zf.infolist()


def _content_root(tmp: Path) -> Path:
    """The extracted folder's content root: a single top-level directory is unwrapped."""
    entries = [p for p in tmp.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp


def _extract(archive: Path, dest_dir: Path, folder: str, required: tuple[str, ...], digest: str) -> Path:
    """Extract into a temp folder in ``dest_dir``, check it, then rename it to ``dest_dir/folder``."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise FetchError(f"{archive.name} is not a zip archive (truncated or an error page?)") from None
    with zf:
        members = _safe_members(zf, archive.name)
        bad = zf.testzip()
        if bad is not None:
            raise FetchError(f"{archive.name}: member {bad!r} is corrupt (CRC mismatch)")
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".partial", dir=dest_dir))
        try:
            zf.extractall(tmp, members=members)
            root = _content_root(tmp)
            missing = [f for f in required if not (root / f).is_file()]
            if missing:
                raise FetchError(f"{archive.name} does not contain {', '.join(missing)}; is it the right archive?")
            (root / "archive.sha256").write_text(f"{digest}  {archive.name}\n")
            target = dest_dir / folder
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".old", dir=dest_dir))
                os.replace(target, old / folder)
                os.replace(root, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(root, target)
            return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- public ----------------------------------------------------------------------------------
def fetch_dataset(
    name: str,
    dest_dir: str | Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
    partial_dir: str | Path | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download and extract an official data set archive; return the data set's folder.

    Parameters
    ----------
    name : str
        ``"lastfm-2k"``, ``"ml-1m"`` or ``"ml-100k"`` (see :data:`ARCHIVES`).
    dest_dir : str or Path, optional
        Data directory; the data lands in ``dest_dir/<folder>`` (``hetrec2011-lastfm-2k``, ``ml-1m``,
        ``ml-100k``), where :func:`recsys.data.load_dataset` looks. Default :func:`default_fetch_dir`.
    url : str, optional
        Another location of the same archive (a mirror, or a test server).
    sha256 : str, optional
        Expected sha256 of the archive; default the pinned one. Pass ``""`` to skip the check
        (the zip CRCs are still verified and the computed hash is recorded).
    progress : callable, optional
        ``progress(bytes_done, bytes_total_or_None)`` while downloading.
    force : bool
        Download again even if the folder already holds the data set (it is replaced atomically).
    partial_dir : str or Path, optional
        Where the archive is downloaded (kept there after a failure so the next run resumes).
    timeout : float
        Seconds to wait for the server.

    Raises
    ------
    FetchError
        Network failure, truncated download, corrupt or unexpected archive.
    ChecksumError
        The archive's sha256 is not the expected one (the download is deleted).
    UnsafeArchiveError
        The archive has members with absolute paths or ``..``.
    """
    if name not in ARCHIVES:
        raise ValueError(f"unknown data set {name!r} to fetch; choose one of {', '.join(ARCHIVES)}")
    spec = ARCHIVES[name]
    dest = Path(dest_dir).expanduser() if dest_dir is not None else default_fetch_dir()
    target = dest / spec.folder
    if not force and all((target / f).is_file() for f in spec.required):
        log.info("%s already present in %s", name, target)
        return target
    src = url or spec.url
    expected = spec.sha256 if sha256 is None else sha256.lower().strip()
    pdir = Path(partial_dir) if partial_dir is not None else Path(tempfile.gettempdir()) / "recsys-fetch"
    pdir.mkdir(parents=True, exist_ok=True)
    archive = pdir / f"{name}--{PurePosixPath(src.split('?')[0]).name or 'archive.zip'}"
    part = archive.with_name(archive.name + ".part")
    log.info("fetching %s from %s", name, src)
    _download(src, part, progress, timeout)
    digest = _sha256(part)
    if expected and digest != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{src}: sha256 {digest} does not match the expected {expected}; the download was deleted. "
            f"If the publisher changed the archive, check it and pass sha256= explicitly"
        )
    if not expected:
        log.warning("%s: no checksum to compare with; sha256 %s recorded in archive.sha256", name, digest)
    os.replace(part, archive)
    try:
        return _extract(archive, dest, spec.folder, spec.required, digest)
    finally:
        archive.unlink(missing_ok=True)
