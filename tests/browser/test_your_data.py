"""A person's own data in a real browser: two CSV files, uploaded, trained, steered; no terminal.

The server starts with an empty registry and an empty data directory, as on a new machine. The
test uploads a broken pair first (the page must name the file and the line), then the fixed pair,
trains four families in the background job, and opens the latent model on the Recommend page,
where every steered column meets the dial. Screenshots of each step go where the demo's go
(``docs/screenshots/your_data_*.png`` with ``RECSYS_SCREENSHOTS=1``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recsys.data import export_csv
from recsys.data.synthetic import generate_synthetic
from recsys.registry import Registry
from tests.browser.app_server import TIMEOUT_MS, check_no_exception, column_shares, launch, serve, wait_settled
from tests.browser.helpers import runs

pytestmark = pytest.mark.browser

NAME = "my-music"
#: A job of four small models takes ~30 s on an idle 2-core machine; allow for a loaded one.
TRAIN_TIMEOUT_MS = 300_000


def _csv_pair(tmp: Path) -> tuple[Path, Path, Path]:
    """(interactions, items, interactions with a bad weight on line 5) of a small synthetic catalogue."""
    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    inter, items = export_csv(small, tmp / "export")
    plays, songs = tmp / "plays.csv", tmp / "songs.csv"
    plays.write_bytes(inter.read_bytes())
    songs.write_bytes(items.read_bytes())
    lines = plays.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    bad = lines[4].rstrip("\n").split(",")
    bad[header.index("weight")] = "lots"
    lines[4] = ",".join(bad) + "\n"
    broken = tmp / "broken" / "plays.csv"
    broken.parent.mkdir()
    broken.write_text("".join(lines))
    return plays, songs, broken


def _upload(page, plays: Path, songs: Path) -> None:
    uploaders = page.locator("[data-testid='stFileUploader']")
    uploaders.nth(0).locator("input[type='file']").set_input_files(str(plays))
    uploaders.nth(1).locator("input[type='file']").set_input_files(str(songs))
    page.get_by_text(plays.name, exact=True).first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text(songs.name, exact=True).first.wait_for(timeout=TIMEOUT_MS)


def test_upload_train_steer(chromium: Path, screenshot_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    plays, songs, broken = _csv_pair(tmp_path)
    registry_dir, data_dir = tmp_path / "models", tmp_path / "data"
    registry_dir.mkdir()
    # an empty data directory; the job builds its map with PCA (no UMAP JIT in a test)
    env = {"RECSYS_DATA_DIR": str(data_dir), "RECSYS_MAP_REDUCER": "pca", "RECSYS_DATA_LABEL": "~/.cache/recsys/data"}
    js_errors: list[str] = []
    with serve(registry_dir, tmp_path, env) as url, sync_playwright() as p:
        browser, page = launch(p, chromium, js_errors)
        try:
            page.goto(f"{url}/your_data", timeout=TIMEOUT_MS)
            page.get_by_role("heading", name="1. Upload").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page)
            main = page.locator("[data-testid='stMain']")

            # a broken file: the page names the file and the line, and nothing is imported
            _upload(page, broken, songs)
            page.get_by_role("textbox", name="Name of the data set").fill(NAME)
            n = runs(page)
            page.get_by_role("button", name="Import").click()
            error = main.locator("[data-testid='stAlert']").filter(has_text="plays.csv, line 5")
            error.wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            assert "lots" in error.inner_text(), error.inner_text()
            assert main.get_by_text("Upload a data set above first").is_visible()  # not recorded
            check_no_exception(page, "Your data")
            page.screenshot(path=str(screenshot_dir / "your_data_error.png"), full_page=True)

            # the fixed file imports, under the person's name
            _upload(page, plays, songs)
            n = runs(page)
            page.get_by_role("button", name="Import").click()
            main.get_by_text(f"Imported {NAME}").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            assert "300 listeners" in main.inner_text()
            assert "pytest-of" not in main.inner_text()  # the screenshots show no temporary path
            assert not (Path.cwd() / "uploads").exists()  # never in the repository
            assert list((data_dir / "uploads" / NAME).glob("*/interactions/plays.csv"))

            # train the default families in the background job; its progress and log show while it runs
            n = runs(page)
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_role("heading", name="3. Training job").wait_for(timeout=TIMEOUT_MS)
            main.get_by_text(re.compile(f"^(Training|Finished): {NAME}")).wait_for(timeout=TRAIN_TIMEOUT_MS)
            page.screenshot(path=str(screenshot_dir / "your_data_training.png"), full_page=True)
            main.get_by_text(f"Finished: {NAME}").wait_for(timeout=TRAIN_TIMEOUT_MS)
            page.get_by_role("heading", name="4. Steer it").wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            trained = set(Registry(registry_dir).ids())
            assert trained == {f"{f}-{NAME}" for f in ("multvae", "ease", "svd", "popularity")}, trained
            main.get_by_text("Log", exact=True).click()  # the job's log, folded once it finished
            main.get_by_text(f"registered multvae-{NAME}").first.wait_for(timeout=TIMEOUT_MS)
            check_no_exception(page, "Your data")
            page.screenshot(path=str(screenshot_dir / "your_data_trained.png"), full_page=True)

            # open the latent model on Recommend: a listener of this data set, steered to the dial
            n = runs(page)
            page.get_by_role("button", name="Open in Recommend").click()
            page.get_by_role("heading", name="Recommend").first.wait_for(timeout=TIMEOUT_MS)
            wait_settled(page, n)
            page.get_by_role("heading", name="Tuned").first.wait_for(timeout=TIMEOUT_MS)
            assert f"model=multvae-{NAME}" in page.url, page.url
            for heading in ("Standard", "Postfiltered", "Tuned", "Tune + post", "SVD baseline"):
                assert page.get_by_role("heading", name=heading).first.is_visible(), f"no {heading} column"
            shares = column_shares(page)  # a held-out listener of this data set and a tag they lack
            assert len(shares) >= 4 and shares[0] < 40, shares
            assert all(abs(v - 40) <= 5 for v in shares[1:4]), shares
            check_no_exception(page, "Recommend")
            page.screenshot(path=str(screenshot_dir / "your_data_recommend.png"), full_page=True)
        finally:
            browser.close()
    assert not js_errors, f"JavaScript errors in the page: {js_errors}"
