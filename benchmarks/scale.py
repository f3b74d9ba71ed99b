"""Music-catalogue scale (issue 16): 20k, 100k and 400k songs on this machine, each figure beside its floor.

    python benchmarks/scale.py --sizes 20k,100k,400k --out benchmarks/results/scale.md
    python benchmarks/scale.py --accuracy            # sampled vs full softmax, same run (demo catalogue)

Each size runs in its own worker process (so its peak RSS is its own), one after the other:

1. **Data.** :func:`recsys.data.synthetic.generate_synthetic_at_scale` (``--sizes``: 20k songs x 50k
   listeners, 100k x 200k, 400k x 1M), then the strong-generalization split (songs with < 5
   listeners are dropped by the protocol's filter, so the trained catalogue is a little smaller;
   ``--heldout-users`` validation and test users).
2. **Training.** Multi-VAE with the sampled softmax (``n_negatives`` 2000, sparse input), batch 500,
   ``--epochs`` epochs without early stopping (batch 2000 at 400k); the epoch's wall and CPU seconds (one torch thread;
   CPU time is what an idle core would take, wall is what the shared machine gave), and the worker's
   peak RSS over everything (data, split, training, extras, registry).
3. **Registry.** ``compute_extras`` (steering data, tune+post's step rule on validation users, the UMAP
   map: ``build_map`` samples users and maps the most popular items, timed on its own), then
   ``Registry.save``: the model directory's size, and ``Registry.load`` (verified) wall time.
4. **Recommend.** ``Steerer.from_loaded(loaded).recommend(picks, {tag: 1}, share=s)``, all four modes,
   ``--calls`` calls over stored listeners' picks and shares 0.2-0.8: median and p95.
5. **Floor.** A bare torch network of the same sizes (sparse first layer, tanh, the same widths), timed
   in the same worker right after: one encode of the picks, one decode of as many latent rows as the
   ``recommend`` call decodes (counted), and one top-k per mode. Recommend / floor is the ratio.

A table row per size; ``--json-dir`` keeps each worker's numbers, so a size that was measured is not
rerun (``--force`` reruns). ``uptime``'s load is recorded next to each size: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    "smoke": {"n_items": 3_000, "n_users": 4_000, "hidden_dim": 64, "latent_dim": 32, "batch_size": 500},
    "20k": {"n_items": 20_000, "n_users": 50_000, "hidden_dim": 600, "latent_dim": 200, "batch_size": 500},
    "100k": {"n_items": 100_000, "n_users": 200_000, "hidden_dim": 600, "latent_dim": 200, "batch_size": 500},
    # 400k x 600 x 2 layers with Adam (weights, gradients, 2 moments) would be ~7.7 GB: on this shared
    # machine the 400k catalogue trains with 200 hidden units (2.6 GB)
    # and batches of 2000 (negatives are shared by the batch: 4x fewer steps, each touching more rows)
    "400k": {"n_items": 400_000, "n_users": 1_000_000, "hidden_dim": 200, "latent_dim": 200, "batch_size": 2000},
}


def load_avg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def pct(ms: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(ms, dtype=np.float64), q))


def floor_ms(n_items: int, hidden: int, latent: int, picks: np.ndarray, decode_rows: int, calls: int, modes: int):
    """Median ms of encode(picks) + decode(decode_rows rows) + one top-20 per mode, bare torch."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    enc1, enc2 = nn.Linear(n_items, hidden), nn.Linear(hidden, 2 * latent)
    dec = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items))
    idx = torch.stack([torch.zeros(len(picks), dtype=torch.long), torch.from_numpy(picks.astype(np.int64))])
    x = torch.sparse_coo_tensor(idx, torch.ones(len(picks)), (1, n_items), check_invariants=False).coalesce()
    times = []
    with torch.no_grad():
        for _ in range(calls):
            t0 = time.perf_counter()
            z = enc2(torch.tanh(torch.sparse.mm(x, enc1.weight.T) + enc1.bias))[:, :latent]
            s = dec(z.expand(decode_rows, latent)).numpy()
            for m in range(modes):
                row = s[m % decode_rows]
                np.argpartition(-row, 20)[:20]
            times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), pct(times, 95)


