"""What the Streamlit pages call: registry status tables, cached model loading, picks -> lists.

Pages stay thin (read state, call this module, render); everything here is computed from
:mod:`recsys` and returns plain data (DataFrames, dicts, strings) so it can be tested without a
browser. Only the ``cached_*`` functions touch Streamlit: they wrap registry reads in
``st.cache_resource`` / ``st.cache_data`` keyed by (registry root, model id, file signature), so a
model that is rebuilt or damaged on disk is re-read instead of served stale from the cache.

``import recsys`` never imports this module (it needs Streamlit).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import streamlit as st

from .registry import MANIFEST, LoadedModel, Registry, RegistryError

#: The command that fills an empty registry (also run by ``scripts/demo``).
BUILD_COMMAND = "python -m recsys registry build-defaults"

#: The four ways of steering (DESIGN.md, Steering), two sentences each, for the Home page.
STEERING_MODES: dict[str, str] = {
    "Standard": (
        "Your picks are encoded into a point in the model's latent space and decoded into a score for "
        "every song. Nothing is steered: this is the list the other modes are measured against."
    ),
    "Postfilter": (
        "The standard scores become probabilities and every song carrying one of your chosen tags is "
        "boosted by (1 + β)^α. The model's picture of you is unchanged, only the ranking is re-weighted, "
        "so it works for every model, Popularity and EASE included. With complete tags it is the most "
        "accurate way to a given tag share; it cannot find what is not tagged."
    ),
    "Tune": (
        "Your point in the latent space moves by α toward the centroid of the chosen tags and away from "
        "your own tag mix, then is decoded. The model imagines a listener who likes those tags, so it "
        "finds songs that go with them, not only songs labelled with them."
    ),
    "Tune + post": (
        "A small latent step toward the tags (its size chosen on held-out listeners when the model was "
        "trained), then the postfilter for the rest. The step finds songs that belong with the tags even "
        "where nobody tagged them; the postfilter keeps your taste. The mode to choose when tags are "
        "incomplete, as real tags are."
    ),
}


@dataclass
class ModelStatus:
    """A registry entry as the app shows it: the manifest if readable, and every integrity problem."""

    model_id: str
    manifest: dict | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.manifest is not None and not self.problems

    @property
    def family(self) -> str:
        return (self.manifest or {}).get("family", "?")

    @property
    def dataset_name(self) -> str:
        return (self.manifest or {}).get("dataset", {}).get("name", "?")

    def metric(self, name: str) -> float | None:
        value = (self.manifest or {}).get("metrics", {}).get(name)
        return float(value) if isinstance(value, int | float) else None


#: What a family's models are, where the id alone misleads; shown next to the id wherever models are
#: listed or chosen. MLP+flow recommends with its MLP (score is the MLP's), so it has the MLP's metrics
#: and lists; its flow only gives steering and the map a second, Gaussian latent space
#: (:mod:`recsys.models.mlp_flow`).
FAMILY_NOTES: dict[str, str] = {
    "mlp": "the MLP autoencoder, steered in its own latent space",
    "mlp_flow": "the MLP's recommendations, steered in a flow (Gaussian) latent space",
}


def model_note(status: ModelStatus) -> str:
    """What the model is, in a few words ("" where its id says enough)."""
    return FAMILY_NOTES.get(status.family, "")


def model_labeler(statuses: list[ModelStatus]):
    """A selector's ``format_func``: model id -> "id — what it is" (the id alone where there is no note)."""
    notes = {s.model_id: model_note(s) for s in statuses}
    return lambda model_id: f"{model_id} — {notes[model_id]}" if notes.get(model_id) else model_id


def registry_label(registry: Registry) -> str:
    """How the pages name the registry: ``$RECSYS_REGISTRY_LABEL`` if set (the screenshot run sets a
    neutral name), else :func:`path_label` of its folder."""
    return os.environ.get("RECSYS_REGISTRY_LABEL") or path_label(registry.root)


def data_dir_label(path: str | Path) -> str:
    """How the pages name the data directory: ``$RECSYS_DATA_LABEL`` if set, else :func:`path_label`."""
    return os.environ.get("RECSYS_DATA_LABEL") or path_label(path)


