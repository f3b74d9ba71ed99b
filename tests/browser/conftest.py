"""Browser test fixtures: the chromium binary (or a skip with the reason) and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.app_server import CHROMIUM, ROOT


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: install it with `apt-get install -y chromium` (scripts/test does this as root)"
        if os.environ.get("CI") and os.geteuid() == 0:
            pytest.fail(f"{reason}; in CI as root the browser test must run")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("RECSYS_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")
