"""Waiting for a Streamlit page in Playwright without returning early.

Streamlit's running indicator (``stStatusWidget``) appears only after a script run has taken 500 ms,
so waiting for it to be absent can return before a quick run has even started. Instead, an init
script (installed with :func:`watch_runs` before the first ``goto``) counts the script runs that
*finished* (``stApp``'s ``data-test-script-state`` changing back to ``notRunning``) and notes the
time of the last DOM change outside the ignored elements (the slider being moved). :func:`settle`
waits until a run that finished after :func:`runs` was read, no run is in progress, and the DOM has
been still for ``quiet_ms``.
"""

from __future__ import annotations

#: DOM changes inside these elements do not count as the page updating (they are the input itself).
IGNORED = "[data-testid='stSlider']"

_WATCH_JS = """
(() => {
  if (window.__stWatch) return;
  const w = (window.__stWatch = { finished: 0, lastChange: performance.now() });
  const ATTR = "data-test-script-state";
  const ignored = %(ignored)s;
  new MutationObserver((records) => {
    const states = [];
    for (const r of records) {
      if (r.type === "attributes" && r.attributeName === ATTR) {
        states.push(r.oldValue);
        w.lastChange = performance.now();
        continue;
      }
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (el && el.closest && el.closest(ignored)) continue;
      w.lastChange = performance.now();
    }
    if (!states.length) return;
    const app = document.querySelector('[data-testid="stApp"]');
    states.push(app ? app.getAttribute(ATTR) : null);
    for (let i = 1; i < states.length; i++) {
      if (states[i] === "notRunning" && states[i - 1] !== "notRunning") w.finished += 1;
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true, attributeOldValue: true,
  });
})();
"""


def watch_runs(page) -> None:
    """Install the run counter in every document ``page`` loads (call before the first ``goto``)."""
    import json

    page.add_init_script(_WATCH_JS % {"ignored": json.dumps(IGNORED)})


def runs(page) -> int:
    """Script runs finished so far in the current document (read it before an action)."""
    return int(page.evaluate("() => window.__stWatch ? window.__stWatch.finished : 0"))


def settle(page, since: int = 0, *, quiet_ms: int = 500, timeout_ms: int = 30_000) -> None:
    """Wait until a script run finished after ``since`` (see :func:`runs`), none is running, and the
    DOM outside :data:`IGNORED` has not changed for ``quiet_ms``.

    After a ``goto`` use ``since=0`` (a new document counts from zero). An action that starts no
    script run makes this time out: it never returns before the page has updated.
    """
    page.wait_for_function(
        """([since, quiet]) => {
            const w = window.__stWatch;
            const app = document.querySelector('[data-testid="stApp"]');
            return !!w && !!app && w.finished > since
                && app.getAttribute("data-test-script-state") === "notRunning"
                && performance.now() - w.lastChange >= quiet;
        }""",
        arg=[since, quiet_ms],
        polling=100,
        timeout=timeout_ms,
    )