def path_label(path: str | Path) -> str:
    """A folder as a person reads it: relative to the working directory, or to ``~``, or in full."""
    root = Path(path).expanduser().resolve()
    for base, prefix in ((Path.cwd().resolve(), ""), (Path.home().resolve(), "~/")):
        if base == Path(base.anchor):  # a working directory of / says nothing
            continue
        if root == base:
            return prefix.rstrip("/") or "."
        if root.is_relative_to(base):
            return prefix + str(root.relative_to(base))
    return str(root)


def build_command() -> str:
    """The exact command to build the defaults into the registry the app is reading."""
    env = os.environ.get("RECSYS_MODELS_DIR")
    return f"RECSYS_MODELS_DIR={env} {BUILD_COMMAND}" if env else BUILD_COMMAND


def fix_hint(model_id: str, registry: Registry) -> str:
    """What to do about a model that fails verification or cannot be read."""
    return (
        f"Remove it with `python -m recsys registry remove {model_id}` (or delete the folder "
        f"`{registry.root / model_id}`), then rebuild it with `{build_command()}`."
    )


def files_signature(registry: Registry, model_id: str) -> tuple:
    """(name, size, mtime) of every file of a model: a cache key that changes when a file does.

    A directory replaced by a concurrent save while it is listed is listed again; a link that cannot
    be followed (dangling, a loop) counts by the link itself; an unreadable folder gives ``()``. Never
    raises, never opens a file (a FIFO or device is only stat'ed).
    """
    path = registry.root / model_id

    def stat(entry: os.DirEntry) -> os.stat_result:
        try:
            return entry.stat()
        except OSError:
            return entry.stat(follow_symlinks=False)

    for _ in range(5):
        if not path.is_dir():
            return ()
        try:
            with os.scandir(path) as entries:
                stats = [(e.name, stat(e)) for e in entries]
        except FileNotFoundError:
            continue
        except OSError:
            return ()
        return tuple(sorted((name, s.st_size, s.st_mtime_ns) for name, s in stats))
    return ()


def model_statuses(registry: Registry, verify=None) -> list[ModelStatus]:
    """Every model directory with its manifest and integrity problems (``verify`` defaults to
    ``registry.verify``; the pages pass a cached one)."""
    verify = verify or registry.verify
    out = []
    for entry in registry.list():
        if not entry.ok:
            out.append(ModelStatus(entry.model_id, None, [entry.problem or "unreadable"]))
        else:
            try:
                problems = list(verify(entry.model_id))
            except OSError as e:  # a file that exists but cannot be read (permissions, I/O error)
                problems = [f"model {entry.model_id!r}: cannot read its files ({e})"]
            out.append(ModelStatus(entry.model_id, entry.manifest, problems))
    return out


def _fmt_metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def registry_table(statuses: list[ModelStatus]) -> pd.DataFrame:
    """One row per model: id, family, data set, NDCG@100, Recall@20, created, integrity (strings)."""
    rows = []
    for s in statuses:
        m = s.manifest or {}
        if s.ok:
            integrity = "ok"
        elif s.manifest is None:
            integrity = "UNREADABLE"
        else:
            integrity = "FAILS VERIFICATION"
        rows.append(
            {
                "model": s.model_id,
                "family": s.family,
                "what it is": model_note(s),
                "data set": s.dataset_name,
                "NDCG@100": _fmt_metric(s.metric("ndcg@100")),
                "Recall@20": _fmt_metric(s.metric("recall@20")),
                "created": str(m.get("created", "–")).replace("T", " ").replace("+00:00", " UTC"),
                "integrity": integrity,
            }
        )
    columns = ["model", "family", "what it is", "data set", "NDCG@100", "Recall@20", "created", "integrity"]
    return pd.DataFrame(rows, columns=columns).set_index("model")


def datasets_loaded(statuses: list[ModelStatus]) -> pd.DataFrame:
    """The data sets the intact models were trained on: name, noun, items, training users, models."""
    groups: dict[tuple, dict] = {}
    for s in statuses:
        if not s.ok:
            continue
        d = s.manifest["dataset"]
        key = (d.get("name"), d.get("fingerprint"))
        g = groups.setdefault(
            key,
            {
                "data set": d.get("name", "?"),
                "items": d.get("n_items"),
                "item noun": d.get("item_noun", "item"),
                "training users": d.get("n_users"),
                "models": [],
            },
        )
        g["models"].append(s.model_id)
    rows = [{**g, "models": ", ".join(g["models"])} for g in groups.values()]
    return pd.DataFrame(rows, columns=["data set", "items", "item noun", "training users", "models"])


