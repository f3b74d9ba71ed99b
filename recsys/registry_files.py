"""Opening the registry's files safely: what a reader checks before it reads or parses a byte.

The registry (:mod:`recsys.registry`) reads only

* regular files: a FIFO would block the reader forever, a device (``/dev/zero``) never ends, a
  directory cannot be read; each is refused by its kind, found with ``stat`` before the file is
  opened (``O_NONBLOCK``, and ``fstat`` again on the open file, so a swap in between is caught);
* inside the registry: a symbolic link is resolved and followed only when its target lies inside the
  registry's root (a model directory that is a link likewise);
* of a bounded size: the caller compares :attr:`OpenFile.size` with the manifest before reading
  (never a 6 GiB sparse file), and JSON it did not size itself (the manifest) has a hard cap;
* JSON of bounded depth: :func:`loads_json` refuses nesting deeper than :data:`MAX_JSON_DEPTH`
  (the decoder's RecursionError included), so no later ``json.dumps`` or walk can recurse away.

Every refusal is an :class:`UnsafeFile` (or ``ValueError`` for JSON) whose text completes the
sentence "<file> ...", for the registry to turn into its own error with the model's id.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

#: JSON deeper than this is refused (a manifest is about 5 levels deep, items.json 3).
MAX_JSON_DEPTH = 64
#: The most bytes of a manifest a reader parses (a real one is a few KiB to a few hundred KiB).
MAX_MANIFEST_BYTES = 16 << 20
#: The most bytes of a safetensors header a reader parses (ours are a few hundred bytes to a few KiB).
MAX_SAFETENSORS_HEADER = 1 << 20

_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafeFile(OSError):
    """A registry path that is not a regular file (or directory) inside the registry; ``str`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def kind_of(mode: int) -> str:
    """'a directory', 'a FIFO (named pipe)', ... for a ``st_mode``."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def real_root(root: str | Path) -> str:
    return os.path.realpath(root)


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip(os.sep) + os.sep)


def _follow_link(path: Path, root: Path) -> tuple[str, os.stat_result]:
    """A link's target inside the registry and its stat; UnsafeFile if it leads out or cannot be followed."""
    target = _resolve_link(path, root)
    try:
        return target, os.stat(target)
    except OSError as e:
        raise UnsafeFile(f"is a link that cannot be followed ({e.strerror})") from None


def _resolve_link(path: Path, root: str) -> str:
    """The target of the link ``path``, if it lies strictly inside ``root``; else UnsafeFile."""
    target = os.path.realpath(path)
    if not _inside(target, root):
        raise UnsafeFile(f"is a link to {target}, outside the registry")
    return target


def open_model_dir(path: Path, root: str) -> int | None:
    """A descriptor of the model directory ``path`` (None where ``dir_fd`` is unsupported).

    A link is followed only to a directory inside the registry. Raises FileNotFoundError when it is
    gone, UnsafeFile when it is a link out of the registry or not a directory.
    """
    st = os.lstat(path)
    where = str(path)
    if stat.S_ISLNK(st.st_mode):
        where, st = _follow_link(path, root)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFile(f"is {kind_of(st.st_mode)}, not a directory")
    if not _DIR_FD:
        return None
    try:
        return os.open(where, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    except NotADirectoryError:
        raise UnsafeFile("is not a directory") from None


@dataclass
class OpenFile:
    """A regular file opened for reading, with its size at the time it was opened."""

    file: BinaryIO
    size: int

    def close(self) -> None:
        self.file.close()


def open_regular(name: str, dir_path: Path, dir_fd: int | None, root: str) -> OpenFile:
    """Open ``dir_path / name`` if it is a regular file inside the registry ``root``.

    ``dir_fd`` (from :func:`open_model_dir`) makes the open relative to the directory already
    opened, so a concurrent rename of the directory cannot mix two of them. Raises
    FileNotFoundError when the name does not exist, UnsafeFile when it is anything but a regular
    file inside the registry (a link is resolved first).
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False) if dir_fd is not None else os.lstat(dir_path / name)
    target: str | None = None
    if stat.S_ISLNK(st.st_mode):
        target, st = _follow_link(dir_path / name, root)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"is {kind_of(st.st_mode)}, not a regular file")
    flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    try:
        if target is not None:
            fd = os.open(target, flags)
        elif dir_fd is not None:
            fd = os.open(name, flags, dir_fd=dir_fd)
        else:
            fd = os.open(dir_path / name, flags)
    except FileNotFoundError:
        raise
    except OSError as e:  # ELOOP: it became a link meanwhile; ENXIO: a socket
        raise UnsafeFile(f"cannot be opened ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the stat and the open
            raise UnsafeFile(f"is {kind_of(st.st_mode)}, not a regular file")
        if _O_NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_NONBLOCK)
        return OpenFile(os.fdopen(fd, "rb"), st.st_size)
    except BaseException:
        os.close(fd)
        raise


def json_too_deep(obj: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` containers (walked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        o, depth = stack.pop()
        if isinstance(o, dict):
            children = o.values()
        elif isinstance(o, list):
            children = o
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def loads_json(raw: bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` of UTF-8 bytes, refusing nesting deeper than ``limit``; ValueError says why."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"is nested deeper than {limit} levels") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"is not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e})") from None
    if json_too_deep(obj, limit):
        raise ValueError(f"is nested deeper than {limit} levels")
    return obj


def safetensors_header(head: bytes, file_size: int | None = None) -> dict:
    """The parsed JSON header of a safetensors file from its first bytes; ValueError says what is wrong.

    The 8-byte length is checked against :data:`MAX_SAFETENSORS_HEADER` (and the file's size) before
    anything is parsed, and the JSON's depth is bounded.
    """
    if len(head) < 8:
        raise ValueError("is too short for a safetensors file")
    n = int.from_bytes(head[:8], "little")
    if n > MAX_SAFETENSORS_HEADER:
        raise ValueError(f"has a safetensors header of {n:,} bytes (at most {MAX_SAFETENSORS_HEADER:,} are read)")
    if file_size is not None and 8 + n > file_size:
        raise ValueError(f"has a safetensors header of {n:,} bytes, longer than the file")
    if len(head) < 8 + n:
        raise ValueError("ends inside its safetensors header")
    header = loads_json(head[8 : 8 + n])
    if not isinstance(header, dict):
        raise ValueError("has a safetensors header that is not a JSON object")
    return header
