"""Training jobs that outlive the page that started them.

The "Your data" page trains several families on an imported data set. Training takes seconds to
minutes, longer than a page should block, and must survive the person switching pages, closing the
tab or the server restarting. So a job is a detached process (``python -m recsys.jobs JOB_DIR``,
its own session, so a cancel stops it and everything it started) and a folder that says everything
about it::

    <data dir>/jobs/<job id>/
        spec.json     what to train: data set, families, epochs cap, registry, replace or not
        status.json   state, pid, per-model progress and metrics (rewritten atomically)
        log.txt       what the runner printed, the full traceback of a failure included
        cancel        present once a cancel was asked for

Each model goes through :func:`recsys.training.train_from_config` (the CLI's ``train``), one after
another; a failure costs only its own model, and the registry's atomic save means a cancel or a
crash never leaves half a model. :func:`job_status` works out the real state from the file and the
process (a runner that died without writing "finished" is reported as such, with its log).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .io import atomic_write_text

#: Families the page offers, and the ones it ticks by default (a latent model, the two yardsticks,
#: and SVD, which the Recommend page shows next to every model).
JOB_FAMILIES = ("multvae", "ease", "svd", "popularity", "dlae", "mlp", "recvae", "autoencoder", "flow")
DEFAULT_JOB_FAMILIES = ("multvae", "ease", "svd", "popularity")
#: Each family's name and what it is, for the page's chooser.
JOB_FAMILY_NOTES = {
    "multvae": ("Multi-VAE", "variational autoencoder, latent (seconds to minutes)"),
    "ease": ("EASE", "the linear yardstick (seconds; up to 30k items)"),
    "svd": ("SVD", "the baseline column on Recommend"),
    "popularity": ("Popularity", "most popular first, the floor"),
    "dlae": ("DLAE", "low-rank linear autoencoder, latent (seconds; up to ~20k items)"),
    "mlp": ("MLP", "MLP autoencoder, latent"),
    "recvae": ("RecVAE", "VAE with a composite prior, latent (slower)"),
    "autoencoder": ("Autoencoder", "denoising autoencoder, latent"),
    "flow": ("Flow", "normalising flow with a Gaussian latent (slower)"),
}

#: Seconds a cancelled runner gets to stop on SIGTERM before a second cancel kills it.
CANCEL_GRACE_S = 10.0

FINISHED = ("done", "failed", "cancelled", "died")
logger = logging.getLogger("recsys.jobs")


class JobError(RuntimeError):
    """A job cannot be started (another runs, a bad spec); the message says what to do."""


class JobCancelled(BaseException):
    """Raised in the runner by SIGTERM: unwinds training without being caught as an ordinary error."""


def jobs_root(data_dir: str | Path | None = None) -> Path:
    """``<data dir>/jobs`` (the writable data directory, :func:`recsys.data.data_home`)."""
    from .data import data_home

    return data_home(data_dir) / "jobs"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_status(job_dir: Path, status: dict) -> None:
    status["updated"] = time.time()
    atomic_write_text(job_dir / "status.json", json.dumps(status, indent=1))


def job_config(family: str, dataset: str, epochs: int | None) -> dict[str, Any]:
    """The training config of one family: its YAML template, this data set, epochs capped at ``epochs``."""
    from .training import load_template

    cfg = load_template(family)
    params = dict(cfg.get("params") or {})
    if epochs is not None and "epochs" in params:
        params["epochs"] = min(int(params["epochs"]), int(epochs))
    if epochs is not None and "flow_epochs" in params:
        params["flow_epochs"] = min(int(params["flow_epochs"]), int(epochs))
    return {**cfg, "dataset": dataset, "model_id": f"{family}-{dataset}", "seed": 0, "params": params}


# ---- the page's side -----------------------------------------------------------------------------
def _alive(pid: int, job_dir: Path) -> bool:
    """Whether the job's runner is still running (not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust kill(0)
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and str(job_dir) in cmdline