def comparison_table(statuses: list[ModelStatus]) -> pd.DataFrame:
    """Stored test metrics of the intact models, grouped by data set and split seed (comparable rows)."""
    rows = []
    for s in statuses:
        if not s.ok:
            continue
        info = s.manifest.get("info", {})
        metrics = s.manifest.get("metrics", {})
        rows.append(
            {
                "model": s.model_id,
                "family": s.family,
                "what it is": model_note(s),
                "data set": s.dataset_name,
                "split seed": info.get("split_seed", info.get("split", {}).get("seed")),
                "Recall@20": s.metric("recall@20"),
                "Recall@50": s.metric("recall@50"),
                "NDCG@100": s.metric("ndcg@100"),
                "coverage@20": s.metric("coverage@20"),
                "next-item HR@10": s.metric("hr@10"),
                "next-item NDCG@10": s.metric("ndcg@10"),
                "fit s": s.manifest.get("fit_seconds"),
                "score ms/user": metrics.get("score_ms_per_user"),
            }
        )
    cols = ["model", "family", "data set", "split seed", "Recall@20", "Recall@50", "NDCG@100"]
    cols += ["coverage@20", "next-item HR@10", "next-item NDCG@10", "fit s", "score ms/user", "what it is"]
    df = pd.DataFrame(rows, columns=cols)
    # next-item columns only when some model was scored on the temporal protocol (sequential models)
    df = df.drop(columns=[c for c in ("next-item HR@10", "next-item NDCG@10") if df[c].isna().all()])
    return df.sort_values(["data set", "NDCG@100"], ascending=[True, False], na_position="last").reset_index(drop=True)


def item_labels(items: pd.DataFrame) -> dict[str, str]:
    """item id -> "title — artist" (what the song picker shows and searches), unique per model.

    Songs that share a title and artist get their id appended ("title — artist (s01858)"): the
    picker remembers a choice by its label, so a repeated label would swap a song for its namesake.
    """
    ids = [str(i) for i in items["item_id"]]
    labels = [f"{t} — {a}" for t, a in zip(items["title"], items["artist"], strict=True)]
    counts = Counter(labels)
    return {i: f"{lab} ({i})" if counts[lab] > 1 else lab for i, lab in zip(ids, labels, strict=True)}


# ---- Streamlit routing and caches ------------------------------------------------------------
_ROUTED = "_recsys_routed"
_WANTED = "_recsys_wanted_page"


def mark_routed() -> None:
    """Called by ``app.py`` after ``st.navigation``: the session now runs pages through the router.

    Also finishes a deep link that :func:`require_router` sent through ``app.py``.
    """
    st.session_state[_ROUTED] = True
    wanted = st.session_state.pop(_WANTED, None)
    if wanted:
        page, params = wanted
        st.switch_page(page, query_params=params)


def require_router(page_file: str) -> None:
    """First line of every page: make sure ``app.py`` (page config, sidebar, navigation) ran.

    On a freshly started server, Streamlit serves a deep link (``/models``) in its legacy
    ``pages/``-directory mode and runs the page file without ``app.py``. Send such a session
    through ``app.py``, which then switches back to the requested page. ``st.switch_page`` clears
    the URL's query parameters, so both switches carry them: a shared link opened as a fresh
    server's first request keeps its state.
    """
    if not st.session_state.get(_ROUTED):
        params = st.query_params.to_dict()
        st.session_state[_WANTED] = (f"pages/{Path(page_file).name}", params)
        st.switch_page("app.py", query_params=params)


def current_registry() -> Registry:
    """The registry the app reads: ``$RECSYS_MODELS_DIR`` or ``models_store/`` (read on every run)."""
    return Registry()


@st.cache_data(show_spinner=False, max_entries=256)
def _verify_cached(root: str, model_id: str, signature: tuple) -> list[str]:
    return Registry(root).verify(model_id)


def cached_statuses(registry: Registry) -> list[ModelStatus]:
    """:func:`model_statuses` with checksums cached until a model's files change."""
    root = str(registry.root)
    return model_statuses(registry, lambda mid: _verify_cached(root, mid, files_signature(registry, mid)))


@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def _load_cached(root: str, model_id: str, signature: tuple) -> LoadedModel:
    return Registry(root).load(model_id)


def cached_model(registry: Registry, model_id: str) -> LoadedModel:
    """The verified model, loaded once per (registry root, model id, file signature); raises RegistryError."""
    return _load_cached(str(registry.root), model_id, files_signature(registry, model_id))


