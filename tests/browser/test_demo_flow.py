"""The demo in a real browser: start ``streamlit run app.py`` on a small registry, click through it.

Headless Debian chromium (``/usr/bin/chromium``; ``scripts/test`` installs it when it runs as root)
driven by Playwright. Screenshots go to ``docs/screenshots/<page>.png`` when ``RECSYS_SCREENSHOTS=1``,
otherwise to the test's temporary directory (the sidebar names the registry ``models_store``, as in
the demo, through ``$RECSYS_REGISTRY_LABEL``, not by its temporary path). The server is always
stopped, whatever happens. Waiting for a page to finish updating: :mod:`tests.browser.helpers`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from recsys.data.synthetic import generate_synthetic
from recsys.defaults import build_default_registry
from recsys.projection import pca_reducer
from recsys.registry import Registry
from tests.app.conftest import SMALL_MODELS
from tests.browser.app_server import (
    REGISTRY_LABEL,
    TIMEOUT_MS,
    check_no_exception,
    column_shares,
    launch,
    serve,
    wait_settled,
)
from tests.browser.helpers import runs, watch_runs

pytestmark = pytest.mark.browser

MODEL_IDS = tuple(m.model_id for m in SMALL_MODELS)


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    built = build_default_registry(Registry(root), dataset=small, models=SMALL_MODELS, reducer_factory=pca_reducer)
    assert sorted(built) == sorted(MODEL_IDS)
    return root


@pytest.fixture(scope="module")
def server(registry_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(registry_dir, tmp_path_factory.mktemp("server")) as url:
        yield url


def _assert_still(page, ms: int = 1500) -> None:
    """The page shows the same thing ``ms`` later: the settle wait before this did not return early."""
    main = page.locator("[data-testid='stMain']")
    before = main.inner_text()
    page.wait_for_timeout(ms)
    assert main.inner_text() == before, "the page changed after the settle wait returned"


def _chip_labels(multiselect) -> list[str]:
    chips = multiselect.get_by_role("group", name="Selected values").locator("[data-tag]")
    return [chips.nth(i).get_attribute("aria-label") for i in range(chips.count())]


def test_demo_flow(chromium: Path, server: str, screenshot_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    js_errors: list[str] = []
    with sync_playwright() as p:
        browser, page = launch(p, chromium, js_errors)
        try:
            # Models, opened by a deep link as the first request to a fresh server (Streamlit would
            # run the page without app.py here if the page did not route itself through it)
            page.goto(f"{server}/models", timeout=TIMEOUT_MS)
            page.get_by_role("heading", name="Manifest").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page)
            nav = page.locator("[data-testid='stSidebarNav']")
            assert nav.get_by_text("Latent space", exact=True).is_visible(), "app.py's navigation is missing"
            sidebar = page.locator("[data-testid='stSidebar']")
            assert sidebar.get_by_text(f"{len(MODEL_IDS)} model(s) ready").is_visible()
            assert sidebar.get_by_text(REGISTRY_LABEL, exact=True).is_visible()  # not the temporary path
            assert "pytest-of" not in page.locator("[data-testid='stApp']").inner_text()
            table = page.locator("[data-testid='stTable']").first
            for model_id in MODEL_IDS:
                assert table.get_by_text(model_id, exact=True).is_visible(), f"{model_id} not in the Models table"
            assert table.get_by_text("ok", exact=True).count() == len(MODEL_IDS)
            check_no_exception(page, "Models")
            page.screenshot(path=str(screenshot_dir / "models.png"), full_page=True)

            # Home, by the sidebar: what this is, the modes, which models are loaded
            n = runs(page)
            nav.get_by_text("Home", exact=True).click()
            page.get_by_role("heading", name="Four ways to steer").wait_for(timeout=TIMEOUT_MS)
            main = page.locator("[data-testid='stMain']")
            main.get_by_text(f"{len(MODEL_IDS)} model(s) ready").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            for model_id in MODEL_IDS:
                assert main.get_by_text(model_id).first.is_visible(), f"{model_id} not shown on Home"
            check_no_exception(page, "Home")
            page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)

            # Recommend, first visit: a held-out listener, a tag they lack, the dial at 40 %: steering at work
            n = runs(page)
            nav.get_by_text("Recommend", exact=True).click()
            picker = page.locator("[data-testid='stMultiSelect']").first
            picker.wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            _assert_still(page)
            for heading in ("Standard", "Postfiltered", "Tuned", "Tune + post", "SVD baseline"):
                assert page.get_by_role("heading", name=heading).first.is_visible(), f"no {heading} column"
            shares = column_shares(page)
            assert shares[0] < 40 and all(abs(v - 40) <= 5 for v in shares[1:4]), shares
            assert page.get_by_text("α = ").count() >= 3  # each steered column shows the strength it used
            check_no_exception(page, "Recommend")
            page.screenshot(path=str(screenshot_dir / "recommend.png"), full_page=True)

            # search a song by typing and add it; move the dial with the keyboard: every column follows
            picker.locator("input").click()
            page.keyboard.type("Love")
            option = page.locator("[role='option']").first
            option.wait_for(timeout=TIMEOUT_MS)
            picked = option.inner_text().strip()
            assert " — " in picked and "love" in picked.lower(), f"unexpected first option {picked!r}"
            n = runs(page)
            option.click()
            page.keyboard.press("Escape")
            wait_settled(page, n)
            assert picked in _chip_labels(picker)
            slider = page.get_by_role("slider").first
            slider.focus()
            n = runs(page)
            for _ in range(4):  # 40 % -> 60 % (one fragment rerun each; the last one must be what is shown)
                page.keyboard.press("ArrowRight")
            wait_settled(page, n)  # nothing else waited for: the settle wait alone must not return early
            shares = column_shares(page)
            assert all(abs(v - 60) <= 5 for v in shares[1:4]), shares
            assert "share=60" in page.url, f"the URL does not carry the state: {page.url}"
            _assert_still(page)
            items = page.locator("[data-testid='stHtml'] li")
            assert items.count() == 100, items.count()
            title, artist = picked.split(" — ")
            listed = items.all_inner_texts()
            assert not any(t.startswith(title + "\n" + artist) for t in listed), f"{picked!r} was recommended back"
            check_no_exception(page, "Recommend")
            page.screenshot(path=str(screenshot_dir / "recommend_dial_60.png"), full_page=True)

            # Latent space: the person from the Recommend page is on the map with their trajectory
            n = runs(page)
            nav.get_by_text("Latent space", exact=True).click()
            page.get_by_role("heading", name="Latent space").first.wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
            try:
                page.get_by_text("you, tuned over α").first.wait_for(timeout=TIMEOUT_MS)
            except Exception:
                page.screenshot(path=str(screenshot_dir / "latent_space_failed.png"), full_page=True)
                raise AssertionError("the person from the Recommend page is not on the map") from None
            assert page.get_by_text("(now)").first.is_visible()  # the tuned point the dial chose
            check_no_exception(page, "Latent space")
            page.screenshot(path=str(screenshot_dir / "latent_space.png"), full_page=True)

            # back on Recommend: the picks and the dial are still there
            n = runs(page)
            nav.get_by_text("Recommend", exact=True).click()
            wait_settled(page, n)
            assert picked in _chip_labels(page.locator("[data-testid='stMultiSelect']").first)
            assert "share=60" in page.url

            # Compare renders without errors, shows which mode wins when tags are hidden, compares the models
            n = runs(page)
            nav.get_by_text("Compare", exact=True).click()
            page.get_by_role("heading", name="Compare").first.wait_for(timeout=TIMEOUT_MS)
            verdict = page.get_by_text("Best tag recall here")
            verdict.wait_for(timeout=3 * TIMEOUT_MS)  # (the steering sweeps and the check run first)
            page.get_by_role("heading", name="For the current person").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            check_no_exception(page, "Compare")
            page.screenshot(path=str(screenshot_dir / "compare.png"), full_page=True)
            page.get_by_role("heading", name="What if tags were incomplete?").scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot_dir / "compare_incomplete_tags.png"))

            # a new session on Compare has no picks, so the page stops early; the run still ends with its
            # marker (stop_page), so a browser can tell it is done
            fresh = browser.new_page(viewport={"width": 1400, "height": 1300})
            watch_runs(fresh)
            fresh.goto(f"{server}/compare", timeout=TIMEOUT_MS)
            wait_settled(fresh)
            assert fresh.get_by_text("Pick songs on the Recommend page").first.is_visible()
            check_no_exception(fresh, "Compare, new session")
        finally:
            browser.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"


def test_a_shared_link_is_a_fresh_servers_first_request(chromium: Path, registry_dir: Path, tmp_path: Path) -> None:
    """A Recommend link opened as the very first request of a just-started server keeps its state.

    (Streamlit serves it in its legacy pages/ mode; the page routes itself through app.py with
    st.switch_page, which drops the query parameters unless they are carried.)
    """
    from playwright.sync_api import sync_playwright

    from recsys.app_support import item_labels

    items = Registry(registry_dir).load("mlp-synthetic").items
    picks = list(items["item_id"].astype(str)[:3])
    labels = item_labels(items)
    js_errors: list[str] = []
    with serve(registry_dir, tmp_path) as url, sync_playwright() as p:
        browser, page = launch(p, chromium, js_errors)
        try:
            page.goto(f"{url}/recommend?model=mlp-synthetic&picks={','.join(picks)}&tags=rock:2&share=70")
            page.get_by_role("heading", name="Recommend").first.wait_for(timeout=TIMEOUT_MS)
            wait_settled(page)
            page.screenshot(path=str(tmp_path / "shared_link.png"), full_page=True)
            pickers = page.locator("[data-testid='stMultiSelect']")
            assert _chip_labels(pickers.nth(0)) == [labels[i] for i in picks], page.url
            assert _chip_labels(pickers.nth(1)) == ["rock"], page.url
            qp = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
            assert qp["picks"] == ",".join(picks) and qp["tags"] == "rock:2" and qp["share"] == "70", page.url
            assert abs(column_shares(page)[1] - 70) <= 5  # the Postfiltered column follows the link's dial
            check_no_exception(page, "Recommend")
        finally:
            browser.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"
