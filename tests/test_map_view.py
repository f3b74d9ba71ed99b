"""The Latent space figure (recsys/map_view.py): labels apart, the person last and in their own legend.

Built on a constructed map (no model, no UMAP): every tag centroid crowded into the middle, as on the
flow model's map of its latent space that issue 14 shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.map_view import (
    HEIGHT_PX,
    MARGIN,
    PERSON_TRACE,
    PLOT_WIDTH_PX,
    STANDARD_TRACE,
    label_size,
    map_figure,
    map_layers,
    pixel_scale,
    place_labels,
    prepared_figure,
    to_pixels,
)
from recsys.projection import LatentMap

TAGS = [f"tag{i:02d}" if i % 3 else f"a longer tag {i}" for i in range(24)]


def _crowded_map(n_items: int = 400, seed: int = 0) -> tuple[LatentMap, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    coords = rng.normal(0, 3, (n_items, 2)).astype(np.float32)
    centroids = rng.normal(0, 0.25, (len(TAGS), 2)).astype(np.float32)  # all in the middle of the blob
    latent = rng.normal(size=(n_items, 4)).astype(np.float32)
    m = LatentMap(
        item_index=np.arange(n_items),
        item_coords=coords,
        item_latent=latent,
        user_index=np.zeros(0, np.int64),
        user_coords=np.zeros((0, 2), np.float32),
        user_latent=np.zeros((0, 4), np.float32),
        extra_coords=centroids,
        n_neighbors=15,
        min_dist=0.1,
        n_epochs=10,
        seed=0,
    )
    points = pd.DataFrame(
        {
            "kind": "song",
            "x": coords[:, 0],
            "y": coords[:, 1],
            "tag": [TAGS[i % len(TAGS)] for i in range(n_items)],
            "label": [f"song {i}" for i in range(n_items)],
        }
    )
    return m, points


def _label_boxes(fig: dict) -> np.ndarray:
    """Each annotation's text box in the nominal plot's pixels (x0, y0, x1, y1)."""
    xr, yr = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
    scale = pixel_scale(xr, yr)
    boxes = []
    for a in fig["layout"]["annotations"]:
        (px, py) = to_pixels(np.array([[a["x"], a["y"]]]), xr, yr, scale)[0]
        w, h = label_size(a["text"])
        cx, cy = px + a["ax"], py + a["ay"]
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return np.asarray(boxes)


def _intersections(boxes: np.ndarray, others: np.ndarray | None = None) -> list[tuple[int, int]]:
    same = others is None
    others = boxes if same else others
    out = []
    for i, a in enumerate(boxes):
        for j, b in enumerate(others):
            if same and j <= i:
                continue
            if min(a[2], b[2]) - max(a[0], b[0]) > 0 and min(a[3], b[3]) - max(a[1], b[1]) > 0:
                out.append((i, j))
    return out


def test_crowded_centroid_labels_do_not_overlap_each_other_or_the_person():
    m, points = _crowded_map()
    layers = map_layers(points, m, TAGS)
    path = np.column_stack([np.linspace(-0.5, 0.5, 17), np.linspace(-0.3, 0.4, 17)])
    fig = map_figure(layers, path_xy=path, alphas=np.linspace(0, 4, 17), now_xy=path[5], now_alpha=1.25)
    notes = fig["layout"]["annotations"]
    assert sorted(a["text"] for a in notes) == sorted(TAGS)
    boxes = _label_boxes(fig)
    assert not _intersections(boxes), "centroid labels overlap"
    # no label covers the person's path or a centroid's marker (7 px around each point)
    xr, yr = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
    pts = to_pixels(np.concatenate([path, m.extra_coords]), xr, yr, pixel_scale(xr, yr))
    assert not _intersections(boxes, np.column_stack([pts - 7, pts + 7]))
    # and all labels are inside the plot
    plot_h = HEIGHT_PX - MARGIN["t"] - MARGIN["b"]
    assert boxes[:, 0].min() >= 0 and boxes[:, 2].max() <= PLOT_WIDTH_PX
    assert boxes[:, 1].min() >= 0 and boxes[:, 3].max() <= plot_h
    assert all(a["showarrow"] for a in notes)  # a leader line back to the centroid


def test_place_labels_keeps_a_lone_label_just_above_its_anchor():
    offsets = place_labels(np.array([[100.0, 100.0]]), ["jazz"])
    np.testing.assert_allclose(offsets, [[0.0, -18.0]], atol=1e-9)


def test_the_persons_traces_are_drawn_last_in_their_own_legend():
    m, points = _crowded_map()
    layers = map_layers(points, m, TAGS)
    path = np.column_stack([np.linspace(-1, 1, 17), np.zeros(17)])
    fig = map_figure(layers, path_xy=path, alphas=np.linspace(0, 4, 17), now_xy=path[8], now_alpha=2.0)
    names = [t.get("name") for t in fig["data"]]
    person = [PERSON_TRACE, STANDARD_TRACE, "you at α = 2 (now)"]
    assert names[-3:] == person  # drawn last: on top of the songs and the centroids
    by_name = {t.get("name"): t for t in fig["data"]}
    for name in person:
        t = by_name[name]
        assert t["type"] == "scattergl"  # svg traces would sit under the WebGL songs
        assert t["legend"] == "legend" and t.get("showlegend", True)
    assert {t["legend"] for t in fig["data"] if t.get("name") in TAGS} == {"legend2"}
    legend, tags_legend = fig["layout"]["legend"], fig["layout"]["legend2"]
    assert legend["yanchor"] == "top" and legend["x"] < 0.5  # inside the plot, top left: never scrolled away
    assert tags_legend["x"] >= 1.0 and tags_legend["tracegroupgap"] == 0
    # 24 tag entries fit the plot's height without a scroll bar (~17 px an entry at 11 px)
    shown = [t for t in fig["data"] if t.get("legend") == "legend2" and t.get("showlegend", True)]
    assert len(shown) * 17 + 30 < HEIGHT_PX - MARGIN["t"] - MARGIN["b"]


def test_without_a_person_the_figure_has_no_person_traces():
    m, points = _crowded_map()
    fig = map_figure(map_layers(points, m, TAGS))
    assert not any(str(t.get("name", "")).startswith("you") for t in fig["data"])


def test_streamlit_sends_a_prepared_figure_as_it_is():
    import plotly.graph_objects as go
    import plotly.io
    import plotly.tools

    m, points = _crowded_map(n_items=50)
    fig = map_figure(map_layers(points, m, TAGS[:5]))
    go.Figure(fig)  # a valid plotly figure (what st.plotly_chart would check on every move)
    prepared = prepared_figure(fig)
    # st.plotly_chart: return_figure_from_figure_or_data(...), then plotly.io.to_json(figure, validate=False)
    assert plotly.tools.return_figure_from_figure_or_data(prepared, validate_figure=True) is fig
    assert plotly.io.to_json(fig, validate=False)


@pytest.mark.parametrize("n", [0, 1])
def test_few_centroids(n):
    m, points = _crowded_map(n_items=30)
    m.extra_coords = m.extra_coords[:n]
    fig = map_figure(map_layers(points, m, TAGS[:n]))
    assert len(fig["layout"]["annotations"]) == n


def test_the_alpha_slider_restyles_only_the_star_and_leaves_the_plot_area_alone():
    import plotly.graph_objects as go

    m, points = _crowded_map()
    layers = map_layers(points, m, TAGS)
    path = np.column_stack([np.linspace(-1, 1, 17), np.zeros(17)])
    steps = np.round(np.arange(81) * 0.05, 2)
    step_xy = np.column_stack([steps / 4 * 2 - 1, np.zeros(81)])
    fig = map_figure(
        layers, path_xy=path, alphas=np.linspace(0, 4, 17), now_xy=step_xy[30], now_alpha=1.52,
        step_alphas=steps, step_xy=step_xy,
    )  # fmt: skip
    go.Figure(fig)  # plotly accepts the slider
    (slider,) = fig["layout"]["sliders"]
    star = len(fig["data"]) - 1
    assert fig["data"][star]["name"] == "you at α = 1.52 (now)"
    assert slider["active"] == 30  # the step nearest α = 1.52
    assert all(s["method"] == "restyle" and s["args"][1] == [star] for s in slider["steps"])
    assert slider["steps"][80]["args"][0] == {
        "x": [[1.0]], "y": [[0.0]], "name": "you at α = 4 (now)", "hovertemplate": "you now, α = 4<extra></extra>",
    }  # fmt: skip
    # the slider sits below the plot: the plot area (where labels were placed) keeps its size
    lay = fig["layout"]
    assert lay["height"] - lay["margin"]["t"] - lay["margin"]["b"] == HEIGHT_PX - MARGIN["t"] - MARGIN["b"]
    # no steps, no slider
    plain = map_figure(layers, path_xy=path, alphas=np.linspace(0, 4, 17), now_xy=path[8], now_alpha=2.0)
    assert "sliders" not in plain["layout"] and plain["layout"]["height"] == HEIGHT_PX