def worker(size: str, args: argparse.Namespace) -> dict:
    import torch

    from recsys.data.splits import strong_generalization_split
    from recsys.data.synthetic import generate_synthetic_at_scale
    from recsys.evaluate import evaluate_on_users
    from recsys.model_extras import compute_extras, stored_listeners
    from recsys.models.multvae import MultVAE
    from recsys.registry import Registry
    from recsys.steering import Steerer

    torch.set_num_threads(1)
    spec = dict(SIZES[size])
    for item in (args.users or "").split(","):
        if item.partition("=")[0] == size:
            spec["n_users"] = int(item.partition("=")[2])
    out: dict = {"size": size, **spec, "load_start": load_avg()}
    t0 = time.perf_counter()
    ds = generate_synthetic_at_scale(n_items=spec["n_items"], n_users=spec["n_users"])
    out["generate_s"] = time.perf_counter() - t0
    out["listens"] = int(ds.interactions.nnz)
    t0 = time.perf_counter()
    split = strong_generalization_split(ds, 0, args.heldout_users)
    out["split_s"] = time.perf_counter() - t0
    del ds
    out["train_users"], out["songs"] = split.train.n_users, split.train.n_items
    print(
        f"[{size}] data {out['generate_s']:.0f} s, split {out['split_s']:.0f} s, rss {peak_rss_gb():.1f} GB", flush=True
    )

    model = MultVAE(
        loss="sampled_softmax",
        n_negatives=2000,
        hidden_dim=spec["hidden_dim"],
        latent_dim=spec["latent_dim"],
        epochs=args.epochs,
        batch_size=spec["batch_size"],
        patience=None,
    )
    cpu0 = time.process_time()

    def progress(epoch, elapsed, info):
        print(f"[{size}] epoch {epoch}: {info} load {load_avg()}", flush=True)

    steps_per_epoch = -(-split.train.n_users // spec["batch_size"])
    out["steps_per_epoch"] = steps_per_epoch
    if args.train_steps:  # time train_steps steps (one epoch over that many batches of users) and scale up
        rng = np.random.default_rng(0)
        n_sub = min(split.train.n_users, args.train_steps * spec["batch_size"])
        train = split.train.subset(users=np.sort(rng.choice(split.train.n_users, n_sub, replace=False)))
        model.fit(train, progress=progress)
        steps = -(-n_sub // spec["batch_size"])
    else:
        model.fit(split.train, validation=(split.val_foldin, split.val_holdout), progress=progress)
        steps = steps_per_epoch * args.epochs
    out["fit_cpu_s"] = time.process_time() - cpu0
    log = model.training_log_
    out["epochs"] = len(log)
    out["steps_timed"] = steps
    out["step_cpu_s"] = out["fit_cpu_s"] / steps
    out["step_wall_s"] = sum(r["seconds"] for r in log) / steps
    out["epoch_s"] = [out["step_wall_s"] * steps_per_epoch]
    out["val_ndcg"] = [r["val_ndcg@100"] for r in log]
    out["epoch_cpu_s"] = out["step_cpu_s"] * steps_per_epoch  # with train_steps: extrapolated from the steps timed
    out["load_train"] = load_avg()
    out["rss_after_fit_gb"] = peak_rss_gb()
    metrics = evaluate_on_users(model, split.test_foldin, split.test_holdout)
    out["test_ndcg@100"] = metrics["ndcg@100"]

    import recsys.projection as projection

    original = projection.build_map
    umap_s = []

    def timed_build_map(*a, **kw):
        t = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            umap_s.append(time.perf_counter() - t)

    projection.build_map = timed_build_map
    t0 = time.perf_counter()
    # tune+post's step rule is chosen on validation users only up to STEP_RULE_MAX_ITEMS (training.py): above,
    # the default rule (choosing it steers 200 users x 4 conditions x every step: hours at 100k songs)
    from recsys.training import STEP_RULE_MAX_ITEMS

    validation = (split.val_foldin, split.val_holdout) if split.train.n_items <= STEP_RULE_MAX_ITEMS else None
    extras, info = compute_extras(model, split.train, split.test_foldin, split.test_holdout, validation=validation)
    out["extras_s"] = time.perf_counter() - t0
    out["umap_s"] = umap_s[0] if umap_s else None
    out["map_points"] = info.get("map", {})
    reg = Registry(Path(args.json_dir) / f"registry-{size}")
    t0 = time.perf_counter()
    model_id = reg.save(model, dataset=split.train, model_id=f"multvae-scale-{size}", metrics=metrics, extras=extras,
                        info=info, overwrite=True)  # fmt: skip
    out["save_s"] = time.perf_counter() - t0
    out["model_mb"] = dir_size_mb(reg.root / model_id)
    del model, extras
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        loaded = reg.load(model_id)
        loads.append(time.perf_counter() - t0)
    out["load_s"] = min(loads)
    out["load_s_all"] = loads
    steerer = Steerer.from_loaded(loaded)

    # how many latent rows one recommend decodes (the floor decodes as many)
    rows = {"n": 0}
    m = loaded.model
    dec, score = m._decode, m._score

    def count_decode(z):
        rows["n"] += len(z)
        return dec(z)

    def count_score(x):
        rows["n"] += x.shape[0]
        return score(x)

    m._decode, m._score = count_decode, count_score
    listeners = stored_listeners(loaded.extras)
    ids = loaded.items["item_id"].to_numpy()
    tag = steerer.steerable_tags[0]
    steerer.recommend([str(v) for v in ids[listeners[0]]], {tag: 1.0}, share=0.4)
    out["decode_rows"] = rows["n"]
    m._decode, m._score = dec, score
    times = []
    shares = (0.2, 0.4, 0.6, 0.8)
    for i in range(args.calls):
        picks = [str(v) for v in ids[listeners[i % len(listeners)]]]
        t0 = time.perf_counter()
        steerer.recommend(picks, {steerer.steerable_tags[i % len(steerer.steerable_tags)]: 1.0}, share=shares[i % 4])
        times.append(1000 * (time.perf_counter() - t0))
    out["recommend_p50_ms"], out["recommend_p95_ms"] = float(np.median(times)), pct(times, 95)
    out["floor_p50_ms"], out["floor_p95_ms"] = floor_ms(
        loaded.model.n_items_, spec["hidden_dim"], spec["latent_dim"], listeners[0], max(out["decode_rows"], 1),
        args.calls, 4,
    )  # fmt: skip
    out["load_end"] = load_avg()
    out["peak_rss_gb"] = peak_rss_gb()
    return out


def accuracy(args: argparse.Namespace) -> dict:
    """Full vs sampled softmax on the demo catalogue (5000 songs), same split, same run."""
    import torch

    from recsys.data.splits import strong_generalization_split
    from recsys.data.synthetic import generate_synthetic
    from recsys.evaluate import evaluate_on_users
    from recsys.models.multvae import MultVAE

    torch.set_num_threads(1)
    split = strong_generalization_split(generate_synthetic(), 0)
    rows = []
    for name, kw in (
        ("full softmax", {}),
        (f"sampled softmax, {args.negatives} negatives", {"loss": "sampled_softmax", "n_negatives": args.negatives}),
    ):
        cpu0, t0 = time.process_time(), time.perf_counter()
        model = MultVAE(epochs=args.accuracy_epochs, **kw).fit(
            split.train, validation=(split.val_foldin, split.val_holdout)
        )
        res = evaluate_on_users(model, split.test_foldin, split.test_holdout)
        rows.append({"model": name, "ndcg@100": res["ndcg@100"], "recall@20": res["recall@20"],
                     "best_epoch": model.best_epoch_, "epochs_run": len(model.training_log_),
                     "fit_cpu_s": time.process_time() - cpu0, "fit_wall_s": time.perf_counter() - t0,
                     "load": load_avg()})  # fmt: skip
        print(rows[-1], flush=True)
    return {"rows": rows, "n_items": split.train.n_items, "n_train_users": split.train.n_users}


def run_worker(size: str, args: argparse.Namespace) -> dict | None:
    path = Path(args.json_dir) / f"{size}.json"
    if path.exists() and not args.force:
        return json.loads(path.read_text())
    cmd = [sys.executable, __file__, "--worker", size, "--json-dir", args.json_dir, "--epochs", str(args.epochs),
           "--calls", str(args.calls), "--heldout-users", str(args.heldout_users),
           "--train-steps", str(args.train_steps)] + (["--users", args.users] if args.users else [])  # fmt: skip
    print(f"running {size}: load {load_avg()}", flush=True)
    done = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        print(f"{size}: worker failed ({done.returncode})", flush=True)
        return None
    return json.loads(path.read_text())


def table(rows: list[dict]) -> str:
    head = (
        "| songs (trained) | listeners (training) | listens | hidden | epoch s wall / CPU | peak RSS GB | model MB "
        "| load s | Recommend p50 / p95 ms | floor p50 / p95 ms | p95 / floor p95 | UMAP map s | test NDCG@100 "
        "| load avg |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['size']} ({r['songs']:,}) | {r['train_users']:,} | {r['listens']:,} | {r['hidden_dim']} "
            f"| {np.mean(r['epoch_s']):.0f} / {r['epoch_cpu_s']:.0f} | {r['peak_rss_gb']:.1f} | {r['model_mb']:.0f} "
            f"| {r['load_s']:.2f} | {r['recommend_p50_ms']:.0f} / {r['recommend_p95_ms']:.0f} "
            f"| {r['floor_p50_ms']:.1f} / {r['floor_p95_ms']:.1f} | {r['recommend_p95_ms'] / r['floor_p95_ms']:.1f} "
            f"| {r['umap_s'] or 0:.0f} | {r['test_ndcg@100']:.4f} | {r['load_train']} |"
        )
    return "\n".join(lines)


def accuracy_table(acc: dict) -> str:
    rows = acc["rows"]
    full = rows[0]["ndcg@100"]
    lines = [
        f"Sampled vs full softmax on the demo catalogue ({acc['n_items']:,} songs, {acc['n_train_users']:,} training "
        "users; same split, same run, early stopping on validation NDCG@100):",
        "",
        "| model | NDCG@100 | vs full | Recall@20 | best epoch / run | fit CPU s | fit wall s | load avg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ndcg@100']:.4f} | {100 * (r['ndcg@100'] / full - 1):+.1f} % | {r['recall@20']:.4f} "
            f"| {r['best_epoch']} / {r['epochs_run']} | {r['fit_cpu_s']:.0f} | {r['fit_wall_s']:.0f} | {r['load']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="20k,100k,400k")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--train-steps",
        type=int,
        default=0,
        help="time this many training steps (a random subset of that many batches of users, one epoch, no "
        "validation) and scale to a full epoch, instead of training --epochs full epochs",
    )
    p.add_argument("--users", help="size=listeners overrides, e.g. 400k=200000 (the listeners generated)")
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--heldout-users", type=int, default=1000)
    p.add_argument("--json-dir", default=str(ROOT / ".cache" / "scale"))
    p.add_argument("--force", action="store_true")
    p.add_argument("--out", help="write the markdown result here")
    p.add_argument("--notes", help="a markdown file of notes to put under the tables")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--accuracy", action="store_true", help="sampled vs full softmax on the demo catalogue")
    p.add_argument("--negatives", type=int, default=1000)
    p.add_argument("--accuracy-epochs", type=int, default=30)
    args = p.parse_args(argv)
    Path(args.json_dir).mkdir(parents=True, exist_ok=True)
    if args.worker:
        out = worker(args.worker, args)
        (Path(args.json_dir) / f"{args.worker}.json").write_text(json.dumps(out, indent=1, default=str))
        return 0
    if args.accuracy:
        out = accuracy(args)
        (Path(args.json_dir) / "accuracy.json").write_text(json.dumps(out, indent=1))
        return 0
    rows = [r for s in args.sizes.split(",") if (r := run_worker(s.strip(), args)) is not None]
    text = table(rows)
    acc_path = Path(args.json_dir) / "accuracy.json"
    if acc_path.exists():
        text += "\n\n" + accuracy_table(json.loads(acc_path.read_text()))
    print(text)
    if args.out:
        from recsys.benchmarking import write_result

        notes = Path(args.notes).read_text() if args.notes else ""
        write_result(args.out, title="Catalogue scale: Multi-VAE with the sampled softmax", table=text,
                     argv=["python", *sys.argv], notes=notes)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
