"""The Latent space map in a real browser: labels apart, the person on top, the α slider moves the star.

Opens the page by a link carrying a person (a stored held-out listener's picks and a tag they lack,
as the Recommend page's first visit does) for each latent model, then checks what the browser drew:
no two centroid labels' boxes intersect (their real bounding boxes), the person's legend entries are
inside the plot (never scrolled away), and a click on a step of the map's own α slider (plotly's,
"Tuning strength α on the map") moves the red star (its legend entry names the new α) with no
message to the server and no new script run.

Registry: ``$RECSYS_BROWSER_REGISTRY`` (e.g. the demo's, built with UMAP:
``python -m recsys.defaults --registry DIR``), else the small PCA registry of the other browser
test. With ``RECSYS_SCREENSHOTS=1`` the pages are saved as ``docs/screenshots/latent_space_<family>.png``
(the README's), else in the test's temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recsys.app_support import demo_person
from recsys.registry import Registry
from recsys.steering import Steerer
from tests.browser import test_demo_flow as demo
from tests.browser.app_server import TIMEOUT_MS, check_no_exception, launch, serve
from tests.browser.helpers import runs, settle

# the demo flow's small registry (PCA maps), unless $RECSYS_BROWSER_REGISTRY names another
registry_dir = demo.registry_dir

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SLIDER_LABEL = "Tuning strength α on the map"  # pages/latent_space.py: ALPHA_LABEL


@pytest.fixture(scope="module")
def map_registry(request: pytest.FixtureRequest) -> Path:
    chosen = os.environ.get("RECSYS_BROWSER_REGISTRY")
    return Path(chosen) if chosen else request.getfixturevalue("registry_dir")


@pytest.fixture(scope="module")
def map_server(map_registry: Path, tmp_path_factory: pytest.TempPathFactory):
    with serve(map_registry, tmp_path_factory.mktemp("map_server")) as url:
        yield url


def _link(registry: Path, model_id: str) -> str:
    loaded = Registry(registry).load(model_id)
    picks, tags = demo_person(loaded, Steerer.from_loaded(loaded))
    tag = next(iter(tags))
    return f"/latent_space?model={model_id}&picks={','.join(picks)}&tags={tag}:1&alpha=1.5"


#: The red star as plotly holds it (the figure's last trace).
_STAR_JS = """() => { const t = document.querySelector('.js-plotly-plot').data.at(-1);
  return {name: t.name, xy: [Array.from(t.x), Array.from(t.y)]}; }"""


def _boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, text: e.textContent}; })",
    )


def _intersect(a: dict, b: dict) -> bool:
    return min(a["x1"], b["x1"]) - max(a["x0"], b["x0"]) > 0.5 and min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]) > 0.5


def test_the_map_is_legible_and_follows_its_slider(
    chromium: Path,
    map_registry: Path,
    map_server: str,
    screenshot_dir: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    registry = Registry(map_registry)
    latent = [m for m in registry.ids() if "map" in (registry.read_manifest(m).get("info") or {})]
    js_errors: list[str] = []
    sent: list[int] = []  # the websocket's messages to the server (a rerun is one)
    with sync_playwright() as p:
        browser, page = launch(p, chromium, js_errors)
        page.on("websocket", lambda ws: ws.on("framesent", lambda _payload: sent.append(1)))
        try:
            for model_id in latent:
                page.goto(map_server + _link(map_registry, model_id), timeout=TIMEOUT_MS)
                page.get_by_role("heading", name="Latent space").first.wait_for(timeout=TIMEOUT_MS)
                page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
                settle(page, 0, timeout_ms=3 * TIMEOUT_MS)
                check_no_exception(page, f"Latent space ({model_id})")

                labels = _boxes(page, ".js-plotly-plot g.annotation-text-g")
                assert len(labels) >= 2, f"{model_id}: no centroid labels drawn"
                clashes = [
                    (a["text"], b["text"]) for i, a in enumerate(labels) for b in labels[i + 1 :] if _intersect(a, b)
                ]
                assert not clashes, f"{model_id}: overlapping centroid labels {clashes}"

                plot = _boxes(page, ".js-plotly-plot .main-svg")[0]
                for name in ("you, tuned over α", "you (standard, α = 0)", "you at α = 1.5 (now)"):
                    entry = page.locator(".js-plotly-plot .legendtext", has_text=name).first
                    box = entry.bounding_box()
                    assert box is not None and entry.is_visible(), f"{model_id}: legend entry {name!r} not shown"
                    assert plot["y0"] <= box["y"] and box["y"] + box["height"] <= plot["y1"], f"{name!r} scrolled"

                # the α slider is plotly's, under the map: a click on a step moves the star, in the browser only
                ticks = page.locator(".js-plotly-plot .slider-container rect.slider-tick-rect")
                assert ticks.count() == 81, f"{model_id}: {ticks.count()} steps on the map's α slider"
                assert SLIDER_LABEL in page.locator(".js-plotly-plot .slider-container").first.text_content()
                n, sent_before = runs(page), len(sent)
                star_before = page.evaluate(_STAR_JS)
                assert star_before["name"] == "you at α = 1.5 (now)", star_before
                tick = ticks.nth(40).bounding_box()  # α = 2
                page.mouse.click(tick["x"] + tick["width"] / 2, tick["y"] + tick["height"] / 2)
                page.locator(".js-plotly-plot .legendtext", has_text="you at α = 2 (now)").first.wait_for(
                    timeout=TIMEOUT_MS
                )
                star = page.evaluate(_STAR_JS)
                assert star["name"] == "you at α = 2 (now)" and star["xy"] != star_before["xy"], (star_before, star)
                page.wait_for_timeout(1000)  # no rerun follows: no message to the server, no new run marker
                assert len(sent) == sent_before, f"{model_id}: the move sent {len(sent) - sent_before} messages"
                assert runs(page) == n
                family = registry.read_manifest(model_id)["family"]
                page.screenshot(path=str(screenshot_dir / f"latent_space_{family}.png"), full_page=True)
        finally:
            browser.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"
