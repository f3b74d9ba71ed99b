"""The Recommend page's column blocks (recsys/list_view.py): what they show, escape and carry as attributes."""

from __future__ import annotations

import re

import pandas as pd

from recsys.list_view import STYLE, column_html, list_html, rows_of


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": ["Rock <Night>", "Quiet & Slow"],
            "artist": ["Signal 'Comet'", "Ada"],
            "tags": [["blues", "rock", "a", "b", "c"], ["jazz"]],
            "on_target": [True, False],
        }
    )


def test_a_column_shows_heading_share_captions_and_the_list_escaped() -> None:
    rows = rows_of(_frame())
    assert rows[0] == ("Rock <Night>", "Signal 'Comet'", ("blues", "rock", "a", "b"), True)  # four tags at most
    block = column_html(
        "Tuned",
        "tune",
        captions=("⚠ α = 4.00", "cannot reach 8/20 (40%) here"),
        share=0.35,
        delta="-5% vs dial",
        status="ceiling",
        rows=rows,
        chosen=frozenset({"blues"}),
    )
    assert block.startswith("<div class='rec-col' data-mode='tune' data-status='ceiling' data-share='35'>")
    assert "<h3>Tuned</h3>" in block and "<style>" not in block
    assert "<p class='rec-share'" in block and ">35%</p>" in block and ">-5% vs dial</p>" in block
    assert re.findall(r"<p class='rec-caption'[^>]*>([^<]*)</p>", block) == [
        "⚠ α = 4.00",
        "cannot reach 8/20 (40%) here",
    ]
    assert "Rock &lt;Night&gt;" in block and "Signal &#x27;Comet&#x27;" in block and "Quiet &amp; Slow" in block
    assert "<b>blues</b>, rock" in block  # the chosen tag in bold
    assert block.count("<li class=on>") == 1  # only the item carrying a chosen tag is highlighted
    assert block.count("<li") == 2 and block.endswith("</ol></div>")


def test_the_first_column_carries_the_styles() -> None:
    block = column_html("Standard", "standard", share=0.1, rows=rows_of(_frame()), style=True)
    assert block.startswith(STYLE + "<div class='rec-col'") and ".rec-col li.on{background:#fff3cd}" in STYLE


def test_columns_without_a_list_or_a_share() -> None:
    empty = column_html("SVD baseline", "svd", captions=("no SVD model trained on this data set",))
    assert "data-share=''" in empty and "rec-share" not in empty and "<ol" not in empty
    unknown = column_html("Standard", "standard", share=float("nan"), rows=())
    assert "data-share=''" in unknown and ">–</p>" in unknown and "<ol" in unknown


def test_blocks_are_cached_by_their_inputs() -> None:
    rows = rows_of(_frame())
    first = list_html(rows, frozenset({"jazz"}))
    assert list_html(rows_of(_frame()), frozenset({"jazz"})) is first  # same inputs: the same string, not rebuilt
    assert list_html(rows, frozenset({"blues"})) is not first
