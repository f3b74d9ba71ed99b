"""Shared fixtures.

Torch runs on one thread in tests: the test data are tiny, so a batch is many small ops; on a machine
whose few cores are shared, a second intra-op thread makes each op wait for the scheduler (10x
slower here) and buys nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Real UMAP costs ~10 s of numba compilation per process: models trained in tests get a PCA layout
# instead (tests/test_projection.py runs the real thing once, marked slow).
os.environ.setdefault("RECSYS_MAP_REDUCER", "pca")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data directory (``recsys.data.resolve_data_dir()``); skips the test where it is absent."""
    from recsys.data import resolve_data_dir

    d = resolve_data_dir()
    if d is None or not d.is_dir():
        pytest.skip(f"real data not found at {d or '../shared/data'}; set RECSYS_DATA_DIR")
    return d


@pytest.fixture(autouse=True, scope="session")
def _torch_single_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
