"""Shared helpers of the reliability tests: counts from the environment and a figures log.

CI runs every test here with small counts; the figures in ``benchmarks/results/reliability.md`` come
from the same tests run with the counts raised (the command is in that file):

==========================  =======  ======  =================================================
variable                    CI       full    what
==========================  =======  ======  =================================================
``RECSYS_CSV_EXAMPLES``     1000     1000    generated malformed CSV imports (hypothesis)
``RECSYS_PROPERTY_EXAMPLES``  60     300     metric / steering invariant examples (each)
``RECSYS_FAULT_TRIALS``     12       60      SIGKILLed saves
``RECSYS_READ_SECONDS``     3        20      seconds of reads while a writer overwrites
``RECSYS_APP_SEQUENCES``    4        25      random widget sequences through AppTest
``RECSYS_SLIDER_MOVES``     40       500     slider moves of the app memory test
``RECSYS_BIG_CSV_ROWS``     300000   1e7     rows of the big-import test
``RECSYS_FUZZ_REGISTRIES``  500      5000    structurally damaged registries (hypothesis)
``RECSYS_RACES``            50       200     ``overwrite=False`` races between two processes
==========================  =======  ======  =================================================

With ``RECSYS_RELIABILITY_LOG=path.jsonl`` every test appends one JSON line of its figures.
"""

from __future__ import annotations

import json
import os
import platform
import time

import pytest

DEFAULTS = {
    "RECSYS_CSV_EXAMPLES": 1000,
    "RECSYS_PROPERTY_EXAMPLES": 60,
    "RECSYS_FAULT_TRIALS": 12,
    "RECSYS_READ_SECONDS": 3,
    "RECSYS_APP_SEQUENCES": 4,
    "RECSYS_SLIDER_MOVES": 40,
    "RECSYS_BIG_CSV_ROWS": 300_000,
    "RECSYS_FUZZ_REGISTRIES": 500,
    "RECSYS_RACES": 50,
}


def count(name: str) -> int:
    """The count ``name`` from the environment (see the table above), else its CI default."""
    raw = os.environ.get(name, "").strip()
    return int(float(raw)) if raw else DEFAULTS[name]


def log_figures(test: str, **figures) -> None:
    """Append ``{test, figures..., machine}`` to ``$RECSYS_RELIABILITY_LOG`` (no-op when unset)."""
    path = os.environ.get("RECSYS_RELIABILITY_LOG")
    if not path:
        return
    rec = {"test": test, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **figures}
    rec["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, default=str) + "\n")


@pytest.fixture(scope="session")
def built_registry(tmp_path_factory: pytest.TempPathFactory):
    """The small registry of the AppTest tests (tests/app/conftest.py), built once for these tests."""
    from recsys.data.synthetic import generate_synthetic
    from recsys.defaults import build_default_registry
    from recsys.projection import pca_reducer
    from recsys.registry import Registry

    from ..app.conftest import SMALL_MODELS

    root = tmp_path_factory.mktemp("registry")
    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    build_default_registry(Registry(root), dataset=small, models=SMALL_MODELS, reducer_factory=pca_reducer)
    return root