def manifest_text_or_problem(registry: Registry, model_id: str) -> tuple[dict | None, str | None]:
    """The manifest as JSON for the viewer, or why it cannot be shown."""
    try:
        return registry.read_manifest(model_id), None
    except RegistryError as e:
        return None, str(e)
    except OSError as e:
        return None, f"model {model_id!r}: {MANIFEST} cannot be read ({e})"


# ---- steering (the Recommend page) --------------------------------------------------------------
#: Column order and titles of the Recommend page.
COLUMNS: dict[str, str] = {
    "standard": "Standard",
    "postfilter": "Postfiltered",
    "tune": "Tuned",
    "tune+post": "Tune + post",
    "svd": "SVD baseline",
}


#: The Recommend page's share dial starts here (percent of the list carrying a chosen tag).
DEFAULT_SHARE_PCT = 40
#: Largest strength the Recommend page's hand-set alpha slider offers.
MAX_ALPHA = 8.0


def finite_or(value, default: float, lo: float, hi: float) -> float:
    """``value`` as a float clipped to [lo, hi]; ``default`` when it is missing, not a number, NaN or infinite.

    URL parameters are typed by people: ``alpha=nan`` must not reach the steering code (where
    ``min(max(nan, 0), 4)`` stays nan).
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return min(max(v, lo), hi) if np.isfinite(v) else default


def demo_person(loaded: LoadedModel, steerer) -> tuple[list[str], dict[str, float]]:
    """A first visit's person: the first stored held-out listener and a tag their picks lack.

    The tag is the most widely carried steerable tag that none of the picks carries (else the one
    they carry least), so the default page shows every column moving toward something new.
    """
    picks = sample_listener(loaded, 0)
    tags = steerer.steerable_tags
    if not picks or not tags:
        return picks, {}
    from .steering import tag_counts

    counts = tag_counts(steerer.history(picks), steerer.tag_matrix)[0]
    size = np.asarray(steerer.tag_matrix.sum(axis=0)).ravel()
    col = {t: steerer.vocabulary.index(t) for t in tags}
    best = min(tags, key=lambda t: (counts[col[t]], -size[col[t]], t))
    return picks, {best: 1.0}


def off_dial_text(got: float, share: float | None, k: int) -> str | None:
    """A column's distance from the dial, only where it is off by more than half a song of its ``k`` (else None)."""
    if share is None or got != got or abs(got - share) <= 0.5 / k + 1e-9:
        return None
    return f"{got - share:+.0%} vs dial"


def strength_text(mode_list) -> str:
    """The strength a column used, for its caption: ``α = 2.31``, or for tune+post ``step 0.30 · α = 0.84``."""
    text = f"α = {mode_list.alpha:.2f}"
    return text if mode_list.step is None else f"step {mode_list.step:.2f} · {text}"


def parse_tags_param(text: str | None) -> dict[str, float]:
    """``"rock:1,hip hop:2.5"`` (the URL form) -> {"rock": 1.0, "hip hop": 2.5}; a bare tag weighs 1."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            out[part] = 1.0
    return out


def format_tags_param(tags: dict[str, float]) -> str:
    return ",".join(f"{t}:{w:g}" for t, w in tags.items())


def svd_partner(statuses: list[ModelStatus], fingerprint: str) -> str | None:
    """The SVD baseline trained on the same data (same item columns) as the model, if any."""
    for s in statuses:
        if s.ok and s.family == "svd" and s.manifest["dataset"].get("fingerprint") == fingerprint:
            return s.model_id
    return None


def steerable_statuses(statuses: list[ModelStatus]) -> list[ModelStatus]:
    """Models the Recommend page can use: verified and saved with steering data."""
    return [s for s in statuses if s.ok and "steering" in (s.manifest.get("info") or {})]


def results_csv(lists: dict[str, pd.DataFrame]) -> str:
    """One CSV of every column's list: column, rank, item_id, title, artist, tags, score, on_target."""
    frames = []
    for name, df in lists.items():
        f = df[["rank", "item_id", "title", "artist", "tags", "score", "on_target"]].copy()
        f["tags"] = ["|".join(t) for t in f["tags"]]
        f.insert(0, "column", name)
        frames.append(f)
    return pd.concat(frames, ignore_index=True).to_csv(index=False) if frames else ""


