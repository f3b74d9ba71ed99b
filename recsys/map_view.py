"""The Latent space page's figure: a stored latent map with tags, centroids and a person's trajectory.

No Streamlit here. The figure is built in two parts so that a slider move redraws only what moves:

* :func:`map_layers` (cached by the page per model and view): the song and listener points, one
  ``scattergl`` trace per kind and tag, and the tag centroids, as plain JSON-able dicts (coordinates
  rounded to 1e-3 map units, no per-listener hover text: the payload a browser parses per update);
* :func:`map_figure` adds the person's traces (tuned trajectory over alpha, the standard point, the
  point at the chosen alpha, "now"), drawn last and in a legend of their own at the top left of the plot, so
  they are never under the songs and never scrolled away; the tags' legend is a second, compact
  legend on the right. Centroid labels are annotations with leader lines, placed by
  :func:`place_labels` so that no two labels overlap and none covers a centroid or the person's path.

The α control is part of the figure: a plotly slider (``layout.sliders``, :func:`alpha_slider`) whose
steps restyle only the "now" star (its position for every step is computed on the server), so a move
is drawn by plotly.js in the browser, with no script run and no new figure.

Positions of points that were not fitted (centroids, the person) come from the map's placement rule
(``LatentMap.place_latent``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .projection import LatentMap
from .steering import Steerer, tag_counts

OTHER = "other"

#: The figure's height and the plot area's nominal width in pixels (the page draws it at the column's
#: width; labels are placed for this width, and their offsets are in pixels, so they keep their
#: places relative to their centroids at any width or zoom).
HEIGHT_PX = 720
PLOT_WIDTH_PX = 760
#: The top margin leaves plotly's toolbar (modebar) a strip of its own above the legends' titles.
MARGIN = {"t": 34, "b": 10, "l": 10, "r": 10}
#: Label geometry used by :func:`place_labels` (12 px font): width per character, padding, height.
CHAR_PX, PAD_PX, LABEL_H_PX, LABEL_GAP_PX = 7.0, 8.0, 18.0, 3.0
#: Names of the person's traces (the browser test looks for the first).
PERSON_TRACE, STANDARD_TRACE = "you, tuned over α", "you (standard, α = 0)"
#: The α slider's label (its ``currentvalue`` prefix) and the height it adds below the plot, in pixels.
ALPHA_LABEL = "Tuning strength α on the map"
SLIDER_PX = 90


def now_name(alpha: float) -> str:
    """The "now" star's name (its legend entry) at ``alpha``."""
    return f"you at α = {alpha:g} (now)"


def item_colour_tags(steerer: Steerer, item_index: np.ndarray) -> list[str]:
    """Per item: its first tag that is steerable (has a centroid), else "other"."""
    allowed = set(steerer.steerable_tags)
    tags = steerer.item_tags
    return [next((t for t in tags[int(i)] if t in allowed), OTHER) for i in item_index]


def user_colour_tags(steerer: Steerer, histories) -> list[str]:
    """Per user: their most frequent steerable tag, else "other"."""
    tags = steerer.steerable_tags
    cols = [steerer.vocabulary.index(t) for t in tags]
    counts = tag_counts(histories, steerer.tag_matrix)[:, cols]
    best = counts.argmax(axis=1)
    return [tags[b] if counts[u, b] > 0 else OTHER for u, b in enumerate(best)]


def user_tag_codes(steerer: Steerer, latent_map: LatentMap, train_histories) -> np.ndarray:
    """Per mapped training user, the index of their dominant steerable tag (-1: none); stored at training time."""
    tags = user_colour_tags(steerer, train_histories[latent_map.user_index])
    index = {t: j for j, t in enumerate(steerer.steerable_tags)}
    return np.array([index.get(t, -1) for t in tags], dtype=np.int64)


