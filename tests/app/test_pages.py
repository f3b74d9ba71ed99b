"""Every page of the app, run headless with AppTest on a small, an empty and a damaged registry."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from recsys.app_support import BUILD_COMMAND
from recsys.registry import Registry
from recsys.steering import Steerer, tag_shares

from .conftest import MODEL_IDS, ROOT, flip_byte

PAGES = ("pages/home.py", "pages/recommend.py", "pages/latent_space.py", "pages/compare.py", "pages/models.py")


def _text(at) -> str:
    """Everything the page wrote as markdown, captions, alerts and code."""
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "code") for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_exception(run_page, built_registry: Path, page: str) -> None:
    at = run_page(built_registry, page)
    assert at.title[0].value  # the page rendered its heading
    assert not at.error


def test_home_says_what_is_loaded(run_page, built_registry: Path) -> None:
    at = run_page(built_registry)
    assert at.title[0].value == "Steerable recommender"
    assert {"Standard", "Postfilter", "Tune", "Tune + post"} <= {s.value for s in at.subheader}
    loaded = at.table[0].value
    assert list(loaded.index) == ["synthetic"]
    assert int(loaded.loc["synthetic", "items"]) > 0
    text = _text(at)
    for model_id in MODEL_IDS:
        assert model_id in text


def test_models_page_lists_models_with_integrity(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/models.py")
    table = at.table[0].value
    assert sorted(table.index) == sorted(MODEL_IDS)
    assert set(table["integrity"]) == {"ok"}
    assert set(table["family"]) == {"ease", "popularity", "svd", "mlp"}
    ndcg = table["NDCG@100"].astype(float)
    assert (ndcg > 0).all() and ndcg["ease-synthetic"] > ndcg["popularity-synthetic"]


def test_manifest_viewer_follows_the_selection(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/models.py")
    for model_id in MODEL_IDS:
        at.selectbox(key="manifest_model").set_value(model_id).run()
        manifest = json.loads(at.json[0].value)
        assert manifest["model_id"] == model_id
        assert manifest["info"]["split_seed"] == 0


def test_empty_registry_shows_the_build_command(run_page, tmp_path: Path) -> None:
    empty = tmp_path / "no-models-yet"
    for page in ("pages/models.py", "pages/home.py", "pages/recommend.py", "pages/compare.py"):
        at = run_page(empty, page)
        codes = [c.value for c in at.code]
        assert codes == [f"RECSYS_MODELS_DIR={empty} {BUILD_COMMAND}"], page
        assert not at.table or page == "pages/home.py"


def test_corrupted_weights_are_marked_not_raised(run_page, registry_copy: Path) -> None:
    flip_byte(registry_copy / "ease-synthetic" / "weights.safetensors")
    at = run_page(registry_copy, "pages/models.py")
    table = at.table[0].value
    assert table.loc["ease-synthetic", "integrity"] == "FAILS VERIFICATION"
    assert table.loc["popularity-synthetic", "integrity"] == "ok"
    errors = " ".join(e.value for e in at.error)
    assert "ease-synthetic" in errors and "sha256" in errors
    assert "registry remove ease-synthetic" in _text(at)
    # the damaged model is not offered for recommendations
    at.switch_page("pages/recommend.py").run()
    assert not at.exception
    options = at.selectbox(key="rec_model").options
    assert "ease-synthetic" not in options and "popularity-synthetic" in options


def test_unreadable_manifest_is_shown_as_such(run_page, registry_copy: Path) -> None:
    (registry_copy / "ease-synthetic" / "manifest.json").write_text("{not json")
    at = run_page(registry_copy, "pages/models.py")
    assert at.table[0].value.loc["ease-synthetic", "integrity"] == "UNREADABLE"
    at.selectbox(key="manifest_model").set_value("ease-synthetic").run()
    assert not at.exception
    assert not at.json
    assert any("not valid JSON" in e.value for e in at.error)


def test_recommend_page_excludes_picks(run_page, built_registry: Path) -> None:
    # pick the five most popular songs: Popularity would list them first if picks were not excluded
    popularity = Registry(built_registry).load("popularity-synthetic")
    top5 = np.argsort(-popularity.model.item_counts_, kind="stable")[:5]
    picks = [str(popularity.items["item_id"].iloc[i]) for i in top5]
    picked_songs = set(zip(popularity.items["title"].iloc[top5], popularity.items["artist"].iloc[top5], strict=True))

    at = run_page(built_registry, "pages/recommend.py")
    at.multiselect[0].set_value(picks).run()
    for model_id in ("popularity-synthetic", "ease-synthetic", "mlp-synthetic"):
        at.selectbox(key="rec_model").set_value(model_id).run()
        assert not at.exception
        assert at.multiselect[0].value == picks  # the picks carry over to a model of the same data set
        songs = _listed_songs(at)
        assert len(songs) >= 40  # standard + postfiltered (+ tuned) + SVD, 20 each
        assert not picked_songs & set(songs), model_id


def test_compare_page_ranks_by_ndcg(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/compare.py")
    table = at.dataframe[0].value
    assert list(table["model"])[-1] == "popularity-synthetic"
    assert table["NDCG@100"].astype(float).is_monotonic_decreasing
    assert (table["split seed"] == 0).all()


# ---- Recommend: steering ------------------------------------------------------------------------
def _columns(at) -> dict[str, dict]:
    """The Recommend page's columns (one HTML block each, recsys.list_view), by title, in page order:
    ``share`` (the tag share as shown: "45%" or "–"; None without one), ``status``, ``captions``, ``songs``."""
    out = {}
    for h in at.get("html"):
        body = h.proto.body
        head = re.search(r"<div class='rec-col' data-mode='([^']*)' data-status='([^']*)' data-share='([^']*)'>", body)
        if not head:
            continue
        title = html.unescape(re.search(r"<h3>([^<]*)</h3>", body).group(1))
        share = re.search(r"<p class='rec-share'[^>]*>([^<]*)</p>", body)
        shown = share.group(1) if share else None
        assert head.group(3) == ("" if shown in (None, "–") else shown.rstrip("%")), body[:300]  # the attribute
        captions = [html.unescape(c) for c in re.findall(r"<p class='rec-(?:caption|delta)'[^>]*>([^<]*)</p>", body)]
        out[title] = {"mode": head.group(1), "status": head.group(2), "share": shown, "captions": captions}
        out[title]["songs"] = _songs_in(body)
    return out


def _captions(at) -> list[str]:
    """Every caption: the page's own and each column's (strength, label, notes, distance from the dial)."""
    return [c.value for c in at.caption] + [c for col in _columns(at).values() for c in col["captions"]]


def _shares(at) -> dict[str, str]:
    """Tag share per column, by column title (columns with a list)."""
    return {title: col["share"] for title, col in _columns(at).items() if col["share"] is not None}


def _songs_in(body: str) -> list[tuple[str, str]]:
    pairs = re.findall(r"<span class=t>([^<]*)</span><br><span class=a>([^<]*)</span>", body)
    return [(html.unescape(t), html.unescape(a)) for t, a in pairs]


def _listed_songs(at) -> list[tuple[str, str]]:
    """(title, artist) of every listed item in every column."""
    return _songs_in(" ".join(h.proto.body for h in at.get("html")))


def _steered_shares(at) -> dict[str, int]:
    return {k: int(v.rstrip("%")) for k, v in _shares(at).items() if v != "–"}


def test_the_share_dial_sets_every_column_and_alpha_stays_by_hand(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/recommend.py")
    at.button[0].click().run()  # sample a held-out listener
    assert len(at.multiselect[0].value) > 0
    steerer = Steerer.from_loaded(Registry(built_registry).load("mlp-synthetic"))
    picks = at.multiselect[0].value
    shares = tag_shares(steerer.history(picks), steerer.tag_matrix)[0]
    target = min(steerer.steerable_tags, key=lambda t: shares[steerer.vocabulary.index(t)])
    at.multiselect[1].set_value([target]).run()
    seen: dict[str, list[int]] = {}
    for dial in (0, 20, 40, 60, 80, 100):
        at.slider(key="rec_share").set_value(dial).run()
        assert not at.exception
        text = _text(at) + "\n".join(_captions(at))
        for column, got in _steered_shares(at).items():
            if column in ("Standard", "SVD baseline"):
                continue
            seen.setdefault(column, []).append(got)
            # on the dial (to one song of 20), or the column says why not
            assert abs(got - dial) <= 5 or "cannot reach" in text or "without steering" in text, (column, dial, got)
        # each steered column shows the strength it used
        columns = _columns(at)
        assert all(any(c.startswith(("α = ", "⚠ α = ", "step ", "⚠ step ")) for c in columns[t]["captions"])
                   for t in ("Postfiltered", "Tuned", "Tune + post")), columns  # fmt: skip
        assert all(columns[t]["status"] in ("reached", "ceiling", "floor") for t in ("Postfiltered", "Tuned"))
    assert set(seen) >= {"Postfiltered", "Tuned", "Tune + post"}
    for column, got in seen.items():
        assert got == sorted(got), (column, got)  # never falls as the dial rises
    assert seen["Postfiltered"][-1] == 100 and seen["Tune + post"][-1] == 100
    assert at.query_params["tags"] == f"{target}:1" and at.query_params["share"] == "100"
    picked = steerer.items.set_index("item_id").loc[picks]
    assert set(_listed_songs(at)).isdisjoint(zip(picked["title"], picked["artist"], strict=True))
    # by hand: one alpha for every mode; alpha 0 is the standard list everywhere
    at.toggle(key="rec_manual").set_value(True).run()
    at.slider(key="rec_alpha").set_value(0.0).run()
    assert not at.exception
    s = _shares(at)
    assert len({s[c] for c in ("Standard", "Postfiltered", "Tuned", "Tune + post")}) == 1
    assert at.query_params["alpha"] == "0" and "share" not in at.query_params


def test_a_first_visit_shows_steering_working(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/recommend.py")
    picks, tags = at.multiselect[0].value, at.multiselect[1].value
    assert picks and len(tags) == 1  # a stored listener and one tag
    steerer = Steerer.from_loaded(Registry(built_registry).load("mlp-synthetic"))
    shares = tag_shares(steerer.history(picks), steerer.tag_matrix)[0]
    least = min(shares[steerer.vocabulary.index(t)] for t in steerer.steerable_tags)
    assert shares[steerer.vocabulary.index(tags[0])] == least  # the tag the picks carry least
    assert at.slider(key="rec_share").value == 40
    s = _steered_shares(at)
    assert s["Standard"] < 40 and all(abs(s[c] - 40) <= 5 for c in ("Postfiltered", "Tune + post")), s


def test_switching_to_a_non_latent_model_keeps_picks_and_explains(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/recommend.py")
    at.button[0].click().run()
    picks = at.multiselect[0].value
    at.selectbox(key="rec_model").set_value("ease-synthetic").run()
    assert not at.exception
    assert at.multiselect[0].value == picks
    assert any("needs a latent model" in c for c in _captions(at))


def test_the_url_reproduces_the_view(run_page, built_registry: Path, monkeypatch) -> None:
    items = Registry(built_registry).load("mlp-synthetic").items
    picks = list(items["item_id"].astype(str)[:3])
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(
        {"dataset": "synthetic", "model": "svd-synthetic", "picks": ",".join(picks), "tags": "rock:2", "alpha": "1.5"}
    )
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception
    assert at.selectbox(key="rec_model").value == "svd-synthetic"
    assert at.multiselect[0].value == picks
    assert at.multiselect[1].value == ["rock"]
    assert at.slider(key="rec_alpha").value == 1.5 and at.toggle(key="rec_manual").value
    assert at.slider(key="rec_w_rock").value == 2.0


def test_a_shared_link_with_a_share_reopens_the_dial(run_page, built_registry: Path, monkeypatch) -> None:
    items = Registry(built_registry).load("mlp-synthetic").items
    picks = list(items["item_id"].astype(str)[:3])
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"model": "mlp-synthetic", "picks": ",".join(picks), "tags": "rock:1", "share": "70"})
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception
    assert at.slider(key="rec_share").value == 70 and not at.toggle(key="rec_manual").value
    assert abs(_steered_shares(at)["Postfiltered"] - 70) <= 5


def test_bad_url_values_are_ignored_not_raised(run_page, built_registry: Path, monkeypatch) -> None:
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"model": "nope", "picks": "x,y", "tags": "notatag:abc", "alpha": "NaN!"})
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception
    assert at.multiselect[0].value == [] and at.multiselect[1].value == []
    assert any("most popular" in i.value for i in at.info)


@pytest.mark.parametrize("params", [{"alpha": "nan"}, {"share": "nan", "tags": "rock:nan"}, {"share": "inf"}])
def test_nan_and_infinite_link_values_fall_back_to_defaults(
    run_page, built_registry: Path, monkeypatch, params
) -> None:
    items = Registry(built_registry).load("mlp-synthetic").items
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"model": "mlp-synthetic", "picks": str(items["item_id"].iloc[0]), **params})
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception and not at.error
    assert at.slider(key="rec_share").value == 40 and at.slider(key="rec_alpha").value == 1.0


def test_models_without_steering_data_ask_for_a_rebuild(run_page, tmp_path: Path) -> None:
    from recsys.data.splits import strong_generalization_split
    from recsys.data.synthetic import generate_synthetic
    from recsys.models.ease import EASE

    split = strong_generalization_split(generate_synthetic(n_users=200, n_items=300, n_artists=40, n_tags=6), 0, 30)
    Registry(tmp_path).save(EASE(l2=50.0).fit(split.train), dataset=split.train, model_id="old-ease")
    at = run_page(tmp_path, "pages/recommend.py")
    assert any("without steering data" in w.value for w in at.warning)
    assert any("--force" in c.value for c in at.code)


# ---- Compare and Models ------------------------------------------------------------------------
def test_compare_shows_curves_latency_and_overlap_for_the_current_person(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/recommend.py")
    at.button[0].click().run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # trade-off curves + incomplete-tags bars + Jaccard heatmap
    curves = json.loads(charts[0].proto.spec)
    names = {t["name"] for t in curves["data"]}
    assert {"mlp-synthetic: tune", "mlp-synthetic: postfilter", "ease-synthetic: postfilter"} <= names
    latency = next(d.value for d in at.dataframe if "ms per Recommend call" in d.value.columns)
    assert set(latency["model"]) == set(MODEL_IDS) and (latency["ms per Recommend call"] > 0).all()
    heat = json.loads(charts[2].proto.spec)["data"][0]
    z = heat["z"]
    if isinstance(z, dict):  # plotly's binary array encoding
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(len(heat["y"]), len(heat["x"]))
    z = np.asarray(z, dtype=float)
    assert z.shape == (4, 4) and np.allclose(np.diag(z), 1.0) and np.allclose(z, z.T)


def test_compare_shows_which_mode_wins_when_tags_are_hidden(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/compare.py")
    at.slider(key="cmp_inc_hidden").set_value(80).run()
    at.radio(key="cmp_inc_bias").set_value("popularity").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Δ tag recall vs postfilter" in d.value.columns)
    assert list(table["mode"]) == ["postfilter", "tune", "tune+post"]
    post = table.set_index("mode").loc["postfilter"]
    assert post["Δ tag recall vs postfilter"] == 0 and abs(post["share"] - 0.5) <= 0.06
    assert any("Best tag recall here" in c.value for c in at.caption)
    assert "not available here" in _text(at)  # this small registry's data set is not the demo's


def test_compare_without_picks_says_where_to_start(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/compare.py")
    assert any("Recommend" in i.value for i in at.info)


def test_models_page_shows_training_curves_and_trains_a_small_model(run_page, registry_copy: Path) -> None:
    at = run_page(registry_copy, "pages/models.py")
    at.selectbox(key="manifest_model").set_value("mlp-synthetic").run()
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["name"] for t in curves["data"]} == {"train loss", "validation NDCG@100"}
    at.selectbox(key="train_family").set_value("ease")
    at.button[0].click().run()
    assert not at.exception
    assert any("Registered **ease-synthetic-small**" in s.value for s in at.success)
    assert "ease-synthetic-small" in Registry(registry_copy).ids()


def test_an_unexpected_error_is_a_message_not_a_traceback(run_page, built_registry: Path, monkeypatch) -> None:
    import recsys.steering

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(recsys.steering.Steerer, "recommend", broken)
    at = run_page(built_registry, "pages/recommend.py")
    at.button[0].click().run()
    assert not at.exception
    assert any("disk on fire" in e.value and "Reload the page" in e.value for e in at.error)


def test_two_sessions_keep_their_own_picks(run_page, built_registry: Path) -> None:
    first = run_page(built_registry, "pages/recommend.py")
    second = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    second.switch_page("pages/recommend.py").run()
    assert first.multiselect[0].value == second.multiselect[0].value  # both open on the demo's listener
    first.button[0].click().run()
    second.multiselect[0].set_value([]).run()
    first.run()
    assert first.multiselect[0].value and not second.multiselect[0].value
    assert first.multiselect[0].value != second.multiselect[0].value


# ---- Latent space ------------------------------------------------------------------------------------
def _map_traces(at) -> list[str]:
    return [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]


def test_latent_space_shows_map_centroids_and_the_trajectory(run_page, built_registry: Path) -> None:
    at = run_page(built_registry, "pages/latent_space.py")
    names = _map_traces(at)
    assert "tag centroids" in names and not any(n.startswith("you") for n in names)
    assert any("Recommend" in i.value for i in at.info)
    at.switch_page("pages/recommend.py").run()
    at.button[0].click().run()
    at.multiselect[1].set_value(["rock"]).run()
    at.toggle(key="rec_manual").set_value(True).run()
    at.slider(key="rec_alpha").set_value(2.0).run()
    at.switch_page("pages/latent_space.py").run()
    assert not at.exception
    names = _map_traces(at)
    assert {"you, tuned over α", "you (standard, α = 0)", "you at α = 2 (now)"} <= set(names)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    path = next(t for t in spec["data"] if t["name"] == "you, tuned over α")
    assert len(path["customdata"]["bdata"] if isinstance(path["customdata"], dict) else path["customdata"]) > 0
    assert "placed by a fixed rule" in _text(at)


def test_latent_space_recomputes_with_other_parameters(run_page, built_registry: Path) -> None:
    # (the suite lays maps out with PCA, which ignores the UMAP parameters: the layout is the same here)
    at = run_page(built_registry, "pages/latent_space.py")
    at.slider(key="map_md").set_value(0.5)
    at.slider(key="map_nn").set_value(5)
    at.button(key="map_recompute").click().run()
    assert not at.exception
    assert any("n_neighbors 5, min_dist 0.5" in c.value for c in at.caption)
    at.button(key="map_stored").click().run()
    assert any("n_neighbors 15, min_dist 0.1" in c.value for c in at.caption)


def test_a_sequential_model_shows_the_session_order_and_appears_in_compare(run_page, registry_copy: Path) -> None:
    from recsys.data.synthetic import generate_synthetic
    from recsys.training import train_from_config

    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    cfg = {"family": "seqvae", "dataset": "synthetic", "seed": 0, "protocol": "next_item", "model_id": "seqvae-small",
           "params": {"latent_dim": 16, "hidden_dim": 32, "epochs": 3, "samples_per_user": 2}}  # fmt: skip
    train_from_config(cfg, dataset=small, registry=Registry(registry_copy))
    at = run_page(registry_copy, "pages/recommend.py")
    at.selectbox(key="rec_model").set_value("seqvae-small").run()
    at.button[0].click().run()
    assert not at.exception
    session = [c.value for c in at.caption if "reads your picks as a session" in c.value]
    assert session and "1. " in session[0] and " → 2. " in session[0]
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["seqvae-small", "next-item HR@10"] >= 0 and np.isnan(
        table.loc["ease-synthetic", "next-item HR@10"]
    )


def test_tuning_toward_the_picks_own_tag_explains_why_nothing_moves(run_page, built_registry: Path) -> None:
    steerer = Steerer.from_loaded(Registry(built_registry).load("mlp-synthetic"))
    single = [i for i, tags in enumerate(steerer.item_tags) if len(tags) == 1 and tags[0] in steerer.steerable_tags]
    song = single[0]
    at = run_page(built_registry, "pages/recommend.py")
    at.multiselect[0].set_value([str(steerer.items["item_id"].iloc[song])]).run()
    at.multiselect[1].set_value([steerer.item_tags[song][0]]).run()
    assert not at.exception
    assert any("tuned list equals the standard one" in i.value for i in at.info)


# ---- links, labels (issue 14) ------------------------------------------------------------------------
def test_a_shared_link_opened_first_on_a_fresh_server_keeps_its_state(built_registry: Path, monkeypatch) -> None:
    # A fresh server serves /recommend?... in its legacy pages/ mode: the page's first run is the
    # session's first, before app.py ever ran, and it routes itself through app.py (st.switch_page,
    # which clears the query parameters unless they are passed on).
    items = Registry(built_registry).load("mlp-synthetic").items
    picks = list(items["item_id"].astype(str)[:3])
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(built_registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"model": "mlp-synthetic", "picks": ",".join(picks), "tags": "rock:2", "share": "70"})
    at.switch_page("pages/recommend.py").run()  # the first run of the session
    assert not at.exception
    assert at.title[0].value == "Recommend"
    assert at.multiselect[0].value == picks and at.multiselect[1].value == ["rock"]
    assert at.slider(key="rec_share").value == 70 and at.slider(key="rec_w_rock").value == 2.0
    assert at.query_params["picks"] == ",".join(picks) and at.query_params["share"] == "70"


def _latent_link(at_params: dict, registry: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("RECSYS_MODELS_DIR", str(registry))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(at_params)
    at.switch_page("pages/latent_space.py").run()
    assert not at.exception and not at.error
    return at


def test_the_latent_space_keeps_its_view_in_the_url(run_page, built_registry: Path, monkeypatch) -> None:
    at = run_page(built_registry, "pages/recommend.py")
    at.multiselect[1].set_value(["rock"]).run()
    at.switch_page("pages/latent_space.py").run()
    at.toggle(key="map_users").set_value(False).run()
    at.slider(key="map_nn").set_value(7)
    at.slider(key="map_md").set_value(0.3)
    at.button(key="map_recompute").click().run()
    assert not at.exception
    qp = at.query_params
    assert qp["model"] == at.selectbox(key="map_model").value and qp["users"] == "0" and qp["items"] == "1"
    assert (qp["nn"], qp["md"]) == ("7", "0.3") and qp["tags"] == "rock:1" and qp["picks"] and float(qp["alpha"]) > 0

    # the link in a new session (a fresh server's first request) reopens the same view
    again = _latent_link(dict(qp), built_registry, monkeypatch)
    assert again.selectbox(key="map_model").value == qp["model"]
    assert not again.toggle(key="map_users").value and again.toggle(key="map_items").value
    assert any("n_neighbors 7, min_dist 0.3" in c.value for c in again.caption)
    names = _map_traces(again)
    assert {"you, tuned over α", "you (standard, α = 0)"} <= set(names) and "training listeners" not in names
    assert dict(again.query_params) == dict(qp)


@pytest.mark.parametrize(
    "params",
    [
        {"model": "nope", "users": "maybe", "nn": "nan", "md": "inf", "alpha": "nan", "tags": "rock:nan"},
        {"nn": "1e9", "md": "-3", "picks": "x,y", "tags": "notatag:2", "alpha": "-inf"},
    ],
)
def test_bad_latent_space_link_values_fall_back_to_defaults(built_registry: Path, monkeypatch, params) -> None:
    at = _latent_link(params, built_registry, monkeypatch)
    assert at.selectbox(key="map_model").value in ("mlp-synthetic", "svd-synthetic")
    assert at.slider(key="map_nn").value in (15, 50) and 0.0 <= at.slider(key="map_md").value <= 0.99
    assert at.query_params["model"] == at.selectbox(key="map_model").value
    assert "picks" not in at.query_params and at.query_params.get("tags", "rock:1") == "rock:1"
    if "alpha" in at.query_params:
        assert np.isfinite(float(at.query_params["alpha"]))


def test_mlp_flow_is_labelled_as_the_mlps_recommendations(run_page, registry_copy: Path) -> None:
    from recsys.data.synthetic import generate_synthetic
    from recsys.defaults import DefaultModel, build_default_registry
    from recsys.projection import pca_reducer

    small = generate_synthetic(n_users=300, n_items=600, n_artists=80, n_tags=8)
    flow = DefaultModel(
        "mlp_flow-synthetic",
        "mlp_flow",
        {"epochs": 3, "latent_dim": 16, "hidden_dim": 64, "flow_epochs": 3},
        {"base": 0.2, "scale": 4.0, "offset": 0.3},
    )
    build_default_registry(Registry(registry_copy), dataset=small, models=[flow], reducer_factory=pca_reducer)
    label = "mlp_flow-synthetic — the MLP's recommendations, steered in a flow (Gaussian) latent space"

    at = run_page(registry_copy, "pages/models.py")
    table = at.table[0].value
    assert table.loc["mlp_flow-synthetic", "what it is"] == label.split(" — ")[1]
    assert "own latent space" in table.loc["mlp-synthetic", "what it is"]
    assert label in at.selectbox(key="manifest_model").options
    at.switch_page("pages/recommend.py").run()
    assert label in at.selectbox(key="rec_model").options
    at.selectbox(key="rec_model").set_value("mlp_flow-synthetic").run()
    assert not at.exception and at.query_params["model"] == "mlp_flow-synthetic"
    at.switch_page("pages/latent_space.py").run()
    assert label in at.selectbox(key="map_model").options
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    accuracy = at.dataframe[0].value.set_index("model")
    assert accuracy.loc["mlp_flow-synthetic", "what it is"] == label.split(" — ")[1]
    assert any("recommends with its MLP" in c.value for c in at.caption)
    assert label in at.multiselect(key="cmp_models").options
    at.switch_page("pages/home.py").run()
    assert "`mlp_flow-synthetic` (mlp_flow: the MLP's recommendations" in _text(at)