@st.cache_resource(show_spinner="Preparing steering…", max_entries=8)
def _steerer_cached(root: str, model_id: str, signature: tuple):
    from .steering import Steerer

    return Steerer.from_loaded(_load_cached(root, model_id, signature))


def cached_steerer(registry: Registry, model_id: str):
    """The model's :class:`~recsys.steering.Steerer`, built once per file signature; raises on problems."""
    return _steerer_cached(str(registry.root), model_id, files_signature(registry, model_id))


@st.cache_resource(show_spinner=False, max_entries=8)  # not cache_data: no 20k-entry copy per rerun
def _labels_cached(root: str, model_id: str, signature: tuple) -> dict[str, str]:
    return item_labels(_load_cached(root, model_id, signature).items)


def cached_item_labels(registry: Registry, model_id: str) -> dict[str, str]:
    """item id -> "title — artist" for the picker, computed once per model; shared, do not modify."""
    return _labels_cached(str(registry.root), model_id, files_signature(registry, model_id))


def sample_listener(loaded: LoadedModel, draw: int) -> list[str]:
    """Item ids of a held-out listener stored with the model (``draw`` picks which); [] if none stored."""
    from .model_extras import stored_listeners

    listeners = stored_listeners(loaded.extras)
    if not listeners:
        return []
    cols = listeners[draw % len(listeners)]
    return [str(v) for v in loaded.items["item_id"].iloc[cols]]


