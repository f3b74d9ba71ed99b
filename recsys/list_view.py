"""The Recommend page's columns as HTML: one block per column (heading, tag share, strength, notes, list).

No Streamlit here. One ``st.html`` per column instead of a subheader, a metric, captions and a list
(each a separate element the browser lays out and React reconciles on every rerun) keeps a dial move
cheap in the browser; :func:`column_html` is cached by its inputs, so a column that did not change
costs neither the server nor the browser anything (the same HTML string leaves the DOM untouched).

The block carries what tests and tools read back as attributes: ``data-mode``, ``data-status``
(reached / ceiling / floor / empty) and ``data-share`` (the tag share in whole percent, empty
without tags) on ``div.rec-col``; a list row is ``<li[ class=on]><span class=t>title</span><br><span
class=a>artist</span><br><span class=g>tags</span></li>`` (``on``: it carries a chosen tag), styled
by :data:`STYLE`, which the page's first column carries.
"""

from __future__ import annotations

import html
from functools import lru_cache

import pandas as pd

#: (title, artist, tags, on_target) of one listed item; hashable, so a column's HTML can be cached.
Row = tuple[str, str, tuple[str, ...], bool]

#: The blocks' styles, once per page (:func:`style_html`), so each row is a few classes, not inline styles:
#: a third of the HTML for the browser to sanitize and parse on every dial move.
STYLE = (
    "<style>"
    ".rec-col h3{font-size:1.5rem;font-weight:600;line-height:1.3;margin:0 0 0.5rem 0;padding:0}"
    ".rec-col p{margin:0}"
    ".rec-col .rec-label{font-size:0.875rem}"
    ".rec-col .rec-share{font-size:2.25rem;line-height:1.2;margin:0 0 0.1rem 0}"
    ".rec-col .rec-delta,.rec-col .rec-caption{font-size:0.875rem;color:rgba(49,51,63,0.6);margin:0 0 0.4rem 0;"
    "line-height:1.35}"
    ".rec-col ol{padding-left:1.4em;margin:0}"
    ".rec-col li{padding:2px 4px;border-radius:4px;margin-bottom:2px}"
    ".rec-col li.on{background:#fff3cd}"
    ".rec-col .t{font-weight:600}.rec-col .a{color:#555}.rec-col .g{font-size:0.8em;color:#777}"
    "</style>"
)


def rows_of(df: pd.DataFrame) -> tuple[Row, ...]:
    """The hashable rows :func:`column_html` draws (first four tags of each item)."""
    return tuple(
        (str(t), str(a), tuple(str(x) for x in tags[:4]), bool(on))
        for t, a, tags, on in zip(df["title"], df["artist"], df["tags"], df["on_target"], strict=True)
    )


@lru_cache(maxsize=256)
def list_html(rows: tuple[Row, ...], chosen: frozenset[str]) -> str:
    """An ordered list: title, artist, tags (chosen ones bold); items carrying a chosen tag highlighted."""
    out = []
    for title, artist, tags, on_target in rows:
        tag_txt = ", ".join(f"<b>{html.escape(t)}</b>" if t in chosen else html.escape(t) for t in tags)
        out.append(
            f"<li{' class=on' if on_target else ''}><span class=t>{html.escape(title)}</span><br>"
            f"<span class=a>{html.escape(artist)}</span><br><span class=g>{tag_txt}</span></li>"
        )
    return "<ol>" + "".join(out) + "</ol>"


@lru_cache(maxsize=256)
def column_html(
    title: str,
    mode: str,
    *,
    captions: tuple[str, ...] = (),
    share: float | None = None,
    delta: str | None = None,
    status: str = "",
    rows: tuple[Row, ...] | None = None,
    chosen: frozenset[str] = frozenset(),
    style: bool = False,
) -> str:
    """One column: its heading, the tag share (``share``: None for no metric, NaN for "–") with its
    distance from the dial (``delta``), plain-text ``captions``, and the list (``rows``; None for none).

    ``style``: start with :data:`STYLE` (the page's first column carries it: the column a dial move
    changes least, so the styles are rarely sent and parsed again).
    """
    share_attr = "" if share is None or share != share else str(round(100 * share))
    parts = [
        STYLE if style else "",
        f"<div class='rec-col' data-mode='{html.escape(mode)}' data-status='{html.escape(status)}' "
        f"data-share='{share_attr}'>",
        f"<h3>{html.escape(title)}</h3>",
    ]
    if share is not None:
        value = "–" if share != share else f"{share:.0%}"
        parts.append("<p class='rec-label' title='share of the list carrying a chosen tag'>tag share</p>")
        parts.append(f"<p class='rec-share'>{value}</p>")
        if delta:
            parts.append(f"<p class='rec-delta'>{html.escape(delta)}</p>")
    for text in captions:
        parts.append(f"<p class='rec-caption'>{html.escape(text)}</p>")
    if rows is not None:
        parts.append(list_html(rows, chosen))
    parts.append("</div>")
    return "".join(parts)
