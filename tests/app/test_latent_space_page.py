"""The Latent space page's slider (issue 17): it moves the red star, the map is one fragment, cheap to redraw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ALPHA_LABEL = "Tuning strength α on the map"


def _spec(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


@pytest.fixture
def person_on_the_map(run_page, built_registry: Path):
    """The small registry's page with the Recommend page's first-visit person and a hand-set α = 2."""
    at = run_page(built_registry, "pages/recommend.py")
    at.multiselect[1].set_value(["rock"]).run()
    at.toggle(key="rec_manual").set_value(True).run()
    at.slider(key="rec_alpha").set_value(2.0).run()
    at.switch_page("pages/latent_space.py").run()
    assert not at.exception
    return at


def test_the_slider_starts_at_the_tuned_alpha_and_moves_the_star(person_on_the_map) -> None:
    at = person_on_the_map
    slider = at.slider(key="map_alpha")
    assert slider.label == ALPHA_LABEL and slider.value == 2.0 and (slider.min, slider.max) == (0.0, 4.0)
    names = [t.get("name") for t in _spec(at)["data"]]
    assert names[-3:] == ["you, tuned over α", "you (standard, α = 0)", "you at α = 2 (now)"]
    star = _spec(at)["data"][-1]
    slider.set_value(3.5).run()
    assert not at.exception
    moved = _spec(at)["data"]
    assert moved[-1]["name"] == "you at α = 3.5 (now)"
    assert (moved[-1]["x"], moved[-1]["y"]) != (star["x"], star["y"])
    # the page's link keeps the Tuned column's α (the slider explores, it does not re-tune the person)
    assert float(at.query_params["alpha"]) == 2.0
    # the static layers did not change
    assert [t["name"] for t in moved[:-3]] == names[:-3]
    # labels are annotations with leader lines, one per centroid
    notes = _spec(at)["layout"]["annotations"]
    centroids = next(t for t in moved if t.get("name") == "tag centroids")
    assert sorted(a["text"] for a in notes) == sorted(centroids["text"]) and all(a["showarrow"] for a in notes)


def test_the_map_and_its_slider_are_one_fragment() -> None:
    """A slider move reruns only the fragment: the slider and the chart are drawn inside it."""
    import ast

    source = (Path(__file__).resolve().parents[2] / "pages" / "latent_space.py").read_text()
    tree = ast.parse(source)
    fragments = [
        f
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        and any(getattr(d, "attr", getattr(d, "id", None)) == "fragment" for d in f.decorator_list)
    ]
    assert len(fragments) == 1
    body = ast.unparse(fragments[0])
    assert "st.slider(" in body and "st.plotly_chart(" in body and "key='map_chart'" in body
    assert "ALPHA_LABEL" in body and f'ALPHA_LABEL = "{ALPHA_LABEL}"' in source


def test_a_path_the_map_cannot_follow_is_said_to_be_still(person_on_the_map, monkeypatch) -> None:
    """The MLP's path moves on its map (no note); where the placed path stays put, the page says why."""
    import recsys.map_view

    at = person_on_the_map
    note = "your tuned path barely moves"
    assert not any(note in i.value for i in at.info)
    monkeypatch.setattr(recsys.map_view, "STILL_PATH_SHARE", 10.0)  # every path counts as still
    at.run()
    assert any(note in i.value and "nearest-neighbour placement" in i.value for i in at.info), [
        i.value for i in at.info
    ]


def test_path_share_measures_how_far_the_placed_path_gets() -> None:
    import numpy as np

    from recsys.map_view import path_share

    map_xy = np.array([[0.0, 0.0], [3.0, 4.0]])  # a diagonal of 5
    assert path_share(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), map_xy) == 0.0
    assert path_share(np.array([[0.0, 0.0], [1.5, 2.0], [0.0, 0.5]]), map_xy) == pytest.approx(0.5)
    assert path_share(np.array([[0.0, 0.0]]), map_xy) == 0.0
