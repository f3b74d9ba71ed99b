"""``python -m recsys``: data, train, evaluate, recommend, registry.

Every command has ``--help``. Errors the user can fix (a missing file, an unknown id, a bad
override) print one line to stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger("recsys")

EXIT_USAGE = 2


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _registry(args: argparse.Namespace):
    from .registry import Registry

    return Registry(args.registry) if getattr(args, "registry", None) else Registry()


def _load_dataset(name: str, data_dir: str | None):
    from .data import load_dataset

    return load_dataset(name, data_dir=data_dir)


def _model_data_loader(loaded, args: argparse.Namespace):
    """``name -> Dataset`` for the data a registry model was trained on.

    ``--dataset`` wins; else a CSV-trained model's manifest gives its files (checked against their
    recorded fingerprint; the message names the file that moved or changed); else the recorded name
    (a built-in data set or a ``data import`` name).
    """
    from .data import csv_spec, load_csv_source

    record = ((loaded.manifest.get("info") or {}).get("source_dataset") or {}).get("csv")

    def load(name: str):
        if args.dataset:
            if record is not None and args.dataset.startswith("csv:"):
                from .data import load_csv_dataset

                # the files moved: same name and item noun as when the model was trained
                return load_csv_dataset(args.dataset, name=record["name"], item_noun=record.get("item_noun", "song"))
            return _load_dataset(args.dataset, args.data_dir)
        if record is not None:
            return load_csv_source(
                record,
                owner=f"model {loaded.model_id!r}",
                fix=f"pass --dataset csv:INTERACTIONS,ITEMS with the files it was trained on "
                f"(recorded: --dataset {csv_spec(record)})",
            )
        try:
            return _load_dataset(name, args.data_dir)
        except ValueError as e:
            if str(e).startswith("unknown data set"):  # a CSV model saved before sources were recorded
                raise CliError(
                    f"{e}. Model {loaded.model_id!r} records only the name {name!r}: pass --dataset "
                    "csv:INTERACTIONS,ITEMS with the files it was trained on"
                ) from None
            raise

    return load


def _epoch_bar(total: int | None, desc: str):
    """A tqdm bar advanced by the models' per-epoch progress callback."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="epoch", leave=True, file=sys.stderr)

    def progress(epoch: int, elapsed: float, info: dict) -> None:
        bar.update(1)
        shown = {k: f"{v:.4f}" for k, v in info.items() if isinstance(v, int | float)}
        bar.set_postfix(shown, refresh=False)

    return bar, progress


