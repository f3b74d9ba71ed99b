"""What a person feels when they move a slider: slider -> updated page in headless Chromium.

    python benchmarks/browser_latency.py --registry /tmp/demo_reg --big-registry /tmp/bl/reg20k \\
        --out benchmarks/results/browser_latency.md

For each registry, one freshly started ``streamlit run app.py`` server and one headless Debian
chromium (``/usr/bin/chromium``, driven by Playwright, as in ``tests/browser``):

1. **The page.** The Recommend page opens from a link with a person in its query parameters (the first
   stored held-out listener and the tag their picks lack, :func:`recsys.app_support.demo_person`, on
   the model the page offers first; dial at 40 %). The Latent space page opens from a link with the same
   person; its trajectory slider is what is moved there: plotly's own slider in the map (``layout.sliders``,
   a click on the next step's tick; see :func:`measure_plot_slider`: no script run, the star moves in
   the browser, server time 0), else a Streamlit slider labelled :data:`MAP_ALPHA_LABEL` (or the first
   slider outside an expander), else nothing.
2. **A move.** The slider's thumb has the focus and gets one ``ArrowRight`` (or ``ArrowLeft``) key
   press: one step (5 % on the dial). An init script in the page notes the key event's time and the time of
   every DOM mutation outside the sliders (a ``MutationObserver`` on the whole document); the move is
   over when a script run that started after the key press has finished (``stApp``'s
   ``data-test-script-state`` back to ``notRunning``), no element is stale, the DOM
   has been still for ``--quiet-ms`` and the page's content (the text outside the sliders and the
   map's small traces) differs from before the move. **Slider -> updated page** is the last
   mutation's time minus the key event's time. ``--moves`` moves go right then left (40 -> 80 -> 40 %
   on the dial), after two moves of warm-up that are not counted; a move that changes nothing on the
   page (a ceiling) is not counted and is reported.
3. **Server time of the same move.** The server runs in a wrapper (``--serve``, this file) that
   times Streamlit's script thread (``ScriptRunner._run_script``: ``app.py`` + the page, or a fragment)
   into a log, wall clock and thread CPU; nothing in the app changes for it. Each move's **server
   time** is the script runs that started between the key press and the last mutation, from their
   start to the end of the script (``_on_script_finished``: the "finished" message is sent there);
   **post-run cleanup** is what Streamlit does after that on the same thread (a full
   ``gc.collect`` unless ``runner.postScriptGC`` is off); **key -> run start** is the browser's event
   handling and the websocket, **script end -> last change** the last deltas' delivery and the
   browser's rendering. ``--profile FILE`` writes a cProfile of the servers' script runs.

Also reported: the page's size (DOM elements in the main area, page height in px). ``uptime``'s load
is recorded before and after each page's moves: the server and chromium share the machine's cores
with whatever else runs.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.app_server import (  # noqa: E402  (the browser test's chromium and server handling)
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    start_server,
    stop,
    wait_until_serving,
)

VIEWPORT = {"width": 1400, "height": 1300}  # as the browser test
SHARE_LABEL = "Share of the list with your tags"
#: The Latent space page's trajectory slider (pages/latent_space.py ALPHA_LABEL); else its first slider
#: outside an expander.
MAP_ALPHA_LABEL = "Tuning strength α on the map"
TIMEOUT_MS = 60_000
#: ``--profile FILE`` reaches the server through this variable: a cProfile of every script run, all runs together.
PROFILE_ENV = "BROWSER_LATENCY_PROFILE"
GOAL_MEDIAN_MS, GOAL_P95_MS, GOAL_RATIO = 150.0, 250.0, 2.0

#: Installed in every document before the app's own scripts: the key press, DOM mutations outside the
#: sliders, and the script runs that finished (stApp's data-test-script-state back to notRunning).
_WATCH_JS = """
(() => {
  if (window.__bench) return;
  const b = (window.__bench = { finished: 0, started: 0, lastChange: performance.now(), input: null });
  const ATTR = "data-test-script-state";
  document.addEventListener("keydown", (e) => { b.input = e.timeStamp; }, true);
  document.addEventListener("mousedown", (e) => { b.input = e.timeStamp; }, true);
  new MutationObserver((records) => {
    const states = [];
    for (const r of records) {
      if (r.type === "attributes" && r.attributeName === ATTR) { states.push(r.oldValue); continue; }
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && el.closest && el.closest("[data-testid='stSlider']")) continue;
      b.lastChange = performance.now();
    }
    if (!states.length) return;
    const app = document.querySelector("[data-testid='stApp']");
    states.push(app ? app.getAttribute(ATTR) : null);
    for (let i = 1; i < states.length; i++) {
      if (states[i] === "notRunning" && states[i - 1] !== "notRunning") b.finished += 1;
      if (states[i] === "running" && states[i - 1] !== "running") b.started += 1;
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true, attributeOldValue: true,
  });
})();
"""

#: A hash of what the page shows outside the sliders: element text, and the map's small traces.
_SIGNATURE_JS = """
() => {
  const main = document.querySelector("[data-testid='stMain']");
  if (!main) return "";
  const parts = [];
  for (const el of main.querySelectorAll("[data-testid='stElementContainer']")) {
    if (el.querySelector("[data-testid='stSlider']")) continue;
    parts.push(el.innerText);
    for (const f of el.querySelectorAll("iframe")) parts.push(f.srcdoc || "");
  }
  for (const gd of main.querySelectorAll(".js-plotly-plot")) {
    for (const t of gd.data || []) {
      if (t.x && t.x.length < 200) parts.push(JSON.stringify([t.name, Array.from(t.x), Array.from(t.y || [])]));
    }
  }
  const s = parts.join("\\u0001");
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return `${s.length}:${h}`;
}
"""

_SETTLED_JS = """([finished, quiet, before]) => {
  const b = window.__bench;
  const app = document.querySelector("[data-testid='stApp']");
  if (!b || !app || b.finished <= finished || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stElementContainer'][data-stale='true']")) return false;
  if (performance.now() - b.lastChange < quiet) return false;
  return before === null || (SIGNATURE)() !== before;
}""".replace("SIGNATURE", _SIGNATURE_JS)

#: The map's own (plotly) α slider: its steps' tick marks, one per step.
_PLOT_TICKS = ".js-plotly-plot .slider-container rect.slider-tick-rect"
#: Once per plot: note the frame after each restyle (plotly.js draws the WebGL star on a canvas, which
#: no MutationObserver sees; the second animation frame after the restyle is after it was painted).
_PLOT_WATCH_JS = """() => {
  const gd = document.querySelector("[data-testid='stMain'] .js-plotly-plot");
  if (!gd.__benchWatched) {
    gd.__benchWatched = true;
    gd.on("plotly_restyle", () => requestAnimationFrame(() => requestAnimationFrame(() => {
      window.__bench.painted = performance.now(); })));
  }
  return gd.layout.sliders[0].active || 0;
}"""
#: The plot slider's move is over: the star has its new name, the frame after the restyle was painted
#: and the DOM has been still for ``quiet`` ms.
_PLOT_SETTLED_JS = """([name, quiet]) => {
  const b = window.__bench;
  const gd = document.querySelector("[data-testid='stMain'] .js-plotly-plot");
  if (gd.data.at(-1).name === name || !(b.painted > b.input)) return false;
  return performance.now() - b.lastChange >= quiet;
}"""

_SIZE_JS = """
() => {
  const main = document.querySelector("[data-testid='stMain']");
  return {
    elements: main ? main.getElementsByTagName("*").length : 0,
    containers: main ? main.querySelectorAll("[data-testid='stElementContainer']").length : 0,
    height: document.scrollingElement ? document.scrollingElement.scrollHeight : 0,
    main_height: main ? Math.round(main.scrollHeight) : 0,
  };
}
"""


# ---- the server, with its script thread timed ------------------------------------------------------
def _serve_main(timing_log: str, streamlit_args: list[str]) -> None:
    """``--serve``: time every script run (wall from/to, thread CPU) into ``timing_log``, then run streamlit."""
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    original, on_finished = ScriptRunner._run_script, ScriptRunner._on_script_finished
    finished_at: list[float] = []  # when each run's script ended (before Streamlit's post-run cleanup)
    sink = open(timing_log, "a", buffering=1)  # open for the server's life
    profile_to = os.environ.get(PROFILE_ENV)
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()

    def finished(self, *args, **kwargs):
        finished_at.append(time.time())
        return on_finished(self, *args, **kwargs)

    def timed(self, rerun_data):
        finished_at.clear()
        if profiler is not None:
            profiler.enable()  # cProfile profiles the thread that enables it
        t0, c0 = time.time(), time.thread_time()
        try:
            return original(self, rerun_data)
        finally:
            t1, c1 = time.time(), time.thread_time()
            if profiler is not None:
                profiler.disable()
            fragment = bool(getattr(rerun_data, "fragment_id_queue", None) or getattr(rerun_data, "fragment_id", None))
            script_end = finished_at[-1] if finished_at else t1
            row = {"start": 1000 * t0, "script_end": 1000 * script_end, "end": 1000 * t1, "cpu": 1000 * (c1 - c0)}
            sink.write(json.dumps(row | {"fragment": fragment}) + "\n")
            if profiler is not None:
                profiler.dump_stats(profile_to)

    ScriptRunner._run_script = timed
    ScriptRunner._on_script_finished = finished
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", *streamlit_args]
    cli.main()


@contextmanager
def serve(registry: Path, work: Path) -> Iterator[tuple[str, Path]]:
    """A fresh server on ``registry`` (the wrapper above); yields (url, timing log), then stops it."""
    port = free_port()
    timing = work / f"timing-{port}.jsonl"
    timing.write_text("")
    log = work / f"streamlit-{port}.log"
    env = {**os.environ, "RECSYS_MODELS_DIR": str(registry), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(timing), "--", str(ROOT / "app.py")]
    cmd += ["--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1"]
    cmd += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    cmd += ["--client.toolbarMode", "minimal"]
    proc = start_server(cmd, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, log, timeout_s=120)
        yield url, timing, proc.pid
    finally:
        stop(proc)


def _process_tree() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU ms so far: user + system) of every process."""
    tick = 1000.0 / os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(d)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) * tick)
    return out


