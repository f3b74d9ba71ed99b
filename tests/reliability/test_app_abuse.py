"""The app under abuse, through AppTest (in-process): random widget sequences, memory over many reruns,
isolated sessions.

Random sequences pick any widget on the current page and give it a random value (sliders at their
extremes too), switch pages and models, sample listeners, damage a model's files mid-session
(flipped byte, truncated file, swapped manifest), empty the registry and bring it back. After every
rerun the app must not have raised and no page may show the "Something went wrong" message of
``page_guard`` (an unexpected exception). Sequences are seeded: a failure names its seed and step.

Memory: ``RECSYS_SLIDER_MOVES`` moves of the share dial on the Recommend page (500 for the figures,
40 in CI) with picks and a tag chosen; the RSS of this test process (AppTest runs the script in it)
must grow by less than 50 MB after a warm-up.
"""

from __future__ import annotations

import gc
import random
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys.registry import Registry

from ..app.conftest import ROOT, RUN_TIMEOUT_S, flip_byte
from .conftest import count, log_figures
from .registry_damage import KINDS, damage

PAGES = ("pages/home.py", "pages/recommend.py", "pages/latent_space.py", "pages/compare.py", "pages/models.py")
UNEXPECTED = "Something went wrong"
STEPS = 20
#: Page weights of a random page switch: the Recommend page has the most to abuse.
PAGE_WEIGHTS = (1, 4, 1, 2, 1)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def through_app(at: AppTest, page: str) -> AppTest:
    """Switch to ``page`` so that the rerun goes through ``app.py`` (router, sidebar), then the page.

    AppTest runs a switched-to page file on its own (it starts each run in Streamlit's legacy
    ``pages/`` mode), so ``app.py``'s sidebar would never rerun after a switch. Clearing the routed
    flag makes the page send the session through ``app.py`` (``require_router``), which switches
    back to it: the path a deep link takes in a browser.
    """
    at.session_state["_recsys_routed"] = False
    return at.switch_page(page)


def _ordinary(path: Path) -> bool:
    """A regular file of ordinary size that is not a link: safe for the test itself to read or write."""
    return path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 30


def _check(at: AppTest, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    unexpected = [e.value for e in at.error if UNEXPECTED in e.value]
    assert not unexpected, f"{where}: {unexpected}"


class Abuser:
    """Random actions on one AppTest session over a private registry copy."""

    def __init__(self, rng: random.Random, registry: Path, pristine: Path, empty: Path, monkeypatch):
        self.rng, self.registry, self.pristine, self.empty, self.mp = rng, registry, pristine, empty, monkeypatch
        self._items: dict[str, list[str]] = {}
        self.actions: list[str] = []
        self.structural: dict[str, int] = {}  # structural damages done, by kind
        self.through_app = 0  # page switches that reran app.py (router and sidebar) too

    def item_ids(self, model_id: str) -> list[str]:
        if model_id not in self._items:
            self._items[model_id] = list(Registry(self.pristine).load(model_id).items["item_id"].astype(str))
        return self._items[model_id]

    def widget_action(self, at: AppTest) -> str:
        rng = self.rng
        widgets = [
            *[("slider", w) for w in at.slider if not w.disabled],
            *[("selectbox", w) for w in at.selectbox if not w.disabled],
            *[("multiselect", w) for w in at.multiselect if not w.disabled],
            *[("toggle", w) for w in at.toggle if not w.disabled],
            *[("button", w) for w in at.button if not w.disabled and "Train" not in w.label],
        ]
        if not widgets:  # an empty registry or a page without widgets: go elsewhere
            return self.switch(at)
        kind, w = rng.choice(widgets)
        if kind == "slider":
            lo, hi, step = w.min, w.max, w.step
            if isinstance(lo, int | float) and isinstance(hi, int | float):
                n = int(round((hi - lo) / step)) if step else 0
                v = rng.choice([lo, hi, lo + step * rng.randint(0, max(n, 0))])
                v = type(lo)(round(v, 6)) if isinstance(lo, float) else int(v)
                w.set_value(min(max(v, lo), hi))
                return f"slider {w.key or w.label} = {v}"
            return "slider (skipped)"
        if kind == "selectbox":
            opt = rng.choice(list(w.options)) if w.options else None
            if opt is not None:
                w.set_value(opt)
            return f"selectbox {w.key or w.label} = {opt}"
        if kind == "multiselect":
            if w.key and w.key.startswith("rec_picks_"):
                model = at.selectbox(key="rec_model").value
                ids = self.item_ids(model)
                values = rng.sample(ids, rng.choice([0, 1, 3, 10, min(60, len(ids))]))
            else:
                opts = list(w.options)
                values = rng.sample(opts, rng.randint(0, len(opts)))
            w.set_value(values)
            return f"multiselect {w.key or w.label} = {len(values)} values"
        if kind == "toggle":
            w.set_value(not w.value)
            return f"toggle {w.key or w.label}"
        w.click()
        return f"button {w.key or w.label}"

    def damage(self) -> str:
        models = [
            p for p in self.registry.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        ]
        if not models:
            return "damage: nothing to damage"
        m = self.rng.choice(models)
        how = self.rng.choice(["flip", "truncate", "swap", "structure", "structure"])
        if how == "structure":  # a directory, FIFO, /dev/zero link, sparse file, deep JSON, wrong field types...
            kind = self.rng.choice(sorted(KINDS))
            name = self.rng.choice(KINDS[kind])
            if name != "." and not _ordinary(m / name):
                return f"damage {m.name} (nothing to damage: {name})"
            outside = self.registry.parent / "outside"
            outside.mkdir(exist_ok=True)
            other = self.rng.choice([p for p in models if p != m] or [m])
            self.structural[kind] = self.structural.get(kind, 0) + 1
            return f"damage {m.name} ({damage(m, kind, name, outside=outside, other=other, rng=self.rng)})"
        if how == "flip":
            f = m / self.rng.choice(["weights.safetensors", "items.json", "extras.safetensors"])
            if not _ordinary(f):  # already a FIFO, a link, a sparse file...: reading it is the app's job
                return f"damage {m.name} (nothing to flip)"
            flip_byte(f)
        elif how == "truncate":
            f = m / self.rng.choice(["weights.safetensors", "items.json", "manifest.json"])
            if not _ordinary(f):
                return f"damage {m.name} (nothing to truncate)"
            f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])
        else:
            other = self.rng.choice([p for p in models if p != m] or [m])
            if not _ordinary(other / "manifest.json") or not _ordinary(m / "manifest.json"):
                return f"damage {m.name} (nothing to swap)"
            shutil.copy(other / "manifest.json", m / "manifest.json")
        return f"damage {m.name} ({how})"

    def repair(self) -> str:
        shutil.rmtree(self.registry)  # never follows the links that damage() made
        shutil.copytree(self.pristine, self.registry)
        return "repair"

    def switch(self, at: AppTest) -> str:
        page = self.rng.choices(PAGES, weights=PAGE_WEIGHTS)[0]
        if self.rng.random() < 0.5:  # half the switches rerun app.py's router and sidebar too
            through_app(at, page)
            self.through_app += 1
            return f"page {page} (through app.py)"
        at.switch_page(page)
        return f"page {page}"

    def step(self, at: AppTest) -> str:
        r = self.rng.random()
        if r < 0.2:
            return self.switch(at)
        if r < 0.26:
            return self.damage()
        if r < 0.3:
            self.mp.setenv("RECSYS_MODELS_DIR", str(self.empty))
            return "empty registry"
        if r < 0.36:
            self.mp.setenv("RECSYS_MODELS_DIR", str(self.registry))
            return self.repair()
        return self.widget_action(at)