def _print_table(df: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", 200, "display.max_columns", 30, "display.width", 160):
        print(df.to_string(index=False))


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def cmd_data_list(args: argparse.Namespace) -> None:
    from .data import list_datasets

    _print_table(pd.DataFrame(list_datasets(args.data_dir)))


def cmd_data_describe(args: argparse.Namespace) -> None:
    ds = _load_dataset(args.name, args.data_dir)
    summary = ds.summary()
    for k, v in summary.items():
        print(f"{k:>15}: {v}")
    print(f"{'top tags':>15}: {', '.join(ds.tag_vocabulary[:15])}")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from .data import fetch_dataset

    # None -> $RECSYS_DATA_DIR or ~/.cache/recsys/data (never the read-only shared folder)
    path = fetch_dataset(args.name, args.dest or args.data_dir, url=args.url)
    print(f"{args.name} is in {path}")


def cmd_data_import(args: argparse.Namespace) -> None:
    from .data import check_dataset_name, check_item_noun, csv_dataset_name, load_csv_dataset, record_csv_import

    files = list(args.files or [])
    if len(files) > 2:
        raise CliError(f"give two files, INTERACTIONS.csv and ITEMS.csv; got {len(files)}: {' '.join(files)}")
    interactions = args.interactions or (files[0] if files else None)
    items = args.items or (files[1] if len(files) > 1 else None)
    if not interactions or not items:
        raise CliError(
            "give the two files: `python -m recsys data import INTERACTIONS.csv ITEMS.csv [--name NAME]` "
            "(or --interactions FILE --items FILE)"
        )
    name = check_dataset_name(args.name) if args.name else csv_dataset_name(interactions)
    noun = check_item_noun(args.item_noun)
    ds = load_csv_dataset(f"{interactions},{items}", name=name, item_noun=noun)
    for k, v in ds.summary().items():
        print(f"{k:>15}: {v}")
    index, before = record_csv_import(ds, args.data_dir)
    replaced = " (replacing the earlier import of that name)" if before else ""
    print(
        f"\nImported without errors as {ds.name!r} ({ds.item_noun}s){replaced}, recorded in {index}. "
        f"Use it with --dataset {ds.name} (train, evaluate, recommend, data describe); models trained on it "
        f"are named FAMILY-{ds.name}."
    )


# ---------------------------------------------------------------------------------------------
# train / evaluate
# ---------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> None:
    from .training import apply_overrides, load_template, max_epochs, train_from_config

    if args.template is None and args.family is None:
        raise CliError("give a family (`train ease`) or a template (`train --template multvae`)")
    from .data import dataset_name
    from .registry import RegistryError, check_model_id

    if args.template:
        cfg = load_template(args.template)
    else:
        cfg = {"family": args.family, "dataset": "synthetic", "seed": 0, "params": {}}
    template = dict(cfg)
    if args.dataset:
        cfg["dataset"] = args.dataset
    if args.model_id:
        cfg["model_id"] = args.model_id
    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"device={args.device}")
    cfg = apply_overrides(cfg, overrides)
    explicit_id = args.model_id or any(o.partition("=")[0].strip() == "model_id" for o in overrides)
    if not explicit_id and (not cfg.get("model_id") or cfg["dataset"] != template.get("dataset")):
        # FAMILY-NAME from the data set's sanitised name (csv:/a/b.csv,... -> csv-b), not the raw argument,
        # and not the template's id for its own data set
        cfg["model_id"] = f"{cfg['family']}-{dataset_name(cfg['dataset'], args.data_dir)}"
    try:
        check_model_id(cfg["model_id"])  # before loading and training, not at the end
    except RegistryError as e:
        raise CliError(f"{e}; pass --model-id ID") from None
    if cfg.get("protocol") == "next_item" and cfg["dataset"] == "ml-1m":
        # the next-item protocol needs timestamps: MovieLens 1M's timestamped users, from --data-dir too
        from .data import load_dataset

        ds = load_dataset("ml-1m", data_dir=args.data_dir, timestamped_only=True)
    else:
        ds = _load_dataset(cfg["dataset"], args.data_dir)
    epochs = max_epochs(cfg["family"], cfg["params"])
    print(f"training {cfg['family']} on {ds.name} ({ds.n_users} users, {ds.n_items} {ds.item_noun}s)", file=sys.stderr)
    if args.ddp is not None:
        _train_ddp(args, cfg, ds, epochs)
        return
    bar, progress = _epoch_bar(epochs, cfg["family"]) if epochs else (None, None)
    try:
        model_id, metrics = train_from_config(cfg, dataset=ds, registry=_registry(args), progress=progress)
    finally:
        if bar is not None:
            bar.close()
    _print_trained(model_id, metrics)


def _train_ddp(args: argparse.Namespace, cfg: dict, ds, epochs: int | None) -> None:
    """``train --ddp N`` (N local processes) or ``--ddp env`` (one rank of a torchrun launch)."""
    from .training import ConfigError, train_distributed, train_under_torchrun

    try:
        if args.ddp == "env":
            rank0 = os.environ.get("RANK", "0") == "0"
            bar, progress = _epoch_bar(epochs, cfg["family"]) if epochs and rank0 else (None, None)
            try:
                model_id, metrics = train_under_torchrun(cfg, dataset=ds, registry=_registry(args), progress=progress)
            finally:
                if bar is not None:
                    bar.close()
            if not rank0:
                return
        else:
            try:
                n = int(args.ddp)
            except ValueError:
                raise CliError(f"--ddp takes a process count or 'env' (under torchrun), got {args.ddp!r}") from None
            print(f"training on {n} processes (torch.distributed)", file=sys.stderr)
            model_id, metrics = train_distributed(cfg, n, dataset=ds, registry=_registry(args))
    except ConfigError as e:
        raise CliError(str(e)) from None
    _print_trained(model_id, metrics)