def cpu_snapshot(server_pid: int) -> tuple[float, float]:
    """CPU ms so far of the server (its process tree) and of chromium (this process's chromium descendants)."""
    tree = _process_tree()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in tree.items():
        children.setdefault(ppid, []).append(pid)

    def below(root: int) -> list[int]:
        todo, seen = [root], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(children.get(pid, []))
        return seen

    server = set(below(server_pid))
    mine = [p for p in below(os.getpid()) if p not in server]
    return (
        sum(tree[p][2] for p in server if p in tree),
        sum(tree[p][2] for p in mine if "chrom" in tree[p][1].lower()),
    )


def _runs(timing: Path) -> list[dict]:
    return [json.loads(line) for line in timing.read_text().splitlines() if line.strip()]


# ---- one page's moves ----------------------------------------------------------------------------
@dataclass
class Moves:
    """One page's measured moves (ms)."""

    browser: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    cleanup: list[float] = field(default_factory=list)
    server_process_cpu: list[float] = field(default_factory=list)  # the whole server process, per move
    chromium_cpu: list[float] = field(default_factory=list)  # every chromium process, per move
    server_cpu: list[float] = field(default_factory=list)
    to_server: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    fragment_runs: int = 0
    size: dict = field(default_factory=dict)
    load: list[str] = field(default_factory=list)
    skipped: int = 0
    note: str = ""


