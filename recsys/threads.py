"""How many torch threads training uses.

On a 2-core machine where anything else runs, two intra-op threads make every small op wait for
the other core: measured on the shared development box with one core busy, the default MLP fit
on the synthetic data took 144 s with 2 threads and 13 s with 1 (Multi-VAE 210 s with 2), and the
whole demo build (7 models + latent maps) 16 min at load 5, 3 min 13 s with one core busy and
torch alone limited, 99 s with torch, numba and BLAS limited (97 s idle). So training uses 1
thread on machines with at most 2 cores and half the cores elsewhere;
``$RECSYS_TORCH_THREADS`` overrides it. Torch is imported only if it is installed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

ENV = "RECSYS_TORCH_THREADS"


def positive_int_from_env(name: str) -> int | None:
    """``$name`` as a positive integer, None when unset or blank; anything else is a ValueError naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"${name} must be a positive integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"${name} must be a positive integer, got {raw!r}")
    return n


def training_threads() -> int:
    """Threads for training: ``$RECSYS_TORCH_THREADS``, else 1 on <= 2 cores, else half the cores."""
    n = positive_int_from_env(ENV)
    if n is not None:
        return n
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores // 2


def evaluation_jobs() -> int:
    """Fits ``evaluate`` runs at once: the cores divided by :func:`training_threads` (2 on 2 cores), at least 1."""
    return max(1, (os.cpu_count() or 1) // training_threads())


@contextlib.contextmanager
def training_torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` (default :func:`training_threads`) torch and numba threads; restores both.

    numba's pool (UMAP's latent maps) and the BLAS/OpenMP pools of numpy and scipy (threadpoolctl)
    are limited too: their workers otherwise compete with the torch thread on a busy 2-core machine.
    """
    n = training_threads() if n is None else n
    with contextlib.ExitStack() as stack:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            old = torch.get_num_threads()
            torch.set_num_threads(n)
            stack.callback(torch.set_num_threads, old)
        try:
            import numba
        except ImportError:
            numba = None
        if numba is not None:
            old_numba = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            stack.callback(numba.set_num_threads, old_numba)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            threadpool_limits = None
        if threadpool_limits is not None:  # numpy/scipy BLAS (validation scoring, EASE, SVD fold-in)
            stack.enter_context(threadpool_limits(limits=n))
        yield n