def _print_trained(model_id: str, metrics: dict) -> None:
    print(f"registered {model_id}")
    for k in ("recall@20", "recall@50", "ndcg@100", "coverage@20", "hr@10", "ndcg@10", "fit_s"):
        if k in metrics:
            print(f"{k:>12}: {metrics[k]:.4f}")


def _model_specs(names: Sequence[str], *, search: bool = True):
    """One spec per family: its fixed parameters and validation grid from :mod:`recsys.tuning`.

    ``search=False`` keeps only each grid's first point (a quick run, no validation search).
    """
    from .evaluate import ModelSpec
    from .models import get_model_class
    from .tuning import family_tuning

    specs = []
    for name in names:
        cls = get_model_class(name)
        fixed, points = family_tuning(name, cls)
        specs.append(ModelSpec(name, cls, params=fixed, grid=points if search else points[:1]))
    return specs


def _evaluation_bars(total: int):
    """An outer bar over (model, seed) and a ``fit_context`` for run_protocol that draws an epoch bar per fit."""
    import contextlib

    from tqdm.auto import tqdm

    from .training import max_epochs

    outer = tqdm(total=total, desc="evaluating", unit="run", file=sys.stderr)

    @contextlib.contextmanager
    def fit_context(stage: str, spec, seed, params: dict):
        if stage == "test":
            label = f"{spec.name} seed {seed}"
        else:
            point = {k: v for k, v in params.items() if spec.params.get(k) != v}
            label = f"{spec.name} validation {point}"
        outer.set_description(label)
        epochs = max_epochs(spec.name, params)
        inner, progress = _epoch_bar(epochs, label) if epochs else (None, None)
        if inner is not None:
            inner.leave = False
        try:
            yield progress
        finally:
            if inner is not None:
                inner.close()
        if stage == "test":
            outer.update(1)

    return outer, fit_context


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluate import format_table, format_tuning, run_protocol, summarize
    from .threads import evaluation_jobs

    ds = _load_dataset(args.dataset, args.data_dir)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise CliError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not seeds or not names:
        raise CliError("give at least one model (--models) and one seed (--seeds)")
    specs = _model_specs(names, search=args.search)
    if args.jobs is not None and args.jobs < 1:
        raise CliError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = evaluation_jobs() if args.jobs is None else args.jobs
    outer, fit_context = _evaluation_bars(len(seeds) * len(specs))
    try:
        results = run_protocol(ds, specs, seeds, n_heldout_users=args.heldout_users, fit_context=fit_context, jobs=jobs)
    finally:
        outer.close()
    table = format_table(summarize(results))
    notes = format_tuning(results) + (
        f"\n\nTorch, numba and BLAS ran with {int(results['threads'].iloc[0])} thread(s) "
        "(recsys.threads; $RECSYS_TORCH_THREADS overrides)."
    )
    print(table)
    print()
    print(notes)
    if args.out:
        from .benchmarking import write_result

        argv = ["python", "-m", "recsys", *sys.argv[1:]]
        write_result(args.out, title=f"Accuracy on {ds.name}", table=table, results=results, argv=argv, notes=notes)
        print(f"\nwritten to {args.out}")


# ---------------------------------------------------------------------------------------------
# steer-eval
# ---------------------------------------------------------------------------------------------
def _float_list(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"{what} must be comma-separated numbers, got {text!r}") from None


