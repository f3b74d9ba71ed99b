"""The Latent space page's figure: a stored latent map with tags, centroids and a person's trajectory.

No Streamlit here: :func:`map_points` turns a :class:`~recsys.projection.LatentMap` into a tidy frame
(one row per drawn point, with its colour tag and hover text) and :func:`map_figure` draws it with
plotly, adding the tag centroids and, when given, the person's tuned trajectory over alpha with the
current alpha highlighted. Positions of points that were not fitted (centroids, the person) come from
the map's placement rule (``LatentMap.place``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .projection import LatentMap
from .steering import Steerer, tag_counts

OTHER = "other"


def item_colour_tags(steerer: Steerer, item_index: np.ndarray) -> list[str]:
    """Per item: its first tag that is steerable (has a centroid), else "other"."""
    allowed = set(steerer.steerable_tags)
    out = []
    for i in item_index:
        out.append(next((t for t in steerer.item_tags[int(i)] if t in allowed), OTHER))
    return out


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
    frames = [
        pd.DataFrame(
            {
                "kind": item_noun,
                "x": latent_map.item_coords[:, 0],
                "y": latent_map.item_coords[:, 1],
                "tag": item_colour_tags(steerer, latent_map.item_index),
                "label": [
                    f"{items['title'].iloc[i]} — {items['artist'].iloc[i]}" for i in latent_map.item_index.tolist()
                ],
            }
        )
    ]
    if user_codes is not None and len(user_codes) == len(latent_map.user_index):
        tags = steerer.steerable_tags
        frames.append(
            pd.DataFrame(
                {
                    "kind": "listener",
                    "x": latent_map.user_coords[:, 0],
                    "y": latent_map.user_coords[:, 1],
                    "tag": [tags[c] if c >= 0 else OTHER for c in user_codes.tolist()],
                    "label": [f"training listener #{u}" for u in latent_map.user_index.tolist()],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def map_figure(
    points: pd.DataFrame,
    latent_map: LatentMap,
    centroid_tags: Sequence[str],
    *,
    trajectory: np.ndarray | None = None,
    alphas: Sequence[float] | None = None,
    current_alpha: float | None = None,
    item_noun: str = "song",
    height: int = 720,
):
    """Plotly figure of the map; ``trajectory`` = tuned latent points (len(alphas), d) of the person."""
    import plotly.express as px
    import plotly.graph_objects as go

    tags = sorted(set(points["tag"]) - {OTHER}) + ([OTHER] if OTHER in set(points["tag"]) else [])
    palette = px.colors.qualitative.Alphabet + px.colors.qualitative.Dark24
    colour = {t: ("#c8c8c8" if t == OTHER else palette[i % len(palette)]) for i, t in enumerate(tags)}
    fig = go.Figure()
    for kind, symbol, size, opacity in (("listener", "circle-open", 5, 0.35), (item_noun, "circle", 4, 0.55)):
        sub_kind = points[points["kind"] == kind]
        for tag in tags:
            sub = sub_kind[sub_kind["tag"] == tag]
            if sub.empty:
                continue
            fig.add_trace(
                go.Scattergl(
                    x=sub["x"],
                    y=sub["y"],
                    mode="markers",
                    name=tag,
                    legendgroup=tag,
                    showlegend=kind == item_noun,
                    marker={"size": size, "color": colour[tag], "symbol": symbol, "opacity": opacity},
                    text=sub["label"],
                    hovertemplate=f"%{{text}}<br>{kind}, tag: {tag}<extra></extra>",
                )
            )
    if len(centroid_tags):
        xy = latent_map.extra_coords
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers+text",
                name="tag centroids",
                text=list(centroid_tags),
                textposition="top center",
                textfont={"size": 12, "color": "#222"},
                marker={
                    "size": 12,
                    "symbol": "diamond",
                    "color": [colour.get(t, "#444") for t in centroid_tags],
                    "line": {"width": 1.5, "color": "#222"},
                },
                hovertemplate="centroid of %{text}<extra></extra>",
            )
        )
    if trajectory is not None and len(trajectory):
        path = latent_map.place(np.asarray(trajectory, dtype=np.float32))
        a = list(alphas) if alphas is not None else list(range(len(path)))
        fig.add_trace(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines+markers",
                name="you, tuned over α",
                line={"color": "#111", "width": 2},
                marker={"size": 6, "color": "#111"},
                customdata=np.asarray(a),
                hovertemplate="you at α = %{customdata:.2f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=path[:1, 0], y=path[:1, 1], mode="markers", name="you (standard, α = 0)",
                marker={"size": 16, "symbol": "star", "color": "#ffffff", "line": {"width": 2, "color": "#111"}},
                hovertemplate="you, standard (α = 0)<extra></extra>",
            )
        )  # fmt: skip
        if current_alpha is not None:
            j = int(np.argmin(np.abs(np.asarray(a) - current_alpha)))
            fig.add_trace(
                go.Scatter(
                    x=path[j : j + 1, 0], y=path[j : j + 1, 1], mode="markers", name=f"you at α = {a[j]:g} (now)",
                    marker={"size": 18, "symbol": "star", "color": "#e4572e", "line": {"width": 1.5, "color": "#111"}},
                    hovertemplate=f"you now, α = {a[j]:g}<extra></extra>",
                )
            )  # fmt: skip
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"t": 20, "b": 20, "l": 10, "r": 10},
        legend={"itemsizing": "constant", "title": "tag"},
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
    )
    return fig
