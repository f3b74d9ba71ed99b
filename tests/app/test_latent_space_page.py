"""The Latent space page's α slider (issue 17): plotly's, in the figure; its steps move only the red star."""

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


def test_the_maps_slider_is_plotlys_and_moves_only_the_star(person_on_the_map, built_registry: Path) -> None:
    """The α slider is in the figure (``layout.sliders``): each step restyles only the red star, at
    the place ``place_latent`` gives the linear tuned path at that α; it starts at the Tuned column's α."""
    import numpy as np

    from recsys.app_support import parse_tags_param
    from recsys.projection import LatentMap
    from recsys.registry import Registry
    from recsys.steering import Steerer

    at = person_on_the_map
    # no Streamlit α slider (a move needs no rerun): only the recompute expander's two
    assert {s.key for s in at.slider} == {"map_nn", "map_md"}
    spec = _spec(at)
    names = [t.get("name") for t in spec["data"]]
    assert names[-3:] == ["you, tuned over α", "you (standard, α = 0)", "you at α = 2 (now)"]
    (slider,) = spec["layout"]["sliders"]
    steps = slider["steps"]
    alphas = [float(s["value"]) for s in steps]
    np.testing.assert_allclose(alphas, np.arange(81) * 0.05, atol=1e-9)
    assert alphas[slider["active"]] == 2.0 and ALPHA_LABEL in slider["currentvalue"]["prefix"]
    star = len(spec["data"]) - 1
    assert all(s["method"] == "restyle" and s["args"][1] == [star] for s in steps)
    assert all(set(s["args"][0]) <= {"x", "y", "name", "hovertemplate"} for s in steps)
    assert [s["args"][0]["name"] for s in steps][::20] == [f"you at α = {a:g} (now)" for a in (0, 1, 2, 3, 4)]
    xy = np.array([[s["args"][0]["x"][0][0], s["args"][0]["y"][0][0]] for s in steps])
    # the star as drawn is the active step
    assert (spec["data"][star]["x"], spec["data"][star]["y"]) == ([xy[40, 0]], [xy[40, 1]])
    # the steps: place_latent of z(α) = z(0) + α d for the page's person (its link), on the model's map
    loaded = Registry(built_registry).load(at.query_params["model"])
    steerer = Steerer.from_loaded(loaded)
    picks = [p for p in at.query_params["picks"].split(",") if p]
    tags = parse_tags_param(at.query_params["tags"])
    assert picks and tags
    z = steerer.trajectory(picks, tags, np.array([0.0, 1.0]))
    latent_map = LatentMap.from_arrays(loaded.extras)
    want = latent_map.place_latent(steerer.model, z[0][None, :] + (np.arange(81) * 0.05)[:, None] * (z[1] - z[0]))
    np.testing.assert_allclose(xy, want, atol=2e-3)
    assert np.ptp(xy, axis=0).max() > 0  # the star moves
    # the page's link keeps the Tuned column's α
    assert float(at.query_params["alpha"]) == 2.0
    # labels are annotations with leader lines, one per centroid
    notes = spec["layout"]["annotations"]
    centroids = next(t for t in spec["data"] if t.get("name") == "tag centroids")
    assert sorted(a["text"] for a in notes) == sorted(centroids["text"]) and all(a["showarrow"] for a in notes)


def test_the_page_has_no_fragment_and_no_streamlit_alpha_slider() -> None:
    """A move of the map's α is plotly's (no rerun): the page has neither a fragment nor ``map_alpha``."""
    source = (Path(__file__).resolve().parents[2] / "pages" / "latent_space.py").read_text()
    assert "st.fragment" not in source and "map_alpha" not in source
    assert "step_alphas=" in source and 'key="map_chart"' in source


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