def cmd_steer_eval(args: argparse.Namespace) -> None:
    from pathlib import Path

    from tqdm.auto import tqdm

    from .benchmarking import write_result
    from .steering import Steerer, SteeringError
    from .steering.evaluation import (
        DEFAULT_ALPHAS,
        SweepConfig,
        alpha_to_reach,
        steering_sweep,
        sweep_table,
        test_users_of,
        tradeoff_figure,
        write_figure,
    )

    registry = _registry(args)
    model_ids = [m.strip() for m in args.model.split(",") if m.strip()]
    if args.protocols:
        _steer_protocols(args, registry, model_ids)
        return
    alphas = dict(DEFAULT_ALPHAS)
    for mode, text in (
        ("postfilter", args.alphas_post),
        ("tune", args.alphas_tune),
        ("tune+post", args.alphas_tune_post),
    ):
        if text:
            alphas[mode] = tuple(_float_list(text, f"--alphas for {mode}"))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - set(alphas))
    if bad:
        raise CliError(f"unknown modes {bad}; choose from {sorted(alphas)}")
    alphas = {m: alphas[m] for m in modes}
    cfg = SweepConfig(n_users=args.users, seed=args.seed, beta=args.beta, reli=args.reli, k=args.k)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sweeps = {}
    for model_id in model_ids:
        loaded = registry.load(model_id)
        try:
            steerer = Steerer.from_loaded(loaded)
            foldin, holdout = test_users_of(loaded, _model_data_loader(loaded, args))
        except SteeringError as e:
            raise CliError(str(e)) from None
        bar = tqdm(desc=f"steering {model_id}", unit="step", file=sys.stderr)

        def progress(done: int, total: int, _bar=bar) -> None:
            _bar.total = total
            _bar.update(done - _bar.n)

        try:
            df = steering_sweep(steerer, foldin, holdout, alphas=alphas, config=cfg, progress=progress)
        finally:
            bar.close()
        sweeps[model_id] = df
        reach = alpha_to_reach(df, 0.5, cfg.k)
        notes = "Smallest swept alpha reaching a target-tag share@{} of 0.5: {}.".format(
            cfg.k, ", ".join(f"{m} {a if a is not None else 'not reached'}" for m, a in reach.items())
        )
        table = sweep_table(df)
        print(f"\n{model_id}\n{table}\n{notes}")
        df.to_csv(out / f"steering_{model_id}.csv", index=False)
        argv = ["python", "-m", "recsys", *sys.argv[1:]]
        write_result(
            out / f"steering_{model_id}.md", title=f"Steering sweep: {model_id}", table=table, argv=argv, notes=notes
        )
    label = args.label or "_".join(model_ids)
    fig = tradeoff_figure(sweeps, k=cfg.k, title=f"Steering trade-off: {', '.join(model_ids)}")
    written = write_figure(fig, str(out / f"tradeoff_{label}"))
    print("\nwritten: " + ", ".join(str(p) for p in written))