# ---- Compare -----------------------------------------------------------------------------------
#: Alpha grids of the Compare page's steering curves (a lighter version of steer-eval's defaults).
COMPARE_ALPHAS: dict[str, tuple[float, ...]] = {
    "postfilter": (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
    "tune": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "tune+post": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
}


@st.cache_data(show_spinner=False, max_entries=32)
def _sweep_cached(root: str, model_id: str, signature: tuple) -> pd.DataFrame | None:
    from .model_extras import stored_listener_split
    from .steering.evaluation import SweepConfig, steering_sweep

    loaded = _load_cached(root, model_id, signature)
    steerer = _steerer_cached(root, model_id, signature)
    split = stored_listener_split(loaded.extras, loaded.model.n_items_, ordered=steerer.sequential)
    if split is None:
        return None
    return steering_sweep(steerer, *split, alphas=COMPARE_ALPHAS, config=SweepConfig(n_users=100))


def cached_sweep(registry: Registry, model_id: str) -> pd.DataFrame | None:
    """Steering sweep of a model over its stored test listeners (None if it has none stored)."""
    return _sweep_cached(str(registry.root), model_id, files_signature(registry, model_id))


#: Target share of the Compare page's incomplete-tags check, and how its hiding choices read.
INCOMPLETE_SHARE = 0.5
INCOMPLETE_BIAS_LABELS = {"uniform": "any song alike", "popularity": "less popular songs first"}


@st.cache_resource(show_spinner=False, max_entries=2)
def _dataset_cached(name: str):
    from .data import load_dataset

    return load_dataset(name)


@st.cache_data(show_spinner=False, max_entries=16)
def _incomplete_cached(
    root: str, model_id: str, signature: tuple, hidden: float, bias: str, share: float
) -> tuple[pd.DataFrame, str] | None:
    from .model_extras import stored_listener_split
    from .steering import Steerer
    from .steering.evaluation import split_of
    from .steering.protocols import (
        ProtocolConfig,
        hide_tags,
        matched_share_eval,
        summarise,
        target_heldout,
        visible_steerer,
    )

    loaded = _load_cached(root, model_id, signature)
    steerer = _steerer_cached(root, model_id, signature)
    listeners = stored_listener_split(loaded.extras, loaded.model.n_items_)
    if listeners is None or not steerer.latent:
        return None
    try:  # the training users, to rebuild the centroids from the visible tags only (as the benchmark does)
        split = split_of(loaded, _dataset_cached)
        train_x = split.train.interactions
        items = hide_tags(split.train.items, hidden, bias=bias, popularity=steerer.item_popularity, seed=0)
        visible = visible_steerer(steerer, train_x, items, None)
        how = "vocabulary, centroids, boost and share rebuilt from the visible tags"
    except (OSError, ValueError) as e:  # the data set is not on this machine: keep the trained centroids
        items = hide_tags(loaded.items, hidden, bias=bias, popularity=steerer.item_popularity, seed=0)
        visible = Steerer(
            steerer.model,
            items,
            vocabulary=steerer.vocabulary,
            centroids=steerer.centroids,
            item_popularity=steerer.item_popularity,
            population_point=steerer.population_point,
            step_rule=steerer.step_rule,
        )
        logging.getLogger("recsys").info("incomplete-tags check of %s without its training data: %s", model_id, e)
        how = (
            "the data set this model was trained on is not available here, so the boost and the share see the "
            "visible tags while the centroids stay as trained (they still know the hidden tags)"
        )
    cfg = ProtocolConfig(n_users=len(listeners[0].indptr) - 1, shares=(share,), n_boot=500)
    targets = target_heldout(steerer, *listeners)
    per_user = matched_share_eval(steerer, visible, *listeners, targets, cfg)
    if per_user.empty:
        return None
    return summarise(per_user, cfg), how


def incomplete_tags_check(
    registry: Registry, model_id: str, hidden: float, bias: str, share: float = INCOMPLETE_SHARE
) -> tuple[pd.DataFrame, str] | None:
    """E3 on a model's stored listeners: every mode at the same visible share with ``hidden`` of the tags
    hidden (``bias`` uniform or popularity); (summary table, how the hidden tags were applied), or None."""
    return _incomplete_cached(str(registry.root), model_id, files_signature(registry, model_id), hidden, bias, share)


def pairwise_jaccard(lists: dict[str, list[str]]) -> pd.DataFrame:
    """Jaccard overlap of every pair of top lists (square DataFrame indexed by list name)."""
    names = list(lists)
    sets = [set(lists[n]) for n in names]
    m = np.array([[len(a & b) / max(len(a | b), 1) for b in sets] for a in sets])
    return pd.DataFrame(m, index=names, columns=names)


def steering_latency_ms(steerer, picks: list[str], tags: dict[str, float], repeats: int = 5) -> float:
    """Median wall time (ms) of one Recommend-page call (all modes) for this person."""
    import time

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        steerer.recommend(picks, tags, 1.0)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


# ---- Models: training curves and a small training run --------------------------------------------
def training_curves(manifest: dict):
    """Plotly figure of the per-epoch log (train loss and validation NDCG@100), or None without a log."""
    log = manifest.get("training_log") or []
    # the manifest viewer shows damaged models too: use only well-formed epochs
    log = (
        [e for e in log if isinstance(e, dict) and isinstance(e.get("train_loss"), int | float)]
        if isinstance(log, list)
        else []
    )
    if not log:
        return None
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    df = pd.DataFrame(log)
    if "val_ndcg@100" in df:
        df["val_ndcg@100"] = pd.to_numeric(df["val_ndcg@100"], errors="coerce")
    df["step"] = np.arange(1, len(df) + 1)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=df["step"], y=df["train_loss"], name="train loss", mode="lines+markers"))
    if "val_ndcg@100" in df and df["val_ndcg@100"].notna().any():
        fig.add_trace(
            go.Scatter(x=df["step"], y=df["val_ndcg@100"], name="validation NDCG@100", mode="lines+markers"),
            secondary_y=True,
        )
    fig.update_layout(template="plotly_white", height=340, margin={"t": 30, "b": 40}, legend={"orientation": "h"})
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="train loss", secondary_y=False)
    fig.update_yaxes(title_text="validation NDCG@100", secondary_y=True)
    return fig


#: Families the Models page can train in a page request, with small settings that take seconds.
QUICK_TRAIN: dict[str, dict] = {
    "ease": {"l2": 200.0},
    "mlp": {"epochs": 10},
    "multvae": {"epochs": 10},
    "autoencoder": {"epochs": 10},
    "svd": {"n_epochs": 10},
}


def train_small_model(registry: Registry, family: str, epochs: int | None, progress) -> tuple[str, dict]:
    """Train a small model of ``family`` on the embedded synthetic data and register it.

    ``progress(fraction, text)`` is called per epoch. Returns (model id, test metrics).
    """
    from .training import train_from_config

    params = dict(QUICK_TRAIN[family])
    if epochs is not None and "epochs" in params:
        params["epochs"] = int(epochs)
    total = params.get("epochs")
    cfg = {
        "family": family,
        "dataset": "synthetic",
        "seed": 0,
        "model_id": f"{family}-synthetic-small",
        "params": params,
    }

    def on_epoch(epoch: int, elapsed: float, info: dict) -> None:
        ndcg = info.get("val_ndcg@100")
        text = f"epoch {epoch}/{total}: {elapsed:.0f} s" + (f", validation NDCG@100 {ndcg:.4f}" if ndcg else "")
        progress(min(epoch / total, 1.0) if total else 0.5, text)

    from .defaults import default_dataset

    return train_from_config(cfg, dataset=default_dataset(), registry=registry, progress=on_epoch)