def map_points(
    latent_map: LatentMap, steerer: Steerer, user_codes: np.ndarray | None = None, *, item_noun: str = "song"
) -> pd.DataFrame:
    """Items (and users, when their tag codes are given) as rows: kind, x, y, tag, label."""
    items = steerer.items
    idx = latent_map.item_index
    titles = items["title"].astype(str).to_numpy()[idx]
    artists = items["artist"].astype(str).to_numpy()[idx]
    frames = [
        pd.DataFrame(
            {
                "kind": item_noun,
                "x": latent_map.item_coords[:, 0],
                "y": latent_map.item_coords[:, 1],
                "tag": item_colour_tags(steerer, idx),
                "label": np.char.add(np.char.add(titles.astype(str), " — "), artists.astype(str)),
            }
        )
    ]
    if user_codes is not None and len(user_codes) == len(latent_map.user_index):
        names = np.array([*steerer.steerable_tags, OTHER], dtype=object)
        frames.append(
            pd.DataFrame(
                {
                    "kind": "listener",
                    "x": latent_map.user_coords[:, 0],
                    "y": latent_map.user_coords[:, 1],
                    "tag": names[np.where(np.asarray(user_codes) >= 0, user_codes, len(names) - 1)],
                    "label": "",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def tag_colours(tags: Sequence[str]) -> dict[str, str]:
    """A colour per tag (sorted), "other" grey."""
    import plotly.express as px

    palette = px.colors.qualitative.Alphabet + px.colors.qualitative.Dark24
    named = sorted(set(tags) - {OTHER})
    colour = {t: palette[i % len(palette)] for i, t in enumerate(named)}
    if OTHER in set(tags):
        colour[OTHER] = "#c8c8c8"
    return colour


def _rounded(values) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), 3).tolist()


@dataclass
class MapLayers:
    """The static part of the map figure (plain dicts): point traces, centroids, ranges, colours."""

    traces: list[dict]
    centroid_tags: list[str]
    centroid_xy: np.ndarray
    colours: dict[str, str]
    x_range: tuple[float, float]
    y_range: tuple[float, float]


def map_layers(
    points: pd.DataFrame, latent_map: LatentMap, centroid_tags: Sequence[str], *, item_noun: str = "song"
) -> MapLayers:
    """Traces of the songs, listeners and tag centroids (see the module docstring)."""
    all_tags = list(points["tag"]) + list(centroid_tags)
    colour = tag_colours(all_tags)
    order = [t for t in colour if t != OTHER] + ([OTHER] if OTHER in colour else [])
    traces: list[dict] = []
    for kind, symbol, size, opacity in (("listener", "circle-open", 5, 0.35), (item_noun, "circle", 4, 0.6)):
        sub_kind = points[points["kind"] == kind]
        groups = dict(tuple(sub_kind.groupby("tag", sort=False))) if len(sub_kind) else {}
        for tag in order:
            sub = groups.get(tag)
            if sub is None or sub.empty:
                continue
            trace = {
                "type": "scattergl",
                "x": _rounded(sub["x"]),
                "y": _rounded(sub["y"]),
                "mode": "markers",
                "name": tag,
                "legend": "legend2",
                "legendgroup": tag,
                "showlegend": kind == item_noun or item_noun not in set(points["kind"]),
                "marker": {"size": size, "color": colour[tag], "symbol": symbol, "opacity": opacity},
            }
            if kind == "listener":
                trace["hovertemplate"] = f"training listener, most often {tag}<extra></extra>"
            else:
                trace["text"] = sub["label"].tolist()
                trace["hovertemplate"] = f"%{{text}}<br>{kind}, first tag: {tag}<extra></extra>"
            traces.append(trace)
    xy = np.asarray(latent_map.extra_coords, dtype=np.float64)[: len(centroid_tags)]
    if len(xy):
        traces.append(
            {
                "type": "scattergl",
                "x": _rounded(xy[:, 0]),
                "y": _rounded(xy[:, 1]),
                "mode": "markers",
                "name": "tag centroids",
                "legend": "legend2",
                "text": list(centroid_tags),
                "marker": {
                    "size": 12,
                    "symbol": "diamond",
                    "color": [colour.get(t, "#444") for t in centroid_tags],
                    "line": {"width": 1.5, "color": "#222"},
                },
                "hovertemplate": "centroid of %{text}<extra></extra>",
            }
        )
    every = [points[["x", "y"]].to_numpy(np.float64)] if len(points) else []
    every += [xy] if len(xy) else []
    allxy = np.concatenate(every) if every else np.zeros((1, 2))
    lo, hi = allxy.min(axis=0), allxy.max(axis=0)
    pad = 0.04 * max(float((hi - lo).max()), 1e-9)
    return MapLayers(
        traces=traces,
        centroid_tags=list(centroid_tags),
        centroid_xy=xy,
        colours=colour,
        x_range=(float(lo[0] - pad), float(hi[0] + pad)),
        y_range=(float(lo[1] - pad), float(hi[1] + pad)),
    )


# ---- label placement --------------------------------------------------------------------------
def pixel_scale(x_range, y_range, *, width: float = PLOT_WIDTH_PX, height: float = HEIGHT_PX) -> float:
    """Pixels per map unit of a plot with equal x/y scale (``scaleanchor``) filling width x height."""
    plot_h = height - MARGIN["t"] - MARGIN["b"]
    return min(width / max(x_range[1] - x_range[0], 1e-12), plot_h / max(y_range[1] - y_range[0], 1e-12))


def label_size(text: str) -> tuple[float, float]:
    """(width, height) in pixels of a centroid label's box."""
    return CHAR_PX * len(text) + PAD_PX, LABEL_H_PX


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total overlap area of each box of ``a`` (n, 4: x0, y0, x1, y1) with the boxes of ``b`` (m, 4): (n,)."""
    if not len(b):
        return np.zeros(len(a))
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return (np.clip(w, 0, None) * np.clip(h, 0, None)).sum(axis=1)


def _candidates() -> np.ndarray:
    """Label centre offsets in pixels (screen: y down), nearest first: just above, then rings."""
    out = [(0.0, -18.0), (0.0, 18.0)]
    for r in (26, 36, 48, 62, 78, 96, 118, 144, 175):
        n = 16 if r < 60 else 24
        for j in range(n):
            a = -np.pi / 2 + 2 * np.pi * j / n
            out.append((r * 1.6 * np.cos(a), r * np.sin(a)))  # wider than tall: labels are wide
    return np.asarray(out)


def place_labels(
    anchors: np.ndarray,
    texts: Sequence[str],
    obstacles: np.ndarray | None = None,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    marker_px: float = 14.0,
) -> np.ndarray:
    """Pixel offsets ``(n, 2)`` (screen: y down) of label centres from their ``anchors`` ``(n, 2)`` (pixels).

    Greedy, deterministic: labels in crowded places first; each takes the nearest candidate offset
    (:func:`_candidates`) whose box overlaps no label placed before, no anchor (a ``marker_px`` box) and
    no ``obstacles`` point (the person's path), inside ``bounds`` (x0, y0, x1, y1) when given; if none
    is free, the candidate with the least overlap.
    """
    anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    n = len(anchors)
    offsets = np.zeros((n, 2))
    if n == 0:
        return offsets
    half = marker_px / 2
    obs = [anchors]
    if obstacles is not None and len(obstacles):
        obs.append(np.asarray(obstacles, dtype=np.float64).reshape(-1, 2))
    pts = np.concatenate(obs)
    obstacle_boxes = np.column_stack([pts - half, pts + half])
    cand = _candidates()
    dist = np.linalg.norm(anchors[:, None, :] - anchors[None, :, :], axis=2)
    crowding = (dist < 80).sum(axis=1)
    placed = np.zeros((0, 4))
    for i in sorted(range(n), key=lambda j: (-crowding[j], j)):
        w, h = label_size(texts[i])
        centres = anchors[i] + cand
        half_box = np.array([w / 2, h / 2]) + LABEL_GAP_PX / 2  # a gap between labels: rounding never joins them
        boxes = np.column_stack([centres - half_box, centres + half_box])
        cost = 10 * _overlaps(boxes, placed) + _overlaps(boxes, obstacle_boxes)
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            out = [x0 - boxes[:, 0], boxes[:, 2] - x1, y0 - boxes[:, 1], boxes[:, 3] - y1]
            cost = cost + 100 * np.clip(np.column_stack(out), 0, None).sum(axis=1)
        free = np.flatnonzero(cost == 0)
        best = int(free[0]) if len(free) else int(np.argmin(cost))
        offsets[i] = cand[best]
        placed = np.vstack([placed, boxes[best]])
    return offsets


def to_pixels(xy: np.ndarray, x_range, y_range, scale: float, *, width: float = PLOT_WIDTH_PX) -> np.ndarray:
    """Map coordinates -> pixels (screen: y down) of the nominal plot, data centred as plotly does."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    plot_h = HEIGHT_PX - MARGIN["t"] - MARGIN["b"]
    cx, cy = (x_range[0] + x_range[1]) / 2, (y_range[0] + y_range[1]) / 2
    return np.column_stack([width / 2 + (xy[:, 0] - cx) * scale, plot_h / 2 - (xy[:, 1] - cy) * scale])


def label_annotations(layers: MapLayers, person_xy: np.ndarray | None = None) -> list[dict]:
    """Centroid labels as plotly annotations with leader lines (offsets from :func:`place_labels`)."""
    if not len(layers.centroid_xy):
        return []
    scale = pixel_scale(layers.x_range, layers.y_range)
    anchors = to_pixels(layers.centroid_xy, layers.x_range, layers.y_range, scale)
    obstacles = None
    if person_xy is not None and len(person_xy):
        obstacles = to_pixels(person_xy, layers.x_range, layers.y_range, scale)
    plot_h = HEIGHT_PX - MARGIN["t"] - MARGIN["b"]
    offsets = place_labels(anchors, layers.centroid_tags, obstacles, bounds=(0, 0, PLOT_WIDTH_PX, plot_h))
    out = []
    for (x, y), (ax, ay), tag in zip(layers.centroid_xy.tolist(), offsets.tolist(), layers.centroid_tags, strict=True):
        out.append(
            {
                "x": round(x, 3), "y": round(y, 3), "text": tag, "showarrow": True, "arrowhead": 0,
                "arrowwidth": 1, "arrowcolor": "#555", "standoff": 6, "ax": round(ax, 1), "ay": round(ay, 1),
                "font": {"size": 12, "color": "#111"}, "bgcolor": "rgba(255,255,255,0.85)",
                "bordercolor": layers.colours.get(tag, "#444"), "borderwidth": 1.5, "borderpad": 1,
            }
        )  # fmt: skip
    return out


# ---- the person -------------------------------------------------------------------------------
def person_traces(path_xy: np.ndarray, alphas: Sequence[float], now_xy: np.ndarray | None, now_alpha: float | None):
    """The person's traces (plain dicts): trajectory with a white halo, the standard point, the point now."""
    path = np.asarray(path_xy, dtype=np.float64).reshape(-1, 2)
    a = [float(v) for v in alphas]
    traces = []
    if len(path) > 1:
        traces.append(
            {
                "type": "scattergl", "x": _rounded(path[:, 0]), "y": _rounded(path[:, 1]), "mode": "lines",
                "line": {"color": "#ffffff", "width": 7}, "hoverinfo": "skip", "showlegend": False,
                "legend": "legend", "name": "halo",
            }
        )  # fmt: skip
        traces.append(
            {
                "type": "scattergl", "x": _rounded(path[:, 0]), "y": _rounded(path[:, 1]), "mode": "lines+markers",
                "name": PERSON_TRACE, "legend": "legend", "legendrank": 1,
                "line": {"color": "#111", "width": 3}, "marker": {"size": 6, "color": "#111"},
                "customdata": a, "hovertemplate": "you at α = %{customdata:.2f}<extra></extra>",
            }
        )  # fmt: skip
    if len(path):
        traces.append(
            {
                "type": "scattergl", "x": _rounded(path[:1, 0]), "y": _rounded(path[:1, 1]), "mode": "markers",
                "name": STANDARD_TRACE, "legend": "legend", "legendrank": 2,
                "marker": {"size": 20, "symbol": "star", "color": "#ffffff", "line": {"width": 2, "color": "#111"}},
                "hovertemplate": "you, standard (α = 0)<extra></extra>",
            }
        )  # fmt: skip
    if now_xy is not None and now_alpha is not None:
        now = np.asarray(now_xy, dtype=np.float64).reshape(-1, 2)
        traces.append(
            {
                "type": "scattergl", "x": _rounded(now[:, 0]), "y": _rounded(now[:, 1]), "mode": "markers",
                "name": now_name(now_alpha), "legend": "legend", "legendrank": 3,
                "marker": {"size": 24, "symbol": "star", "color": "#e4572e", "line": {"width": 2, "color": "#111"}},
                "hovertemplate": f"you now, α = {now_alpha:g}<extra></extra>",
            }
        )  # fmt: skip
    return traces


def alpha_slider(step_alphas: Sequence[float], step_xy: np.ndarray, star: int, active: int) -> dict:
    """A plotly slider (``layout.sliders[0]``) whose step ``k`` restyles only trace ``star`` (the "now"
    star): its position to ``step_xy[k]``, its name (legend entry) and hover text to ``step_alphas[k]``.

    Everything happens in plotly.js in the browser: no event reaches the server.
    """
    xy = np.asarray(step_xy, dtype=np.float64).reshape(-1, 2)
    steps = []
    for a, (x, y) in zip((float(v) for v in step_alphas), _rounded_pairs(xy), strict=True):
        update = {"x": [[x]], "y": [[y]], "name": now_name(a), "hovertemplate": f"you now, α = {a:g}<extra></extra>"}
        steps.append({"method": "restyle", "args": [update, [star]], "label": f"{a:g}", "value": f"{a:g}"})
    return {
        "active": int(active), "steps": steps, "x": 0.0, "len": 1.0, "xanchor": "left", "y": 0.0, "yanchor": "top",
        "pad": {"t": 24, "b": 0, "l": 10, "r": 10}, "font": {"size": 12}, "transition": {"duration": 0},
        "currentvalue": {"prefix": f"{ALPHA_LABEL}: ", "font": {"size": 13}},
    }  # fmt: skip


def _rounded_pairs(xy: np.ndarray) -> list[tuple[float, float]]:
    return list(zip(_rounded(xy[:, 0]), _rounded(xy[:, 1]), strict=True))


def map_figure(
    layers: MapLayers,
    *,
    path_xy: np.ndarray | None = None,
    alphas: Sequence[float] | None = None,
    now_xy: np.ndarray | None = None,
    now_alpha: float | None = None,
    step_alphas: Sequence[float] | None = None,
    step_xy: np.ndarray | None = None,
    height: int = HEIGHT_PX,
) -> dict:
    """The whole figure as a plotly dict: ``layers``' traces, then the person's (drawn last).

    ``path_xy``: the person's placed trajectory ``(len(alphas), 2)`` (one row: just their point);
    ``now_xy`` / ``now_alpha``: the point at the chosen alpha. With ``step_alphas`` / ``step_xy`` (the
    star's positions at every step) and a star, the figure gets the α slider (:func:`alpha_slider`),
    active at the step nearest ``now_alpha``, below the plot (the figure is :data:`SLIDER_PX` taller;
    the plot area keeps its size). Returns ``{"data": [...], "layout": {...}}`` (no validation: every
    trace is built here; ``plotly.graph_objects.Figure(fig)`` accepts it).
    """
    person = []
    if path_xy is not None and len(path_xy):
        a = list(alphas) if alphas is not None else list(range(len(path_xy)))
        person = person_traces(path_xy, a, now_xy, now_alpha)
    obstacles = None
    if path_xy is not None and len(path_xy):
        obstacles = np.concatenate(
            [np.asarray(path_xy).reshape(-1, 2)] + ([np.asarray(now_xy).reshape(-1, 2)] if now_xy is not None else [])
        )
    layout = {
        "template": "plotly_white",
        "height": height,
        "margin": MARGIN,
        "xaxis": {"visible": False, "range": list(layers.x_range)},
        "yaxis": {"visible": False, "scaleanchor": "x", "range": list(layers.y_range)},
        "legend": {
            "x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.9)",
            "bordercolor": "#111", "borderwidth": 1, "font": {"size": 13}, "title": {"text": "you"},
        },
        "legend2": {
            "x": 1.0, "y": 1.0, "xanchor": "left", "yanchor": "top", "font": {"size": 11}, "itemsizing": "constant",
            "tracegroupgap": 0, "title": {"text": "first tag"},
        },
        "annotations": label_annotations(layers, obstacles),
        "uirevision": "map",
    }  # fmt: skip
    data = [*layers.traces, *person]
    if step_alphas is not None and step_xy is not None and person and now_alpha is not None:
        active = int(np.argmin(np.abs(np.asarray(step_alphas, dtype=np.float64) - now_alpha)))
        layout["sliders"] = [alpha_slider(step_alphas, step_xy, len(data) - 1, active)]
        layout["height"] = height + SLIDER_PX
        layout["margin"] = {**MARGIN, "b": MARGIN["b"] + SLIDER_PX}
    return {"data": data, "layout": layout}


@functools.cache
def _prepared_class():
    import plotly.graph_objects as go

    class PreparedFigure(go.Figure):
        """A ``go.Figure`` standing for a figure dict built (and checked) by :func:`map_figure`.

        ``st.plotly_chart`` turns a dict into a ``go.Figure`` to validate it (~0.3 s for the demo's
        map, every slider move) and a ``go.Figure`` into a dict with ``to_dict()`` (a deep copy);
        this one hands its dict over as it is. Only ``to_dict`` / ``to_plotly_json`` are meant to
        be used (tests/test_map_view.py checks ``st.plotly_chart`` sends it unchanged).
        """

        def __init__(self, spec: dict):  # no super().__init__: no validation, no copy
            self.__dict__["_prepared_spec"] = spec

        def to_dict(self) -> dict:
            return self.__dict__["_prepared_spec"]

        def to_plotly_json(self) -> dict:
            return self.__dict__["_prepared_spec"]

    return PreparedFigure


def prepared_figure(spec: dict):
    """``spec`` (from :func:`map_figure`) as a figure ``st.plotly_chart`` sends without rebuilding it."""
    return _prepared_class()(spec)


#: A tuned path that moves less than this share of the map's extent is said not to show on the map.
STILL_PATH_SHARE = 0.03


def path_share(path_xy: np.ndarray, map_xy: np.ndarray) -> float:
    """How far the placed path gets from its start, as a share of the map's diagonal (0 for a still path).

    The placement rule (nearest stored points) cannot follow a point that is far from every stored
    point, as in a very high-dimensional space; the page says so instead of showing a path that
    seems not to move while the lists change.
    """
    path = np.asarray(path_xy, dtype=np.float64).reshape(-1, 2)
    pts = np.asarray(map_xy, dtype=np.float64).reshape(-1, 2)
    if len(path) < 2 or len(pts) < 2:
        return 0.0
    diagonal = float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    if diagonal == 0.0:
        return 0.0
    return float(np.linalg.norm(path - path[0], axis=1).max() / diagonal)