def _steer_protocols(args: argparse.Namespace, registry, model_ids: list[str]) -> None:
    """``steer-eval --protocols``: matched-share evaluations (E1, E2, E3, E5) per model."""
    from pathlib import Path

    from .benchmarking import write_result
    from .steering import Steerer, SteeringError
    from .steering.evaluation import split_of, sweep_table
    from .steering.protocols import ProtocolConfig, run_protocols, summarise

    wanted = [p.strip().lower() for p in args.protocols.split(",") if p.strip()]
    bad = sorted(set(wanted) - {"e1", "e2", "e3", "e5"})
    if bad:
        raise CliError(f"unknown protocols {bad}; choose from e1, e2, e3, e5")
    shares = tuple(_float_list(args.shares, "--shares"))
    if not shares or any(not 0 < s <= 1 for s in shares):
        raise CliError(f"--shares must be numbers in (0, 1], got {args.shares!r}")
    cfg = ProtocolConfig(n_users=args.users, seed=args.seed, beta=args.beta, k=args.k, shares=shares)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    argv = ["python", "-m", "recsys", *sys.argv[1:]]
    for model_id in model_ids:
        loaded = registry.load(model_id)
        try:
            steerer = Steerer.from_loaded(loaded)
            split = split_of(loaded, _model_data_loader(loaded, args))
            res = run_protocols(
                steerer,
                split,
                cfg,
                protocols=wanted,
                choose_step=not args.keep_step,
                progress=lambda msg, _id=model_id: print(f"{_id}: {msg}", file=sys.stderr, flush=True),
            )
        except SteeringError as e:
            raise CliError(str(e)) from None
        parts = [f"tune+post latent step: {res.step_rule.describe()}"]
        if not res.step_table.empty:
            parts.append("Chosen on validation users (best 10 rules):\n\n" + sweep_table(res.step_table.head(10)))
        if not res.e1.empty:
            parts.append(
                "## E1: random non-dominant tag (Δ NDCG vs postfilter)\n\n"
                + sweep_table(summarise(res.e1, cfg, metric=f"NDCG@{cfg.n}"))
            )
        for (hidden, bias), frame in res.e3.items():
            title = (
                "E2: the tag the held-out items carry more"
                if hidden == 0
                else f"E3: {hidden:.0%} of tags hidden ({bias})"
            )
            if not frame.empty:
                parts.append(f"## {title} (Δ tag recall vs postfilter)\n\n" + sweep_table(summarise(frame, cfg)))
        if not res.e5.empty:
            e5 = res.e5.drop(columns="user").groupby("method", sort=False).mean().reset_index()
            parts.append("## E5: tags-only cold start\n\n" + sweep_table(e5))
        text = "\n\n".join(parts)
        print(f"\n{model_id}\n{text}")
        write_result(
            out / f"protocols_{model_id}.md", title=f"Matched-share steering: {model_id}", table=text, argv=argv
        )
    print(f"\nwritten to {out}")


# ---------------------------------------------------------------------------------------------
# recommend
# ---------------------------------------------------------------------------------------------
def cmd_recommend(args: argparse.Namespace) -> None:
    import scipy.sparse as sp

    registry = _registry(args)
    model_id = args.model if args.model is not None else _latest_model(registry)  # "" is refused, not latest
    loaded = registry.load(model_id)
    items = loaded.items
    col = {iid: i for i, iid in enumerate(items["item_id"])}
    histories: list[list[int]] = []
    labels: list[str] = []
    if args.user:
        ds = _model_data_loader(loaded, args)(loaded.manifest["dataset"]["name"])
        for user in args.user:
            key = _match_user(ds, user)
            row = ds.interactions[ds.user_index[key]]
            ids = ds.item_ids[row.indices]
            histories.append(sorted({col[str(i)] for i in ids if str(i) in col}))
            labels.append(str(key))
    if args.items:
        picks = [p.strip() for p in args.items.split(",") if p.strip()]
        unknown = [p for p in picks if p not in col]
        if unknown:
            raise CliError(f"unknown item ids {unknown[:10]} for model {model_id}; see `registry show {model_id}`")
        histories.append(sorted({col[p] for p in picks}))
        labels.append("picks")
    if not histories:
        raise CliError("give --user NAME (repeatable) or --items ID,ID,...")
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    x = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(histories), len(items)))
    idx, scores = loaded.model.recommend(x, k=args.top)
    out = []
    for u, label in enumerate(labels):
        for rank, (i, s) in enumerate(zip(idx[u], scores[u], strict=True), start=1):
            r = items.iloc[i]
            out.append(
                {
                    "user": label,
                    "rank": rank,
                    "item_id": r["item_id"],
                    "title": r["title"],
                    "artist": r["artist"],
                    "tags": "|".join(r["tags"][:5]),
                    "score": float(s),
                }
            )
    df = pd.DataFrame(out)
    if args.csv:
        from .io import atomic_write_text

        atomic_write_text(args.csv, df.to_csv(index=False))
        print(f"{len(df)} rows written to {args.csv}")
    else:
        _print_table(df)