def list_jobs(root: str | Path) -> list[Path]:
    """Job folders under ``root``, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    jobs = [p for p in root.iterdir() if p.is_dir() and (p / "spec.json").is_file()]
    return sorted(jobs, key=lambda p: p.name, reverse=True)


def job_status(job_dir: str | Path) -> dict:
    """The job's status.json with its true ``state``: a runner gone without finishing is ``died``
    (``cancelled`` if a cancel was asked for), and ``cancelling`` while a cancelled one still runs."""
    job_dir = Path(job_dir)
    status = _read_json(job_dir / "status.json") or {"state": "starting", "models": []}
    spec = _read_json(job_dir / "spec.json") or {}
    status.setdefault("models", [])
    status["job"] = job_dir.name
    status["dataset"] = spec.get("dataset")
    cancel = job_dir / "cancel"
    if status["state"] not in FINISHED:
        pid = status.get("pid")
        started = spec.get("created", 0.0)
        if pid is None:
            # the runner writes its pid first thing; give a slow start a minute before calling it dead
            if time.time() - started > 60:
                status["state"] = "died"
        elif not _alive(int(pid), job_dir):
            status["state"] = "cancelled" if cancel.exists() else "died"
        elif cancel.exists():
            status["state"] = "cancelling"
    if status["state"] == "died":
        status.setdefault("error", "the training process stopped without finishing (see the log)")
    return status


def active_job(root: str | Path) -> Path | None:
    """The job still running under ``root``, if any (one at a time: training uses every core it gets)."""
    for job in list_jobs(root):
        if job_status(job)["state"] not in FINISHED:
            return job
    return None


def progress_fraction(status: dict) -> float:
    """0..1 over all models: finished models count 1, the one training its share of epochs."""
    models = status.get("models") or []
    if not models:
        return 0.0
    done = 0.0
    for m in models:
        if m.get("state") in ("done", "failed", "cancelled"):
            done += 1.0
        elif m.get("state") == "training" and m.get("epochs"):
            done += min(m.get("epoch", 0) / m["epochs"], 0.95)
    return min(done / len(models), 1.0)


def log_tail(job_dir: str | Path, lines: int = 40) -> str:
    """The last ``lines`` lines of the job's log."""
    try:
        with open(Path(job_dir) / "log.txt", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _start_lock(root: Path):
    import fcntl

    with open(root / ".start.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def start_job(
    *,
    dataset: str,
    families: list[str],
    registry_root: str | Path,
    data_dir: str | Path | None = None,
    epochs: int | None = None,
    replace: bool = False,
) -> Path:
    """Start a detached runner that trains ``families`` on the imported data set ``dataset``; its folder.

    Refuses (:class:`JobError`) while another job runs, for an unknown family, or when a model id
    exists and ``replace`` is false.
    """
    from .registry import Registry

    if not families:
        raise JobError("choose at least one family to train")
    unknown = [f for f in families if f not in JOB_FAMILIES]
    if unknown:
        raise JobError(f"unknown families {unknown}; choose from {', '.join(JOB_FAMILIES)}")
    have = set(Registry(registry_root).ids())
    existing = [f"{f}-{dataset}" for f in families if f"{f}-{dataset}" in have]
    if existing and not replace:
        raise JobError(f"the registry already has {', '.join(existing)}: tick 'replace' to train them again")
    root = jobs_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _start_lock(root):
        running = active_job(root)
        if running is not None:
            raise JobError(
                f"a training job is running already ({running.name}, data set "
                f"{job_status(running)['dataset']}); wait for it or cancel it"
            )
        job_dir = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        job_dir.mkdir()
        spec = {
            "dataset": dataset,
            "families": list(families),
            "epochs": epochs,
            "registry": str(Path(registry_root).resolve()),
            "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
            "replace": bool(replace),
            "created": time.time(),
        }
        atomic_write_text(job_dir / "spec.json", json.dumps(spec, indent=1))
        with open(job_dir / "log.txt", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "recsys.jobs", str(job_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(Path(__file__).resolve().parents[1]),
            )
        # reap it when it ends (no zombie while the server lives); the job does not depend on this thread
        threading.Thread(target=proc.wait, daemon=True, name=f"reap-{job_dir.name}").start()
        return job_dir


def cancel_job(job_dir: str | Path) -> None:
    """Ask the runner to stop (SIGTERM to its session); a second call after :data:`CANCEL_GRACE_S` kills it."""
    job_dir = Path(job_dir)
    cancel = job_dir / "cancel"
    status = job_status(job_dir)
    if status["state"] in FINISHED:
        return
    first = not cancel.exists()
    if first:
        cancel.write_text(_now())
    pid = status.get("pid")
    if pid is None or not _alive(int(pid), job_dir):
        return
    late = not first and time.time() - cancel.stat().st_mtime > CANCEL_GRACE_S
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(pid), signal.SIGKILL if late else signal.SIGTERM)


# ---- the runner ----------------------------------------------------------------------------------
def _on_term(signum, frame) -> None:
    raise JobCancelled()


def run_job(job_dir: str | Path) -> int:
    """Train every family of the job's spec, one after another, writing status.json as it goes.

    Exit status 0 when at least one model was registered and none failed, 1 otherwise.
    """
    job_dir = Path(job_dir)
    spec = _read_json(job_dir / "spec.json")
    if spec is None:
        print(f"{job_dir}: spec.json is missing or unreadable", flush=True)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    status: dict[str, Any] = {
        "state": "running",
        "pid": os.getpid(),
        "started": _now(),
        "models": [{"family": f, "model_id": f"{f}-{spec['dataset']}", "state": "waiting"} for f in spec["families"]],
    }
    _write_status(job_dir, status)
    signal.signal(signal.SIGTERM, _on_term)
    print(f"job {job_dir.name}: training {', '.join(spec['families'])} on {spec['dataset']}", flush=True)
    try:
        from .data import load_dataset
        from .registry import Registry
        from .training import max_epochs, train_from_config

        dataset = load_dataset(spec["dataset"], data_dir=spec.get("data_dir"))
        print(
            f"data set {dataset.name}: {dataset.n_users:,} users, {dataset.n_items:,} {dataset.item_noun}s, "
            f"{dataset.interactions.nnz:,} interactions",
            flush=True,
        )
        registry = Registry(spec["registry"])
        for entry in status["models"]:
            cfg = job_config(entry["family"], spec["dataset"], spec.get("epochs"))
            entry.update(state="training", epoch=0, epochs=max_epochs(entry["family"], cfg["params"]))
            _write_status(job_dir, status)
            print(f"--- {entry['model_id']}: {cfg['params']}", flush=True)

            def progress(epoch: int, elapsed: float, info: dict, _entry=entry) -> None:
                _entry["epoch"] = epoch
                shown = ", ".join(f"{k} {v:.4f}" for k, v in info.items() if isinstance(v, int | float))
                print(
                    f"{_entry['family']} epoch {epoch}/{_entry['epochs'] or '?'} ({elapsed:.1f} s) {shown}", flush=True
                )
                _write_status(job_dir, status)

            t0 = time.perf_counter()
            try:
                _, metrics = train_from_config(
                    cfg, dataset=dataset, registry=registry, progress=progress, overwrite=bool(spec.get("replace"))
                )
            except JobCancelled:
                raise
            except Exception as e:  # one model's failure is its own; the others still train
                entry.update(state="failed", error=f"{type(e).__name__}: {e}")
                print(f"{entry['model_id']} failed:\n{traceback.format_exc()}", flush=True)
            else:
                entry.update(
                    state="done",
                    seconds=round(time.perf_counter() - t0, 1),
                    metrics={k: float(v) for k, v in metrics.items() if k in ("ndcg@100", "recall@20", "fit_s")},
                )
                print(f"registered {entry['model_id']}: NDCG@100 {metrics['ndcg@100']:.4f}", flush=True)
            _write_status(job_dir, status)
    except JobCancelled:
        for entry in status["models"]:
            if entry["state"] in ("waiting", "training"):
                entry["state"] = "cancelled"
        status.update(state="cancelled", finished=_now())
        _write_status(job_dir, status)
        print("cancelled", flush=True)
        return 1
    except Exception as e:  # the data set could not be loaded, or the registry cannot be written
        status.update(state="failed", finished=_now(), error=f"{type(e).__name__}: {e}")
        for entry in status["models"]:
            if entry["state"] in ("waiting", "training"):
                entry["state"] = "failed"
        _write_status(job_dir, status)
        print(traceback.format_exc(), flush=True)
        return 1
    ok = [m for m in status["models"] if m["state"] == "done"]
    status.update(state="done" if ok else "failed", finished=_now())
    if not ok:
        status["error"] = "no model could be trained (see the log)"
    _write_status(job_dir, status)
    print(f"finished: {len(ok)} of {len(status['models'])} models registered", flush=True)
    return 0 if len(ok) == len(status["models"]) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m recsys.jobs JOB_DIR (the app starts jobs; see recsys/jobs.py)", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_job(sys.argv[1]))
