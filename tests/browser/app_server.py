"""Running the app for a browser test: a freshly started server, a headless chromium page, checks.

Shared by the browser tests (the fixtures ``chromium`` and ``screenshot_dir`` are in conftest.py) and
``benchmarks/browser_latency.py`` (the chromium flags, starting, waiting for and stopping a server).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.browser.helpers import settle, watch_runs

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: How the sidebar names the test's registry (a temporary directory) in the screenshots.
REGISTRY_LABEL = "models_store"
SERVER_START_S = 90
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a server command in its own session (so :func:`stop` ends everything it starts), output to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = SERVER_START_S) -> None:
    """Wait for Streamlit's health endpoint; an exited or silent server raises with the end of its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not serve {url} within {timeout_s:g} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and anything it started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def serve(registry_dir: Path, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A freshly started ``streamlit run app.py`` on ``registry_dir`` (``env``: more variables); yields its
    URL, then stops it and everything it started."""
    port = free_port()
    log = log_dir / "streamlit.log"
    env = {**os.environ, **(env or {}), "RECSYS_MODELS_DIR": str(registry_dir), "PYTHONPATH": str(ROOT)}
    env["RECSYS_REGISTRY_LABEL"] = REGISTRY_LABEL
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    proc = start_server(cmd, env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc, log)
        yield url
    finally:
        stop(proc)


def wait_settled(page, since: int = 0) -> None:
    """Wait until a script run that finished after ``since`` left the page still (tests/browser/helpers.py)."""
    settle(page, since, timeout_ms=TIMEOUT_MS)


def launch(p, chromium: Path, js_errors: list[str]):
    browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.on("pageerror", lambda e: js_errors.append(str(e)))
    watch_runs(page)
    return browser, page


def check_no_exception(page, name: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, f"{name} page shows a traceback"


def column_shares(page) -> list[int]:
    """The tag share each Recommend column shows, in page order (percent; columns without one are skipped).

    Each column is one HTML block (recsys/list_view.py); its ``data-share`` attribute must say the same.
    """
    cols = page.locator("[data-testid='stHtml'] .rec-col")
    out = []
    for i in range(cols.count()):
        shown = cols.nth(i).locator(".rec-share")
        if not shown.count() or not shown.inner_text().strip().endswith("%"):
            continue
        value = int(shown.inner_text().strip().rstrip("%"))
        assert cols.nth(i).get_attribute("data-share") == str(value)
        out.append(value)
    return out