def test_random_widget_sequences_never_raise(built_registry: Path, tmp_path: Path, monkeypatch) -> None:
    sequences = count("RECSYS_APP_SEQUENCES")
    t0 = time.perf_counter()
    runs, kinds, structural, through = 0, {}, {}, 0
    for seed in range(sequences):
        rng = random.Random(seed)
        registry = Path(shutil.copytree(built_registry, tmp_path / f"models-{seed}"))
        empty = tmp_path / f"empty-{seed}"
        abuser = Abuser(rng, registry, built_registry, empty, monkeypatch)
        monkeypatch.setenv("RECSYS_MODELS_DIR", str(registry))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S)
        if rng.random() < 0.5:  # a deep link with odd values
            at.query_params.update({"alpha": rng.choice(["1e9", "-5", "nan", "4"]), "picks": "x,,y", "tags": "::"})
        at.run()
        _check(at, f"seed {seed}, start")
        at.switch_page(rng.choice(PAGES)).run()
        _check(at, f"seed {seed}, first page")
        for k in range(STEPS):
            action = abuser.step(at)
            abuser.actions.append(action)
            kinds[action.split()[0]] = kinds.get(action.split()[0], 0) + 1
            at.run()
            runs += 1
            _check(at, f"seed {seed}, step {k} ({action}); before: {abuser.actions[-5:-1]}")
        through += abuser.through_app
        for kind, n in abuser.structural.items():
            structural[kind] = structural.get(kind, 0) + n
    log_figures(
        "app_random_sequences",
        sequences=sequences,
        reruns=runs,
        actions=kinds,
        structural_damage=structural,
        switches_through_app_py=through,
        wall_s=round(time.perf_counter() - t0, 1),
    )


#: Issue 15's structural damage, one after another, each seen by every page of one session.
STRUCTURAL = [
    ("directory", "manifest.json", "mlp-synthetic"),
    ("deep-json", "manifest.json", "ease-synthetic"),
    ("schema", "manifest.json", "mlp-synthetic"),
    ("fifo", "weights.safetensors", "mlp-synthetic"),
    ("link-devzero", "weights.safetensors", "ease-synthetic"),
    ("sparse-6GiB", "weights.safetensors", "mlp-synthetic"),
    ("deep-header", "extras.safetensors", "mlp-synthetic"),
    ("link-outside", ".", "svd-synthetic"),
]