@contextlib.contextmanager
def page_guard(page: str, *, marker: bool = True):
    """Wrap a page's body: an unexpected error becomes a message with what to try, never a traceback.

    ``st.stop`` / reruns pass through (they are not ``Exception``). The error is logged in full.
    ``marker``: end a body that ran to its end (or failed) with :func:`render_marker`; a body that stops
    early writes its own with :func:`stop_page` (nothing written after ``st.stop()`` reaches the browser),
    and a run interrupted by a rerun writes none.
    """
    try:
        yield
    except Exception as e:
        import logging

        logging.getLogger("recsys").exception("page %s failed", page)
        st.error(
            f"Something went wrong on this page ({type(e).__name__}: {e}). Reload the page; if it persists, "
            f"check the models on the **Models** page or rebuild them with `{BUILD_COMMAND}`."
        )
    if marker:
        render_marker(page)


#: Session key of the number of finished page runs (:func:`render_marker`).
_RENDERED = "_recsys_rendered_runs"


def render_marker(page: str) -> None:
    """The run's last element: an invisible ``<span class="recsys-rendered" data-page=.. data-run=N>``,
    N counting this session's finished page (and fragment) runs.

    Streamlit delivers a run's elements in order, so a browser that shows run N's marker shows
    everything run N wrote before it: the browser tests wait for a number they have not seen yet
    (``tests/browser/helpers.py``). :func:`page_guard` writes it at the end of a page; a fragment's
    rerun does not run the page, so a fragment's body runs under its own ``page_guard`` too (the
    Recommend page's), or the tests' wait after a move inside it never ends.
    """
    n = int(st.session_state.get(_RENDERED, 0)) + 1
    st.session_state[_RENDERED] = n
    st.html(f"<span class='recsys-rendered' data-page='{page}' data-run='{n}' hidden></span>")


def stop_page(page: str) -> NoReturn:
    """End the page's run here: its run marker, then ``st.stop()``.

    Use it instead of a bare ``st.stop()`` inside :func:`page_guard`: an element written after
    ``st.stop()`` never reaches the browser, so the guard's own marker for a stopped run was lost and the
    browser tests' wait never ended (a fresh visit to Compare, which stops when there are no picks).
    """
    render_marker(page)
    st.stop()


# ---- Latent space ---------------------------------------------------------------------------------
def mappable_statuses(statuses: list[ModelStatus]) -> list[ModelStatus]:
    """Models with a stored latent map (latent models trained with this version)."""
    return [s for s in steerable_statuses(statuses) if "map" in (s.manifest.get("info") or {})]


@st.cache_data(show_spinner=False, max_entries=16)
def _map_cached(root: str, model_id: str, signature: tuple, params: tuple | None):
    """(LatentMap, user tag codes): the stored map, or a new layout of the same latent points with ``params``.

    A new layout refits only the 2-D layout of the stored item and user latent points (the training
    histories are not stored with the model) and places the tag centroids by the placement rule.
    """
    from dataclasses import replace

    from .model_extras import map_reducer_factory
    from .projection import LatentMap

    loaded = _load_cached(root, model_id, signature)
    stored = LatentMap.from_arrays(loaded.extras)
    codes = loaded.extras.get("mapview.user_tag")
    if params is None:
        return stored, codes
    n_neighbors, min_dist = params
    reducer = map_reducer_factory()(
        n_neighbors=int(n_neighbors), min_dist=float(min_dist), n_epochs=stored.n_epochs, random_state=stored.seed
    )
    coords = np.asarray(reducer.fit_transform(stored.stored_latent), dtype=np.float32)
    n_i = len(stored.item_index)
    new = replace(
        stored,
        item_coords=coords[:n_i],
        user_coords=coords[n_i:],
        n_neighbors=int(n_neighbors),
        min_dist=float(min_dist),
    )
    steerer = _steerer_cached(root, model_id, signature)
    centroids = steerer.centroids
    if centroids is not None and len(stored.extra_coords):
        new = replace(new, extra_coords=new.place_latent(steerer.model, centroids.centroids).astype(np.float32))
    return new, codes