def _latest_model(registry) -> str:
    """The most recently created readable model (what `recommend` uses without --model)."""
    entries = [e for e in registry.list() if e.ok and e.manifest]
    if not entries:
        raise CliError(
            f"no models in {registry.root}: train one (`python -m recsys train --template autoencoder`) "
            "or build the defaults (`python -m recsys registry build-defaults`)"
        )

    def when(e) -> tuple[str, int]:  # "created" has 1 s resolution; the manifest's mtime breaks ties
        manifest = registry.root / e.model_id / "manifest.json"
        return e.manifest.get("created", ""), manifest.stat().st_mtime_ns if manifest.exists() else 0

    latest = max(entries, key=when)
    print(f"using model {latest.model_id} (the most recent; --model ID picks another)", file=sys.stderr)
    return latest.model_id


def _match_user(ds, user: str):
    """A user id as typed on the command line, matched against the data set's ids (int or str)."""
    if user in ds.user_index:
        return user
    try:
        as_int = int(user)
    except ValueError:
        as_int = None
    if as_int is not None and as_int in ds.user_index:
        return as_int
    sample = ", ".join(str(u) for u in ds.user_ids[:5])
    raise CliError(f"no user {user!r} in {ds.name} (ids look like: {sample}, ...)")


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
def cmd_registry_list(args: argparse.Namespace) -> None:
    entries = _registry(args).list()
    if not entries:
        print(
            f"no models in {_registry(args).root}; build the defaults with `python -m recsys registry build-defaults`"
        )
        return
    rows = []
    for e in entries:
        m = e.manifest or {}
        metrics = m.get("metrics", {})
        rows.append(
            {
                "model_id": e.model_id,
                "family": m.get("family", "?"),
                "dataset": m.get("dataset", {}).get("name", "?"),
                "ndcg@100": metrics.get("ndcg@100"),
                "recall@20": metrics.get("recall@20"),
                "created": m.get("created", ""),
                "status": "ok" if e.ok else f"UNREADABLE: {e.problem}",
            }
        )
    _print_table(pd.DataFrame(rows))


def cmd_registry_show(args: argparse.Namespace) -> None:
    reg = _registry(args)
    manifest = reg.read_manifest(args.model)
    log = manifest.pop("training_log", [])
    print(json.dumps(manifest, indent=2))
    if log:
        print("\ntraining log:")
        _print_table(pd.DataFrame(log))
    problems = reg.verify(args.model)
    print("\nintegrity:", "ok" if not problems else "; ".join(problems))


def cmd_registry_verify(args: argparse.Namespace) -> None:
    reg = _registry(args)
    ids = [args.model] if args.model is not None else reg.ids()  # "" is refused, not every model
    bad = 0
    for model_id in ids:
        problems = reg.verify(model_id)
        print(f"{model_id}: " + ("ok" if not problems else "; ".join(problems)))
        bad += bool(problems)
    if bad:
        raise SystemExit(1)


def cmd_registry_remove(args: argparse.Namespace) -> None:
    _registry(args).remove(args.model)
    print(f"removed {args.model}")