def test_structural_damage_between_reruns_gives_every_page_a_message(
    built_registry: Path, tmp_path: Path, monkeypatch
) -> None:
    """app.py (router, sidebar) and every page rerun after each damage: no exception, no "Something
    went wrong", the sidebar counts the damaged model, and repairing brings it back."""
    registry = Path(shutil.copytree(built_registry, tmp_path / "models"))
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    _check(at, "start")
    rng = random.Random(15)
    runs, t0 = 0, time.perf_counter()
    for kind, name, model in STRUCTURAL:
        what = damage(registry / model, kind, name, outside=outside, other=registry / "ease-synthetic", rng=rng)
        for page in PAGES:
            through_app(at, page).run()
            runs += 1
            _check(at, f"{what} of {model}, {page}")
            sidebar = " ".join(c.value for c in at.sidebar.caption)
            assert "1 failing verification" in sidebar, f"{what} of {model}, {page}: sidebar says {sidebar!r}"
        shutil.rmtree(registry)  # repair: the next rerun sees the pristine registry again
        shutil.copytree(built_registry, registry)
        at.run()
        runs += 1
        _check(at, f"after repairing {what}")
        assert "failing" not in " ".join(c.value for c in at.sidebar.caption)
    log_figures(
        "app_structural_damage", damages=len(STRUCTURAL), reruns=runs, wall_s=round(time.perf_counter() - t0, 1)
    )


def test_an_error_in_app_py_itself_is_a_message_and_the_page_still_runs(built_registry: Path, monkeypatch) -> None:
    """The router and the sidebar run inside page_guard: what fails there is a message, and the page still runs."""
    import recsys.app_support as app_support

    real, calls = app_support.current_registry, []

    def fails_once():  # the sidebar's call (app.py runs before the page) fails, the page's works
        calls.append(1)
        if len(calls) == 1:
            raise OSError("simulated failure in the sidebar")
        return real()

    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    monkeypatch.setattr(app_support, "current_registry", fails_once)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("simulated failure" in e.value for e in at.error), [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Steerable recommender"]  # the Home page ran below it


def test_the_demo_never_shows_error_details() -> None:
    """An exception that escapes every guard shows a generic message in the demo, not a traceback."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"  # `false` still shows the stack trace (1.67)
    assert "--client.showErrorDetails none" in (ROOT / "scripts" / "demo").read_text()


@pytest.mark.slow
def test_memory_stays_flat_over_many_slider_moves(built_registry: Path, monkeypatch) -> None:
    moves = count("RECSYS_SLIDER_MOVES")
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    at.switch_page("pages/recommend.py").run()
    at.button[0].click().run()  # sample a held-out listener
    at.multiselect[1].set_value([at.multiselect[1].options[0]]).run()
    rng = random.Random(0)
    slider = lambda: at.slider(key="rec_share")
    for _ in range(20):  # warm-up: caches, first allocations
        slider().set_value(rng.randint(0, 20) * 5).run()
    gc.collect()
    start = _rss_mb()
    curve = [(0, round(start, 1))]
    t0 = time.perf_counter()
    for i in range(1, moves + 1):
        slider().set_value(rng.randint(0, 20) * 5).run()
        if i % 10 == 0:
            _check(at, f"move {i}")
        if i % max(moves // 10, 1) == 0:
            gc.collect()
            curve.append((i, round(_rss_mb(), 1)))
    elapsed = time.perf_counter() - t0
    _check(at, "end")
    gc.collect()
    growth = _rss_mb() - start
    log_figures(
        "app_memory",
        how="AppTest in-process, RSS of the test process (VmRSS), after 20 warm-up moves",
        moves=moves,
        rss_start_mb=round(start, 1),
        growth_mb=round(growth, 1),
        curve=curve,
        ms_per_move=round(1000 * elapsed / moves, 1),
    )
    assert growth < 50, f"RSS grew by {growth:.1f} MB over {moves} moves: {curve}"


def test_two_sessions_stay_isolated_while_one_is_abused(built_registry: Path, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    calm = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    calm.switch_page("pages/recommend.py").run()
    calm.button[0].click().run()
    calm.multiselect[1].set_value([calm.multiselect[1].options[0]]).run()
    calm.slider(key="rec_share").set_value(65).run()
    before = (
        calm.selectbox(key="rec_model").value,
        list(calm.multiselect[0].value),
        list(calm.multiselect[1].value),
        calm.slider(key="rec_share").value,
        dict(calm.query_params),
    )
    wild = AppTest.from_file(str(ROOT / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    wild.switch_page("pages/recommend.py").run()
    rng = random.Random(7)
    abuser = Abuser(rng, built_registry, built_registry, built_registry, monkeypatch)
    for k in range(8):
        abuser.widget_action(wild)
        wild.run()
        _check(wild, f"wild step {k}")
    wild.selectbox(key="rec_model").set_value("ease-synthetic").run()
    wild.slider(key="rec_share").set_value(0).run()
    calm.run()
    _check(calm, "calm after the other session")
    after = (
        calm.selectbox(key="rec_model").value,
        list(calm.multiselect[0].value),
        list(calm.multiselect[1].value),
        calm.slider(key="rec_share").value,
        dict(calm.query_params),
    )
    assert after == before
