"""A registry writer for the fault-injection tests: a subprocess whose forked children are SIGKILLed mid-save.

    python tests/reliability/registry_worker.py ROOT MODEL_ID

Fits two small EASE models (version "A": l2=50, "B": l2=500) on a small synthetic catalogue, then
prints one JSON line: ``{"ready": true, "digests": {...}, "save_s": ...}`` (the sha256 of each
version's arrays, so a reader can tell a whole model from a mixed one; the time one save took).
Then it reads commands from stdin, one per line:

``fork FIRST``  fork a child that saves FIRST, then the other version, alternately, with
                ``overwrite=True``, until it is killed; prints ``{"pid": N}`` at once.
``save V``      save version V in this process (not killed); prints ``{"saved": "V"}``.

With ``RECSYS_TEST_NO_EXCHANGE=1`` the worker saves the way systems without an atomic directory
exchange do (two renames), to test that fallback too.

Children are reaped automatically (SIGCHLD ignored), so a killed child's pid disappears at once.
Forking a warm process makes a trial cost milliseconds instead of an interpreter start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import recsys.registry  # noqa: E402
from recsys.data.synthetic import generate_synthetic  # noqa: E402
from recsys.models.ease import EASE  # noqa: E402
from recsys.registry import Registry  # noqa: E402

if os.environ.get("RECSYS_TEST_NO_EXCHANGE") == "1":
    recsys.registry._rename_exchange = lambda a, b: False

VERSIONS = {"A": 50.0, "B": 500.0}


def weights_digest(state: dict) -> str:
    """sha256 over a state dict's arrays (name, dtype, shape, bytes), independent of the file layout."""
    h = hashlib.sha256()
    for name in sorted(state):
        a = np.ascontiguousarray(state[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def main() -> None:
    root, model_id = sys.argv[1], sys.argv[2]
    ds = generate_synthetic(n_users=200, n_items=500, n_artists=60, n_tags=6, seed=1)
    models = {v: EASE(l2=l2).fit(ds) for v, l2 in VERSIONS.items()}
    reg = Registry(root)

    def save(v: str, n: int = 0) -> None:
        extras = {"marker": np.full(64, n, dtype=np.int64)}
        reg.save(models[v], dataset=ds, model_id=model_id, info={"version": v}, extras=extras, overwrite=True)

    t0 = time.perf_counter()
    Registry(Path(root).parent / "warmup").save(models["A"], dataset=ds, model_id="warmup", overwrite=True)
    save_s = time.perf_counter() - t0
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    digests = {v: weights_digest(m.state_dict()) for v, m in models.items()}
    print(json.dumps({"ready": True, "digests": digests, "save_s": save_s}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "fork":
            pid = os.fork()
            if pid == 0:  # the child: save until killed
                try:
                    order = [arg, *(v for v in VERSIONS if v != arg)]
                    n = 0
                    while True:
                        save(order[n % 2], n)
                        n += 1
                finally:
                    os._exit(1)
            print(json.dumps({"pid": pid}), flush=True)
        elif cmd == "save":
            save(arg)
            print(json.dumps({"saved": arg}), flush=True)
        else:
            print(json.dumps({"error": f"unknown command {line!r}"}), flush=True)


if __name__ == "__main__":
    main()
