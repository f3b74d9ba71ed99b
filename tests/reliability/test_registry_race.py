"""Two *processes* saving one new model id with ``overwrite=False`` at the same moment.

Each race (``RECSYS_RACES`` of them, 50 in CI) has two warm worker processes, each with its own
fitted model, wait on one barrier and then save the same new id without ``overwrite``. Exactly one
may be told "saved"; the other must get a RegistryError that says what happened; the stored model
must be the winner's (its weights and its info), whole; nothing may be left behind. Before the fix
(a check, then a rename that fell through to an exchange) both were told "saved" in about half the
races and one model silently replaced the other.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

from recsys.data.synthetic import generate_synthetic
from recsys.models import EASE
from recsys.registry import Registry, RegistryError

from .conftest import count, log_figures
from .registry_worker import weights_digest

L2 = {"A": 10.0, "B": 1000.0}


def _racer(name: str, root: str, races: int, barrier, results) -> None:
    ds = generate_synthetic(n_users=60, n_items=40, n_artists=10, n_tags=4, seed=3)
    model = EASE(l2=L2[name]).fit(ds)
    reg = Registry(root)
    for k in range(races):
        barrier.wait()
        try:
            reg.save(model, dataset=ds, model_id=f"race-{k}", info={"writer": name}, overwrite=False)
            results.put((k, name, "saved", ""))
        except RegistryError as e:
            results.put((k, name, "refused", str(e)))
        except BaseException as e:  # anything else is a failure the parent reports
            results.put((k, name, "error", f"{type(e).__name__}: {e}"))


def test_two_processes_saving_one_new_id_never_both_win(tmp_path: Path) -> None:
    races = count("RECSYS_RACES")
    root = tmp_path / "store"
    ctx = mp.get_context("spawn")  # fresh interpreters: no fork of a process with BLAS or torch threads
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(n, str(root), races, barrier, results)) for n in L2]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    outcomes: dict[int, dict[str, tuple[str, str]]] = {}
    try:
        for _ in range(2 * races):
            k, name, what, msg = results.get(timeout=120)
            outcomes.setdefault(k, {})[name] = (what, msg)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    elapsed = time.perf_counter() - t0
    ds = generate_synthetic(n_users=60, n_items=40, n_artists=10, n_tags=4, seed=3)
    digests = {n: weights_digest(EASE(l2=l2).fit(ds).state_dict()) for n, l2 in L2.items()}
    reg = Registry(root)
    lost, both_refused, errors, wrong = [], [], [], []
    for k in range(races):
        got = outcomes[k]
        winners = [n for n, (what, _) in got.items() if what == "saved"]
        errors += [f"race {k}: {n}: {msg}" for n, (what, msg) in got.items() if what == "error"]
        if len(winners) > 1:
            lost.append(k)
        elif not winners:
            both_refused.append(k)
        else:
            loser = next(n for n in got if n != winners[0])
            assert "another process" in got[loser][1] or "already exists" in got[loser][1], got[loser][1]
            loaded = reg.load(f"race-{k}")
            stored = loaded.manifest["info"]["writer"]
            if stored != winners[0] or weights_digest(loaded.model.state_dict()) != digests[winners[0]]:
                wrong.append((k, winners[0], stored))
    leftovers = [p for p in os.listdir(root) if p.startswith(".")]
    log_figures(
        "registry_overwrite_false_race",
        races=races,
        lost_updates=len(lost),
        both_refused=len(both_refused),
        wrong_model_stored=len(wrong),
        other_errors=len(errors),
        wins={n: sum(1 for k in outcomes if outcomes[k].get(n, ("",))[0] == "saved") for n in L2},
        wall_s=round(elapsed, 1),
    )
    assert not errors, errors[:3]
    assert not lost, f"both writers were told 'saved' in {len(lost)} of {races} races (e.g. race {lost[0]})"
    assert not both_refused, f"neither writer won races {both_refused[:5]}"
    assert not wrong, f"the stored model is not the winner's: {wrong[:5]}"
    assert not leftovers, leftovers