def cached_map(registry: Registry, model_id: str, params: tuple | None = None):
    """The model's stored map, or one recomputed with (n_neighbors, min_dist) (cached)."""
    return _map_cached(str(registry.root), model_id, files_signature(registry, model_id), params)


# ---- the person across pages --------------------------------------------------------------------
#: Session key of the person's state (picks and tags per data set, model, alpha). Streamlit deletes a
#: widget's state when a run does not draw the widget, so the Recommend page mirrors its widgets here
#: (a plain key survives page changes) and restores them from it when it is opened again.
PERSON_KEY = "person"


def remember_person(
    *,
    dataset: str,
    model_id: str,
    fingerprint: str,
    picks: list[str],
    tags: dict,
    alpha: float,
    share_pct: int = DEFAULT_SHARE_PCT,
    manual: bool = False,
):
    """Mirror the Recommend page's widgets into the session (read by the other pages).

    ``alpha`` is the hand-set slider's value; the Tuned column's solved strength is kept by
    :func:`remember_tuned_alpha` (the Latent space page marks that point).
    """
    person = st.session_state.setdefault(PERSON_KEY, {"by_data": {}})
    person.update(
        dataset=dataset, model=model_id, alpha_manual=float(alpha), share_pct=int(share_pct), manual=bool(manual)
    )
    person.setdefault("alpha", float(alpha))
    person["by_data"][fingerprint[:16]] = {"picks": list(picks), "tags": dict(tags)}


def remember_tuned_alpha(alpha: float) -> None:
    """The strength the Tuned column used (solved from the share dial, or the hand-set alpha)."""
    st.session_state.setdefault(PERSON_KEY, {"by_data": {}})["alpha"] = float(alpha)


def current_person(fingerprint: str | None = None) -> dict:
    """{"dataset", "model", "alpha", "alpha_manual", "share_pct", "manual", "picks", "tags"} of the session's person.

    ``alpha``: the Tuned column's strength; picks/tags are empty if none yet.

    ``fingerprint``: the data set's (item columns); picks and tags are kept per data set.
    """
    person = st.session_state.get(PERSON_KEY) or {"by_data": {}}
    mine = person["by_data"].get((fingerprint or "")[:16], {"picks": [], "tags": {}})
    return {
        "dataset": person.get("dataset"),
        "model": person.get("model"),
        "alpha": person.get("alpha", 1.0),
        "alpha_manual": person.get("alpha_manual", 1.0),
        "share_pct": person.get("share_pct", DEFAULT_SHARE_PCT),
        "manual": person.get("manual", False),
        "picks": mine["picks"],
        "tags": mine["tags"],
    }


# ---- Your data: uploads and training jobs ------------------------------------------------------
def upload_error_text(error: Exception) -> str:
    """An import problem as the page shows it: the person's own file name and line in bold, then what to do."""
    from .data import CsvImportError

    if isinstance(error, CsvImportError):
        where = Path(error.file).name + ("" if error.line is None else f", line {error.line}")
        return f"**{where}**: {error.problem}. Fix the file and upload it again."
    return f"{error}"


def job_models_table(status: dict) -> pd.DataFrame:
    """One row per model of a training job: what it is, how far it got, its test NDCG@100."""
    rows = []
    for m in status.get("models") or []:
        epochs = m.get("epochs")
        progress = f"{m.get('epoch', 0)}/{epochs}" if epochs and m.get("state") == "training" else ""
        metrics = m.get("metrics") or {}
        rows.append(
            {
                "model": m.get("model_id", ""),
                "state": m.get("state", ""),
                "epoch": progress,
                "NDCG@100": _fmt_metric(metrics.get("ndcg@100")),
                "seconds": "" if m.get("seconds") is None else f"{m['seconds']:.0f}",
                "problem": m.get("error", ""),
            }
        )
    return pd.DataFrame(rows)


def open_model(dataset: str, model_id: str) -> None:
    """Make ``model_id`` the person's model, so Recommend, Latent space and Compare open on it."""
    person = st.session_state.setdefault(PERSON_KEY, {"by_data": {}})
    person.update(dataset=dataset, model=model_id)
    for key, value in (("alpha_manual", 1.0), ("share_pct", DEFAULT_SHARE_PCT), ("manual", False)):
        person.setdefault(key, value)
    for key in ("rec_dataset", "rec_model", "map_model", "cmp_dataset"):
        st.session_state.pop(key, None)
    # a data set the person has no picks for opens on a held-out listener, as the demo's first visit does
    st.session_state["rec_fresh"] = True