def cmd_registry_build_defaults(args: argparse.Namespace) -> None:
    from .defaults import run

    code = run(args)
    if code:
        raise SystemExit(code)


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recsys", description="A steerable music recommender you can see into.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_common(sp_: argparse.ArgumentParser, registry: bool = False) -> None:
        sp_.add_argument(
            "--data-dir",
            help="where real data sets live (default: $RECSYS_DATA_DIR, ../shared/data or ~/.cache/recsys/data)",
        )
        if registry:
            sp_.add_argument(
                "--registry", help="model registry directory (default: $RECSYS_MODELS_DIR or models_store/)"
            )

    # data
    d = sub.add_parser("data", help="list, describe, fetch and import data sets")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    x = dsub.add_parser("list", help="known data sets and whether they are available here")
    add_common(x)
    x.set_defaults(func=cmd_data_list)
    x = dsub.add_parser("describe", help="counts, density and top tags of a data set")
    x.add_argument("name", help="synthetic, lastfm-2k, ml-1m, ml-100k, an imported name or csv:INTERACTIONS,ITEMS")
    add_common(x)
    x.set_defaults(func=cmd_data_describe)
    x = dsub.add_parser("fetch", help="download an official release archive (checksum-verified)")
    x.add_argument("name", choices=["lastfm-2k", "ml-1m", "ml-100k"])
    x.add_argument("--dest", help="directory to put it in (default: the data directory)")
    x.add_argument("--url", help="download from this URL instead (a mirror)")
    add_common(x)
    x.set_defaults(func=cmd_data_fetch)
    x = dsub.add_parser(
        "import",
        help="check a CSV data set (interactions + items), summarise it and record it under a name",
        description="Check two CSV files, summarise them and record them (paths and sha256) under a name in the "
        "data directory's csv_imports.json, so --dataset NAME finds them later (train, evaluate, recommend).",
    )
    x.add_argument("files", nargs="*", metavar="FILE", help="INTERACTIONS.csv ITEMS.csv (or use the flags)")
    x.add_argument("--interactions", help="CSV with user,item[,weight][,timestamp]")
    x.add_argument("--items", help="CSV with item,title[,artist][,tags separated by |]")
    x.add_argument(
        "--name",
        help="data set name: letters, digits, _ . - and not a built-in name (default: csv-<interactions file stem>)",
    )
    x.add_argument("--item-noun", default="song", help="what an item is called: song (default), movie, artist, ...")
    add_common(x)
    x.set_defaults(func=cmd_data_import)

    # train
    t = sub.add_parser("train", help="train a model and register it")
    t.add_argument("family", nargs="?", help="model family (popularity, ease, ...) when no --template")
    t.add_argument("--template", help="YAML template name in configs/ or a path")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a template value (repeatable)")
    t.add_argument(
        "--dataset", help="data set to train on (overrides the template): a name, an imported name or csv:INTER,ITEMS"
    )
    t.add_argument("--model-id", help="registry id (default: from the template or FAMILY-DATASET)")
    t.add_argument("--device", help="cpu (default) or cuda for torch families")
    t.add_argument(
        "--ddp",
        metavar="N|env",
        help="train on N local processes with torch.distributed (gloo on CPU, nccl on CUDA; multvae), "
        "or 'env' to be one rank of a torchrun launch (several machines: docs/ARCHITECTURE.md)",
    )
    add_common(t, registry=True)
    t.set_defaults(func=cmd_train)

    # evaluate
    e = sub.add_parser(
        "evaluate",
        help="accuracy protocol (BENCHMARK.md): mean ± std over seeds",
        description="Accuracy protocol (BENCHMARK.md). Each family's settings come from recsys/tuning.py: its "
        "small grid is tried once, on the validation users of the first seed's split, and the chosen point is "
        "used for every seed; torch families train for at most 100 epochs and stop 5 epochs after their best "
        "validation NDCG@100. One torch/BLAS thread per fit on machines with at most 2 cores ($RECSYS_TORCH_THREADS), "
        "and as many fits at once as the cores hold (--jobs); the rows do not depend on --jobs.",
    )
    e.add_argument("--dataset", default="synthetic")
    e.add_argument("--models", default="popularity,ease", help="comma-separated families")
    e.add_argument("--seeds", default="0,1,2,3,4", help="split seeds; the first one's validation users tune")
    e.add_argument("--heldout-users", type=int, help="H users per validation/test group (default per data set)")
    e.add_argument(
        "--no-search",
        dest="search",
        action="store_false",
        help="fit each family's first grid point only (quick; no validation search)",
    )
    e.add_argument(
        "--jobs",
        type=int,
        help="fits at once, one worker process each (default: cores / threads per fit, 2 on a 2-core machine); "
        "each worker holds its own copy of the data",
    )
    e.add_argument("--out", help="also write a markdown result file (command, machine, versions)")
    add_common(e)
    e.set_defaults(func=cmd_evaluate)

    # steer-eval
    v = sub.add_parser("steer-eval", help="sweep alpha per steering mode over test users (seed 000's predict)")
    v.add_argument("--model", required=True, help="registry model id(s), comma-separated (one figure for all)")
    v.add_argument("--modes", default="postfilter,tune,tune+post", help="modes to sweep (default: all)")
    v.add_argument("--alphas-post", help="alpha grid of postfilter (default 0,0.5,1,2,3,4,6,8,12,16)")
    v.add_argument("--alphas-tune", help="alpha grid of tune (default 0,0.25,...,6)")
    v.add_argument("--alphas-tune-post", help="alpha grid of tune+post (default as tune)")
    v.add_argument("--users", type=int, default=300, help="test users to sweep over (default 300)")
    v.add_argument("--seed", type=int, default=0, help="seeds the user sample and the target tags")
    v.add_argument("--beta", type=float, default=1.0, help="weight of the target tag (default 1)")
    v.add_argument("--reli", type=float, default=0.5, help="relevance of target-tag items in graded NDCG")
    v.add_argument("--k", type=int, default=20, help="cut-off of share, COUNTS and Jaccard (default 20)")
    v.add_argument("--dataset", help="data set to rebuild the test users from (default: the model's)")
    v.add_argument(
        "--protocols",
        help="instead of alpha sweeps, matched-share evaluations: any of e1,e2,e3,e5 (E1 random tag, E2 held-out "
        "tag, E3 hidden tags, E5 tags-only cold start)",
    )
    v.add_argument("--shares", default="0.3,0.5,0.7", help="target shares of --protocols (default 0.3,0.5,0.7)")
    v.add_argument(
        "--keep-step", action="store_true", help="use the model's stored tune+post step (default: choose it again)"
    )
    v.add_argument("--label", help="name of the figure files (default: the model ids)")
    v.add_argument("--out", default="steer-eval", help="directory for tables and figures (default steer-eval/)")
    add_common(v, registry=True)
    v.set_defaults(func=cmd_steer_eval)

    # recommend
    r = sub.add_parser("recommend", help="top-N for a user of the data set or a list of item ids")
    r.add_argument("--model", help="registry model id (default: the most recently trained model)")
    r.add_argument("--user", action="append", help="user id in the model's data set (repeatable)")
    r.add_argument("--items", help="comma-separated item ids the person likes")
    r.add_argument("--top", type=int, default=10)
    r.add_argument("--csv", help="write the lists to this CSV file")
    r.add_argument("--dataset", help="data set for --user (default: the model's)")
    add_common(r, registry=True)
    r.set_defaults(func=cmd_recommend)

    # funnel (seed 002): train with cached stages, recommend to a CSV (recsys/funnel_cli.py)
    from .funnel_cli import add_parser as add_funnel_parser

    add_funnel_parser(sub, add_common)

    # registry
    g = sub.add_parser("registry", help="list, show, verify, remove models; build the defaults")
    gsub = g.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    x = gsub.add_parser("list", help="models with family, data set, metrics, integrity")
    add_common(x, registry=True)
    x.set_defaults(func=cmd_registry_list)
    x = gsub.add_parser("show", help="a model's manifest, metrics and training log")
    x.add_argument("model")
    add_common(x, registry=True)
    x.set_defaults(func=cmd_registry_show)
    x = gsub.add_parser("verify", help="check checksums of one model or all (exit 1 if any fails)")
    x.add_argument("model", nargs="?")
    add_common(x, registry=True)
    x.set_defaults(func=cmd_registry_verify)
    x = gsub.add_parser("remove", help="delete a model")
    x.add_argument("model")
    add_common(x, registry=True)
    x.set_defaults(func=cmd_registry_remove)
    x = gsub.add_parser("build-defaults", help="train the default models on the synthetic data")
    from .defaults import add_arguments as add_defaults_arguments

    add_defaults_arguments(x)  # --registry, --force, --families, --quiet
    x.set_defaults(func=cmd_registry_build_defaults)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from .registry import RegistryError

    user_errors: tuple[type[BaseException], ...] = (CliError, RegistryError, FileNotFoundError, KeyError, ValueError)
    try:
        args.func(args)
    except user_errors as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
