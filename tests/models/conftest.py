"""Model tests run torch on one thread.

The test data are tiny, so a batch is many small ops; on a machine whose few cores are shared, a
second intra-op thread makes each op wait for the scheduler (10x slower here) and buys nothing.
Results are identical either way (the tests check determinism within one setting).
"""

from __future__ import annotations

import pytest


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
