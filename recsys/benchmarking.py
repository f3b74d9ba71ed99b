"""Write benchmark results as committed markdown: the table plus command, machine and versions."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .io import atomic_write_text
from .registry import package_versions


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_result(
    path: str | Path,
    *,
    title: str,
    table: str,
    argv: Sequence[str],
    results: pd.DataFrame | None = None,
    notes: str = "",
) -> None:
    """A markdown file: title, table, notes, the command that produced it, machine and versions."""
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    parts = [
        f"# {title}",
        "",
        table,
        "",
    ]
    if notes:
        parts += [notes, ""]
    if results is not None and "params" in results:
        chosen = results[["model", "seed", "params"]].to_string(index=False)
        parts += ["Hyperparameters chosen on validation users, per seed:", "", "```", chosen, "```", ""]
    parts += [
        f"- command: `{' '.join(shlex.quote(a) for a in argv)}`",
        f"- machine: {machine_description()}",
        f"- versions: {versions}",
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        "",
    ]
    atomic_write_text(path, "\n".join(parts))
