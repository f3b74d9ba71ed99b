"""Waiting for a Streamlit page in Playwright without returning early.

Streamlit's running indicator (``stStatusWidget``) appears only after a script run has taken 500 ms,
so waiting for it to be absent can return before a quick run has even started; a count of script
runs that went back to ``notRunning`` can be met by a run that an action did not start or that a
rerun cut short, and a still DOM says nothing about what arrived. Instead every page run (and the
Recommend page's fragment run) that gets to its end writes a last, invisible element
(:func:`recsys.app_support.render_marker`): ``<span class="recsys-rendered" data-run="N">``, N
counting the session's finished runs; a run interrupted by a rerun writes none. Streamlit delivers a
run's elements in order, so once the DOM holds a number greater than the one read before an action
(:func:`runs`), everything that run wrote is in the DOM. :func:`settle` waits for that, for
``stApp``'s ``data-test-script-state`` to be ``notRunning`` (no rerun in flight), for no element to
be stale (left over from an earlier run) and for the DOM outside the ignored elements to have been
still for ``quiet_ms`` (a MutationObserver installed by :func:`watch_runs`: late renders such as a
chart drawing itself).
"""

from __future__ import annotations

import json

#: DOM changes inside these elements do not count as the page updating (they are the input itself).
IGNORED = "[data-testid='stSlider']"
#: The element each finished run writes last (recsys.app_support.render_marker).
MARKER = ".recsys-rendered"

_WATCH_JS = """
(() => {
  if (window.__stWatch) return;
  const w = (window.__stWatch = { lastChange: performance.now() });
  const ignored = IGNORED;
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && el.closest && el.closest(ignored)) continue;
      w.lastChange = performance.now();
      return;
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""

#: The largest run number in the DOM (0: none yet).
_RUNS_JS = """(marker) => Math.max(0, ...Array.from(document.querySelectorAll(marker), (e) => +e.dataset.run || 0))"""

_SETTLED_JS = """([since, quiet, marker]) => {
  const w = window.__stWatch;
  const app = document.querySelector("[data-testid='stApp']");
  if (!w || !app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if ((RUNS)(marker) <= since) return false;
  if (document.querySelector("[data-testid='stElementContainer'][data-stale='true']")) return false;
  return performance.now() - w.lastChange >= quiet;
}""".replace("RUNS", _RUNS_JS)


def watch_runs(page) -> None:
    """Install the DOM watcher in every document ``page`` loads (call before the first ``goto``)."""
    page.add_init_script(_WATCH_JS.replace("IGNORED", json.dumps(IGNORED)))


def runs(page) -> int:
    """The newest finished run the page shows (read it before an action; 0 in a new document)."""
    return int(page.evaluate(_RUNS_JS, MARKER))


def settle(page, since: int = 0, *, quiet_ms: int = 500, timeout_ms: int = 30_000) -> None:
    """Wait until the DOM shows a run newer than ``since`` (see :func:`runs`) to its last element, no run
    is in flight, no element is stale, and the DOM outside :data:`IGNORED` has not changed for ``quiet_ms``.

    After a ``goto`` use ``since=0`` (a new document is a new session). An action that starts no
    script run makes this time out: it never returns before the page has updated.
    """
    page.wait_for_function(_SETTLED_JS, arg=[since, quiet_ms, MARKER], polling=50, timeout=timeout_ms)
