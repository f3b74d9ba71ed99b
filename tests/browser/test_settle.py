"""The browser tests' settle wait (tests/browser/helpers.py) never returns before a run's output is in the DOM.

A fake Streamlit page (no server): ``stApp`` with its ``data-test-script-state``, element containers,
and the marker a finished run writes last (recsys.app_support.render_marker). Each case schedules
what a rerun does after an action, in page time, and checks that :func:`settle` returned only after
the run's last element was in the DOM and the page had been still for ``quiet_ms``; a wait that
returned early fails the case. Case "interrupted" is the one a count of finished runs gets wrong (a
run that goes back to notRunning without finishing, then a long pause, then the real run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.app_server import CHROMIUM_ARGS
from tests.browser.helpers import runs, settle, watch_runs

pytestmark = pytest.mark.browser

QUIET_MS = 300
URL = "http://settle.test/"

_PAGE = """<!doctype html><html><body>
<div data-testid="stApp" data-test-script-state="notRunning">
  <div data-testid="stElementContainer"><div data-testid="stSlider"><span id="thumb">40</span></div></div>
  <div data-testid="stElementContainer" id="out">before</div>
  <div data-testid="stElementContainer" id="chart"></div>
  <div data-testid="stElementContainer" id="mark"><span class="recsys-rendered" data-run="1" hidden></span></div>
</div>
<script>
const app = document.querySelector("[data-testid='stApp']");
const state = (s) => app.setAttribute("data-test-script-state", s);
const out = (t) => { document.getElementById("out").textContent = t; };
const mark = (n) => { document.querySelector(".recsys-rendered").dataset.run = String(n); };
const done = () => { mark(2); state("notRunning"); };
const thumb = (i) => { document.getElementById("thumb").textContent = String(i); };
const stale = (on) => document.getElementById("out").setAttribute("data-stale", on ? "true" : "false");
const CASES = {
  // nothing happens for longer than the quiet period (a slow websocket, a busy server), then the run
  slow_start: [[800, () => state("running")], [900, () => out("after")], [1000, done]],
  // a run cut short by a rerun: back to notRunning without its last element, a pause, then the real run
  interrupted: [[50, () => state("running")], [100, () => out("partial")], [200, () => state("notRunning")],
                [900, () => state("running")], [1000, () => out("after")], [1100, done]],
  // finished, but an element of the previous run is still shown (stale) until it is replaced
  stale: [[20, () => { stale(true); state("running"); }], [100, done],
          [900, () => { out("after"); stale(false); }]],
  // finished, then a chart draws itself (a late render, no script run)
  late_render: [[20, () => state("running")], [60, () => out("after")], [100, done],
                [350, () => { document.getElementById("chart").textContent = "drawn"; }]],
  // the slider's own DOM keeps changing (the thumb moving): not the page updating
  slider_moves: [[20, () => state("running")], [60, () => out("after")], [100, done],
                 ...Array.from({ length: 60 }, (_, i) => [150 + 100 * i, () => thumb(i)])],
  // an action that starts no run
  no_run: [],
};
window.play = (name) => {
  window.t0 = performance.now();
  for (const [ms, fn] of CASES[name]) setTimeout(fn, ms);
};
</script></body></html>"""

#: case -> (page time of the run's last DOM change outside the slider, text shown when settled)
DONE = {
    "slow_start": (1000, "after"),
    "interrupted": (1100, "after"),
    "stale": (900, "after"),
    "late_render": (350, "after"),
    "slider_moves": (100, "after"),
}


@pytest.fixture(scope="module")
def fake_page(chromium: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route(URL, lambda route: route.fulfill(status=200, content_type="text/html", body=_PAGE))
            watch_runs(page)
            yield page
        finally:
            browser.close()


@pytest.mark.parametrize("case", sorted(DONE))
def test_settle_returns_only_after_the_runs_output_and_a_still_page(fake_page, case: str) -> None:
    page = fake_page
    page.goto(URL)
    settle(page, 0, quiet_ms=QUIET_MS, timeout_ms=5000)  # the first document's run 1
    since = runs(page)
    assert since == 1
    page.evaluate("(name) => window.play(name)", case)
    settle(page, since, quiet_ms=QUIET_MS, timeout_ms=10_000)
    elapsed = page.evaluate("() => performance.now() - window.t0")
    last_change, text = DONE[case]
    assert page.locator("#out").inner_text() == text, f"{case}: returned before the run's output was in the DOM"
    assert runs(page) == 2
    assert elapsed >= last_change + QUIET_MS, f"{case}: returned {elapsed:.0f} ms after the action"
    # not waiting for the slider's own changes (they go on for 6 s): a slack for a busy machine below that
    assert elapsed < last_change + QUIET_MS + 4500, f"{case}: took {elapsed:.0f} ms"


def test_settle_times_out_when_no_run_happens(fake_page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = fake_page
    page.goto(URL)
    settle(page, 0, quiet_ms=QUIET_MS, timeout_ms=5000)
    since = runs(page)
    page.evaluate("() => window.play('no_run')")
    with pytest.raises(PlaywrightTimeout):
        settle(page, since, quiet_ms=QUIET_MS, timeout_ms=1500)