def uptime() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def person_link(registry: Path) -> tuple[str, dict[str, str]]:
    """The model the Recommend page offers first and a first visit's person on it, as query parameters."""
    from recsys.app_support import demo_person, model_statuses, steerable_statuses
    from recsys.registry import Registry
    from recsys.steering import Steerer

    reg = Registry(registry)
    ready = steerable_statuses(model_statuses(reg))
    datasets = sorted({s.dataset_name for s in ready})
    dataset = "synthetic" if "synthetic" in datasets else datasets[0]
    in_dataset = [s for s in ready if s.dataset_name == dataset]
    neural = [s for s in in_dataset if s.family not in ("svd", "popularity", "ease")]
    model_id = (neural or in_dataset)[0].model_id
    loaded = reg.load(model_id)
    picks, tags = demo_person(loaded, Steerer.from_loaded(loaded))
    params = {"dataset": dataset, "model": model_id, "picks": ",".join(picks)}
    params["tags"] = ",".join(f"{t}:{w:g}" for t, w in tags.items())
    return model_id, params


def measure(page, url: str, slider_name: str, timing: Path, server_pid: int, *, moves: int, quiet_ms: int) -> Moves:
    """Open ``url``, then move its slider ``moves`` times (after 2 warm-up moves); see the module docstring."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    out = Moves()
    page.goto(url, timeout=TIMEOUT_MS)
    main = page.locator("[data-testid='stMain']")
    # the page's own content, then a still page (a link's first request runs app.py, then the page)
    ready = (
        main.get_by_role("slider", name=SHARE_LABEL) if slider_name == SHARE_LABEL else main.locator(".js-plotly-plot")
    )
    ready.first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        """(quiet) => { const b = window.__bench; const app = document.querySelector("[data-testid='stApp']");
            return b && app && b.finished > 0 && app.getAttribute("data-test-script-state") === "notRunning"
              && performance.now() - b.lastChange >= quiet; }""",
        arg=1000,
        polling=100,
        timeout=TIMEOUT_MS,
    )
    if page.locator("[data-testid='stException']").count():
        raise RuntimeError(f"the page shows a traceback: {url}")
    if slider_name == MAP_ALPHA_LABEL and main.locator(_PLOT_TICKS).count():
        return measure_plot_slider(page, timing, server_pid, out, moves=moves, quiet_ms=quiet_ms)
    slider = main.get_by_role("slider", name=slider_name)
    if slider.count() == 0 and slider_name == MAP_ALPHA_LABEL:  # another label: the first slider outside an expander
        slider = main.locator("[data-testid='stSlider']:not([data-testid='stExpander'] *) input[type='range']")
    if slider.count() == 0:
        out.note = "no slider on the page"
        return out
    slider = slider.first
    out.size = page.evaluate(_SIZE_JS)
    slider.focus()
    lo, hi = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    keys = ["ArrowRight", "ArrowLeft"] + ["ArrowRight"] * (moves // 2) + ["ArrowLeft"] * (moves - moves // 2)
    out.load.append(uptime())
    for i, key in enumerate(keys):
        now = float(slider.input_value())
        if key == "ArrowRight" and now >= hi:
            key = "ArrowLeft"
        elif key == "ArrowLeft" and now <= lo:
            key = "ArrowRight"
        before = page.evaluate(_SIGNATURE_JS)
        finished = page.evaluate("() => window.__bench.finished")
        cpu0 = cpu_snapshot(server_pid)
        slider.press(key)
        args = [finished, quiet_ms]
        page.wait_for_function(_SETTLED_JS, arg=[*args, None], polling=50, timeout=TIMEOUT_MS)
        try:  # the run is over and the page still: wait a little longer only if nothing changed yet
            page.wait_for_function(_SETTLED_JS, arg=[*args, before], polling=50, timeout=3000)
        except PlaywrightTimeout:  # a move that changed nothing on the page: not a measurement
            out.skipped += 1
            continue
        cpu1 = cpu_snapshot(server_pid)
        got = page.evaluate(
            "() => ({input: window.__bench.input, last: window.__bench.lastChange, origin: performance.timeOrigin})"
        )
        if i < 2:
            continue
        runs = _record_move(out, got, cpu0, cpu1, timing)
        out.runs.append(len(runs))
        out.fragment_runs += sum(r["fragment"] for r in runs)
        if runs:
            _record_runs(out, runs)
            out.to_server.append(runs[0]["start"] - (got["origin"] + got["input"]))
            out.after.append(got["origin"] + got["last"] - runs[-1]["script_end"])
    out.load.append(uptime())
    if page.locator("[data-testid='stException']").count():
        raise RuntimeError(f"the page shows a traceback after the moves: {url}")
    return out


def _record_move(out: Moves, got: dict, cpu0: tuple, cpu1: tuple, timing: Path) -> list[dict]:
    """One measured move's browser time and CPU into ``out``; returns the script runs that started in
    its window (``got``: the page's input time, last change and time origin)."""
    t_in, t_last = got["origin"] + got["input"], got["origin"] + got["last"]
    out.browser.append(got["last"] - got["input"])
    out.server_process_cpu.append(cpu1[0] - cpu0[0])
    out.chromium_cpu.append(cpu1[1] - cpu0[1])
    return [r for r in _runs(timing) if t_in - 5 <= r["start"] <= t_last]


def _record_runs(out: Moves, runs: list[dict]) -> None:
    """The server's share of a move: script time, cleanup and CPU summed over its runs."""
    out.server.append(sum(r["script_end"] - r["start"] for r in runs))
    out.cleanup.append(sum(r["end"] - r["script_end"] for r in runs))
    out.server_cpu.append(sum(r["cpu"] for r in runs))


def measure_plot_slider(page, timing: Path, server_pid: int, out: Moves, *, moves: int, quiet_ms: int) -> Moves:
    """The map's α slider is plotly's (``layout.sliders``): a move is a click on the next step's tick,
    one step (α ± 0.05) right then left as for the other sliders, and is over when the red star (the
    figure's last trace) has its new name, the second animation frame after plotly's restyle has run
    and the page has been still for ``quiet_ms``. Slider -> updated page: the mousedown's time to the
    later of the last DOM mutation and that frame. No script run is expected: any that starts in the
    window is counted (``runs``); a move without one has a server time of 0."""
    ticks = page.locator(_PLOT_TICKS)
    n = ticks.count()
    k = int(page.evaluate(_PLOT_WATCH_JS))
    out.size = page.evaluate(_SIZE_JS)
    steps = [1, -1] + [1] * (moves // 2) + [-1] * (moves - moves // 2)
    out.load.append(uptime())
    for i, step in enumerate(steps):
        if not 0 <= k + step < n:
            step = -step
        k += step
        name = page.evaluate(
            "() => document.querySelector(\"[data-testid='stMain'] .js-plotly-plot\").data.at(-1).name"
        )
        started = page.evaluate("() => window.__bench.started")
        box = ticks.nth(k).bounding_box()
        cpu0 = cpu_snapshot(server_pid)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function(_PLOT_SETTLED_JS, arg=[name, quiet_ms], polling=50, timeout=TIMEOUT_MS)
        cpu1 = cpu_snapshot(server_pid)
        got = page.evaluate(
            "() => ({input: window.__bench.input, last: Math.max(window.__bench.lastChange, window.__bench.painted),"
            " origin: performance.timeOrigin, started: window.__bench.started})"
        )
        if i < 2:
            continue
        runs = _record_move(out, got, cpu0, cpu1, timing)
        out.runs.append(max(len(runs), got["started"] - started))
        _record_runs(out, runs)  # none expected: a move without a run has a server time of 0
    out.load.append(uptime())
    return out


def stats(ms: list[float]) -> dict:
    if not ms:
        return {"median": float("nan"), "p95": float("nan"), "n": 0}
    a = np.asarray(ms, dtype=np.float64)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "n": len(a), "max": float(a.max())}


def run_registry(registry: Path, work: Path, *, moves: int, quiet_ms: int, pages: list[str]) -> dict:
    """Both pages on one registry, one server and one browser."""
    from playwright.sync_api import sync_playwright

    model_id, params = person_link(registry)
    res: dict = {"model": model_id, "picks": len(params["picks"].split(",")), "tags": params["tags"], "pages": {}}
    with serve(registry, work) as (url, timing, server_pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.add_init_script(_WATCH_JS)
            q = urllib.parse.urlencode({**params, "share": "40"})
            if "recommend" in pages:
                m = measure(
                    page, f"{url}/recommend?{q}", SHARE_LABEL, timing, server_pid, moves=moves, quiet_ms=quiet_ms
                )
                res["pages"]["recommend"] = m.__dict__
            if "latent_space" in pages:
                lq = urllib.parse.urlencode({"model": model_id, "picks": params["picks"], "tags": params["tags"]})
                m = measure(
                    page,
                    f"{url}/latent_space?{lq}",
                    MAP_ALPHA_LABEL,
                    timing,
                    server_pid,
                    moves=moves,
                    quiet_ms=quiet_ms,
                )
                res["pages"]["latent_space"] = m.__dict__
            if errors:
                raise RuntimeError(f"JavaScript errors in the page: {errors}")
        finally:
            browser.close()
    from recsys.registry import Registry

    res["items"] = int(Registry(registry).load(model_id).model.n_items_)
    return res


# ---- report ----------------------------------------------------------------------------------------
def _f(s: dict) -> str:
    return "–" if not s["n"] else f"{s['median']:.0f} / {s['p95']:.0f}"


def _cpu(m: dict) -> str:
    """Median CPU per move of the server process and of chromium: what the move costs on an idle machine."""
    server, chromium = stats(m.get("server_process_cpu", [])), stats(m.get("chromium_cpu", []))
    return "–" if not server["n"] else f"{server['median']:.0f} + {chromium['median']:.0f}"


def table(results: dict[str, dict], before: dict | None) -> tuple[str, list[str]]:
    head = (
        "| registry | page | slider → updated page (ms, median / p95) | server: script run (ms) | "
        "ratio browser / server (medians) | server: post-run cleanup (ms) | script thread CPU (ms) | "
        "key → run start (ms) | script end → last change (ms) | CPU per move: server + chromium (ms, medians) | "
        "moves | page: elements / height px | load before → after |"
    )
    sep = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    if before:
        head += " before: slider → updated page (ms) | before: server (ms) | before: CPU per move (ms) | before: load |"
        sep += "---:|---:|---:|---|"
    lines, verdicts = [head, sep], []
    for reg_name, res in results.items():
        for name, m in res["pages"].items():
            b, s = stats(m["browser"]), stats(m["server"])
            client = bool(s["n"]) and not any(m["runs"])  # moved in the browser: no script run at all
            ratio = b["median"] / s["median"] if s["n"] and not client else float("nan")
            label = {"recommend": "Recommend (share dial)", "latent_space": "Latent space (trajectory)"}[name]
            if not b["n"]:
                lines.append(
                    f"| {reg_name} | {label} | {m['note'] or 'no measurement'} |" + " |" * (10 + 4 * bool(before))
                )
                continue
            size = m["size"]
            skipped = f" (+{m['skipped']} unchanged)" if m["skipped"] else ""
            row = (
                f"| {reg_name} ({res['items']:,} items) | {label} | {_f(b)} | "
                f"{'0 (no script run)' if client else _f(s)} | {'–' if client else f'{ratio:.1f}x'} | "
                f"{_f(stats(m['cleanup']))} | {_f(stats(m['server_cpu']))} | {_f(stats(m['to_server']))} | "
                f"{_f(stats(m['after']))} | {_cpu(m)} | {b['n']}"
                f"{skipped} | "
                f"{size.get('elements', 0):,} / {size.get('main_height', 0):,} | {' → '.join(m['load'])} |"
            )
            if before:
                old = before.get(reg_name, {}).get("pages", {}).get(name)
                row += (
                    f" {_f(stats(old['browser']))} | {_f(stats(old['server']))} | {_cpu(old)} | {old['load'][0]} |"
                    if old and old["browser"]
                    else f" {old['note'] if old else '–'} | | | |"
                )
            lines.append(row)
            if reg_name == "demo":
                hit = b["median"] <= GOAL_MEDIAN_MS and b["p95"] <= GOAL_P95_MS and (client or ratio <= GOAL_RATIO)
                vs = (
                    "no script run (moved in the browser)"
                    if client
                    else f"{ratio:.1f}x the server's {s['median']:.0f} ms"
                )
                verdicts.append(
                    f"**{'PASS' if hit else 'MISS'}** ({label}, demo registry, load {m['load'][0]}): "
                    f"{b['median']:.0f} ms median, {b['p95']:.0f} ms p95, {vs} "
                    f"(goal on an idle 2-core machine: <= {GOAL_MEDIAN_MS:.0f} / "
                    f"{GOAL_P95_MS:.0f} ms, <= {GOAL_RATIO:.0f}x)."
                )
    return "\n".join(lines), verdicts


def _shown(argv: list[str]) -> list[str]:
    """The command line as the result file records it: ``--notes`` and ``--before-label`` (in the notes) elided."""
    out, skip = [], False
    for a in argv:
        if skip:
            out.append("…")
            skip = False
        elif a in ("--notes", "--before-label"):
            out.append(a)
            skip = True
        elif a.startswith(("--notes=", "--before-label=")):
            out.append(a.split("=", 1)[0] + "=…")
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        _serve_main(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registry", type=Path, required=True, help="the demo registry (python -m recsys.defaults)")
    p.add_argument("--big-registry", type=Path, help="the 20k-item registry (see /tmp build in the notes)")
    p.add_argument("--moves", type=int, default=16, help="measured moves per page (>= 12)")
    p.add_argument("--quiet-ms", type=int, default=300, help="the page counts as updated after this long still")
    p.add_argument("--pages", default="recommend,latent_space", help="comma-separated: recommend, latent_space")
    p.add_argument("--work", type=Path, default=Path("/tmp/browser_latency"), help="server logs and timings")
    p.add_argument("--profile", type=Path, help="write a cProfile of the servers' script runs (all of them) here")
    p.add_argument("--json", type=Path, help="also write the numbers as JSON")
    p.add_argument("--report-only", type=Path, help="measure nothing: report the numbers of this earlier --json")
    p.add_argument("--before", type=Path, help="JSON of an earlier run (--json) to show beside this one")
    p.add_argument("--before-label", default="an earlier run", help="what the --before run was (a sentence)")
    p.add_argument("--notes", default="", help="a paragraph added to the result file's notes")
    p.add_argument("--out", type=Path, help="markdown result file (benchmarks/results/browser_latency.md)")
    args = p.parse_args(argv)
    if args.moves < 12:
        p.error("--moves must be >= 12")
    if not CHROMIUM.exists():
        p.error(f"{CHROMIUM} not found: apt-get install -y chromium")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.profile:
        os.environ[PROFILE_ENV] = str(args.profile.resolve())
    pages = [s.strip() for s in args.pages.split(",") if s.strip()]
    if args.report_only:  # the numbers of an earlier run (--json), reported again
        results = json.loads(args.report_only.read_text())
    else:
        results = {}
        regs = {"demo": args.registry} | ({"20k": args.big_registry} if args.big_registry else {})
        for name, reg in regs.items():
            results[name] = run_registry(reg, args.work, moves=args.moves, quiet_ms=args.quiet_ms, pages=pages)
            print(f"{name}: done, load {uptime()}", file=sys.stderr)
    if args.json and not args.report_only:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    before = json.loads(args.before.read_text()) if args.before else None
    text, verdicts = table(results, before)
    print(text)
    print("\n".join(verdicts))
    if args.out:
        from recsys.benchmarking import write_result

        demo = results["demo"]
        notes = [
            "\n\n".join(verdicts),
            f"Person: a first visit's (the first stored held-out listener, {demo['picks']} picks, and the tag their "
            f"picks lack: `{demo['tags']}`) on `{demo['model']}`, dial at 40 %, opened by a link; "
            f"{args.moves} measured moves of one step (5 %), 40 → 80 → 40 %, after 2 warm-up moves; "
            f"a move is over when the page has been still for {args.quiet_ms} ms and its content changed.",
            "Slider → updated page: the key event's time to the last DOM mutation outside the sliders "
            "(MutationObserver). Server: Streamlit's script thread (`ScriptRunner._run_script`: `app.py` + the "
            "page, or a fragment) of the same moves, timed in the server process, from the run's start to the end "
            "of the script (where the 'finished' message is sent); post-run cleanup is what Streamlit does after "
            "that on the same thread (a full `gc.collect` unless `runner.postScriptGC` is off); thread CPU covers "
            "both. Key → run start is the browser's event handling and the websocket, script end → last change "
            "the last deltas and the browser's rendering. The ratio is the two medians. Server and chromium share "
            "the machine's 2 cores with whatever else runs; load is `uptime`'s 1/5/15-minute average before and "
            "after each page's moves.",
        ]
        if args.notes:
            notes.append(args.notes)
        if before:
            notes.append(f"Before (`--before {args.before}`): {args.before_label}.")
        write_result(
            args.out,
            title="Slider → updated page in the browser (headless Chromium)",
            table=text,
            argv=["python", "benchmarks/browser_latency.py", *_shown(argv)],
            notes="\n\n".join(notes),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
