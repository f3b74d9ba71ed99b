"""How many torch threads training uses.

On a 2-core machine where anything else runs, two intra-op threads make every small op wait for
the other core: measured on the shared development box with one core busy, the default MLP fit
on the synthetic data took 144 s with 2 threads and 13 s with 1 (Multi-VAE 210 s with 2). So
training uses 1 thread on machines with at most 2 cores and half the cores elsewhere;
``$RECSYS_TORCH_THREADS`` overrides it. Torch is imported only if it is installed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

ENV = "RECSYS_TORCH_THREADS"


def training_threads() -> int:
    """Threads for training: ``$RECSYS_TORCH_THREADS``, else 1 on <= 2 cores, else half the cores."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"${ENV} must be a positive integer, got {raw!r}") from None
        if n < 1:
            raise ValueError(f"${ENV} must be a positive integer, got {raw!r}")
        return n
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores // 2


@contextlib.contextmanager
def training_torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` (default :func:`training_threads`) torch threads; restores the old count."""
    n = training_threads() if n is None else n
    try:
        import torch
    except ImportError:
        yield n
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)
