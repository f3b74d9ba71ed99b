"""Latent space: the model's UMAP map with songs, listeners, tag centroids and your tuned trajectory.

The view (model, toggles, a recomputed layout's UMAP parameters, and the person's picks, tags and
tuned α) mirrors the URL's query parameters, so a copied link reopens the same map; values that are
missing, unknown, NaN or out of range fall back to the defaults.
"""

import numpy as np
import streamlit as st

from recsys.app_support import (
    MAX_ALPHA,
    build_command,
    cached_item_labels,
    cached_map,
    cached_model,
    cached_statuses,
    cached_steerer,
    current_person,
    current_registry,
    files_signature,
    finite_or,
    format_tags_param,
    mappable_statuses,
    model_labeler,
    page_guard,
    parse_tags_param,
    remember_person,
    remember_tuned_alpha,
    require_router,
    stop_page,
)
from recsys.map_view import STILL_PATH_SHARE, map_figure, map_layers, map_points, path_share, prepared_figure
from recsys.registry import Registry, RegistryError
from recsys.steering import SteeringError

require_router(__file__)

PLACEMENT = (
    "**How points that were not fitted are placed.** UMAP's fitted object is not stored (it would be a "
    "pickle), so your point, your tuned point at every α and the tag centroids are placed by a fixed "
    "rule: find the 10 stored songs and listeners nearest to the point in the latent space and put it at "
    "the mean of their map positions, weighted by inverse latent distance. A stored point lands exactly "
    "where it is; a point moving through the latent space moves smoothly across the map."
)
DIRECTION_PLACEMENT = (
    "On this map of directions your point and tuned path are placed by what the model recommends instead: "
    "at the mean map position of the 20 songs it ranks highest for that point (your picks left out). In "
    "its many dimensions a tuned point stays nearest the same stored points while its list changes, so the "
    "nearest-neighbour rule would keep the path still; the tag centroids keep that rule."
)

#: The trajectory's alphas (the drawn line) and the map's α slider (its steps: the star's positions).
MAX_MAP_ALPHA = 4.0
ALPHAS = np.round(np.linspace(0.0, MAX_MAP_ALPHA, 17), 2)
ALPHA_STEP = 0.05
STEP_ALPHAS = np.round(np.arange(0.0, MAX_MAP_ALPHA + ALPHA_STEP / 2, ALPHA_STEP), 2)


@st.cache_data(show_spinner=False, max_entries=8)
def _layers_cached(root: str, model_id: str, signature: tuple, params, show_users: bool, show_items: bool, noun: str):
    """The figure's static layers (songs, listeners, centroids) of a model's map and view."""
    registry = Registry(root)
    latent_map, codes = cached_map(registry, model_id, params)
    steerer = cached_steerer(registry, model_id)
    points = map_points(latent_map, steerer, codes if show_users else None, item_noun=noun)
    if not show_items:
        points = points[points["kind"] != noun]
    centroid_tags = list(steerer.centroids.tags) if steerer.centroids is not None else []
    return map_layers(points, latent_map, centroid_tags, item_noun=noun)


def _layers(registry, model_id: str, params, show_users: bool, show_items: bool, noun: str):
    sig = files_signature(registry, model_id)
    return _layers_cached(str(registry.root), model_id, sig, params, show_users, show_items, noun)


def _map(layers, latent_map, model, picks, tags, path_z, path_xy, tuned_alpha: float, picked) -> None:
    """The map, with the α slider inside the figure (plotly's own: a move is drawn in the browser, no rerun).

    The tuned point is linear in α (``z(α) = z(0) + α d``, ``Steerer.trajectory``), so the star's point at
    every step of the slider comes from the trajectory's ends without the model; all of them are placed
    in one call.
    """
    step_xy = None
    if tags:
        direction = (path_z[-1] - path_z[0]) / (ALPHAS[-1] - ALPHAS[0])
        step_xy = latent_map.place_path(
            model, path_z[0][None, :] + STEP_ALPHAS[:, None] * direction[None, :], exclude=picked
        )
    now_alpha = round(round(tuned_alpha / ALPHA_STEP) * ALPHA_STEP, 2) if tags else None
    now_xy = step_xy[int(round(now_alpha / ALPHA_STEP))] if tags else None
    fig = map_figure(
        layers, path_xy=path_xy, alphas=ALPHAS if tags else [0.0], now_xy=now_xy, now_alpha=now_alpha,
        step_alphas=STEP_ALPHAS if tags else None, step_xy=step_xy,
    )  # fmt: skip
    st.plotly_chart(prepared_figure(fig), width="stretch", key="map_chart")
    if tags:
        start = "the average listener" if not picks else "your point"
        st.caption(
            f"The line is the tuned trajectory from {start} (white star, α = 0) toward {', '.join(tags)} for α "
            f"from 0 to {MAX_MAP_ALPHA:g}; the red star is at the α of the slider under the map, which starts "
            f"where the Tuned column on the Recommend page stands: α = {tuned_alpha:.2f} (solved from the share "
            "dial unless α is set by hand)."
        )


with page_guard("latent_space"):
    st.title("Latent space")
    registry = current_registry()
    statuses = cached_statuses(registry)
    ready = mappable_statuses(statuses)
    if not ready:
        st.info("No latent model with a stored map in the registry. Build the default models with:")
        st.code(build_command() + " --force", language="bash")
        stop_page("latent_space")

    ids = [s.model_id for s in ready]
    # ---- state from the URL, once per session (a shared link) ----------------------------------------
    qp = st.query_params
    if "map_init" not in st.session_state:
        st.session_state.map_init = True
        if qp.get("model") in ids:
            st.session_state.map_model = qp.get("model")
        for key, name in (("map_users", "users"), ("map_items", "items")):
            if name in qp:
                st.session_state[key] = qp.get(name) not in ("0", "false", "off", "no")
        if "nn" in qp or "md" in qp:
            st.session_state.map_url_layout = (qp.get("nn"), qp.get("md"))
        if any(k in qp for k in ("picks", "tags", "alpha")):
            st.session_state.map_url_person = (
                [p for p in (qp.get("picks") or "").split(",") if p],
                parse_tags_param(qp.get("tags")),
                qp.get("alpha"),
            )

    wanted = current_person()["model"]
    if st.session_state.get("map_model") not in ids:
        st.session_state.map_model = wanted if wanted in ids else ids[0]
    top = st.columns([2, 1, 1])
    model_id = top[0].selectbox("Model", ids, key="map_model", format_func=model_labeler(ready))
    st.session_state.setdefault("map_users", True)
    st.session_state.setdefault("map_items", True)
    show_users = top[1].toggle("Training listeners", key="map_users")
    show_items = top[2].toggle("Songs", key="map_items")

    try:
        loaded = cached_model(registry, model_id)
        steerer = cached_steerer(registry, model_id)
    except (RegistryError, SteeringError) as e:
        st.error(f"{e}")
        stop_page("latent_space")
    noun = loaded.manifest["dataset"].get("item_noun", "item")
    stored_umap = loaded.manifest["info"]["map"]["umap"]
    stored_layout = (int(stored_umap["n_neighbors"]), float(stored_umap["min_dist"]))
    link_layout = st.session_state.pop("map_url_layout", None)
    if link_layout is not None:
        layout = (
            int(round(finite_or(link_layout[0], stored_layout[0], 5, 50))),
            round(finite_or(link_layout[1], stored_layout[1], 0.0, 0.99), 2),
        )
        st.session_state.map_nn, st.session_state.map_md = layout
        st.session_state.map_params = {model_id: layout} if layout != stored_layout else {}
    link_person = st.session_state.pop("map_url_person", None)
    full_fp = loaded.manifest["dataset"]["fingerprint"]
    if link_person is not None and not any(current_person(full_fp)[k] for k in ("picks", "tags")):
        labels = cached_item_labels(registry, model_id)
        link_picks, link_tags, link_alpha = link_person
        remember_person(
            dataset=loaded.manifest["dataset"]["name"],
            model_id=model_id,
            fingerprint=full_fp,
            picks=[p for p in link_picks if p in labels],
            tags={t: finite_or(w, 1.0, 0.1, 5.0) for t, w in link_tags.items() if t in steerer.steerable_tags},
            alpha=1.0,
        )
        remember_tuned_alpha(finite_or(link_alpha, 1.0, 0.0, MAX_ALPHA))

    with st.expander("Recompute the map with other UMAP parameters"):
        st.caption(
            "The map stored with the model was fitted at training time. A new layout refits the same "
            "latent points; results are cached, so going back to a setting is instant."
        )
        c = st.columns(3)
        st.session_state.setdefault("map_nn", stored_layout[0])
        st.session_state.setdefault("map_md", stored_layout[1])
        n_neighbors = c[0].slider("n_neighbors", 5, 50, key="map_nn")
        min_dist = c[1].slider("min_dist", 0.0, 0.99, step=0.01, key="map_md")
        if c[2].button("Recompute", icon=":material/refresh:", key="map_recompute"):
            st.session_state.map_params = {model_id: (n_neighbors, min_dist)}
        if c[2].button("Stored map", key="map_stored"):
            st.session_state.map_params = {}
    params = (st.session_state.get("map_params") or {}).get(model_id)
    if params is not None:
        with st.status(
            f"Laying out the map (n_neighbors {params[0]}, min_dist {params[1]:g})…", expanded=False
        ) as status:
            latent_map, codes = cached_map(registry, model_id, params)
            status.update(label=f"Map recomputed: n_neighbors {params[0]}, min_dist {params[1]:g}", state="complete")
    else:
        latent_map, codes = cached_map(registry, model_id)

    # the person from the Recommend page (same data set: same item columns)
    person = current_person(full_fp)
    picks = person["picks"]
    tags = {t: w for t, w in person["tags"].items() if t in steerer.steerable_tags}
    tuned_alpha = min(max(float(person["alpha"]), 0.0), MAX_MAP_ALPHA)
    path_z = None
    if tags:
        path_z = steerer.trajectory(picks, tags, ALPHAS)
    elif picks:
        path_z = steerer.model.encode(steerer.history(picks))
    picked = steerer.history(picks).indices if picks else None
    path_xy = latent_map.place_path(steerer.model, path_z, exclude=picked) if path_z is not None else None
    layers = _layers(registry, model_id, params, show_users, show_items, noun)

    view = {"model": model_id, "users": str(int(show_users)), "items": str(int(show_items))}
    if params is not None:
        view |= {"nn": str(params[0]), "md": f"{params[1]:g}"}
    if picks:
        view["picks"] = ",".join(picks)
    if tags:
        view |= {"tags": format_tags_param(tags), "alpha": f"{tuned_alpha:.4g}"}
    st.query_params.from_dict(view)

    _map(layers, latent_map, steerer.model, picks, tags, path_z, path_xy, tuned_alpha, picked)

    if tags and path_xy is not None:
        moved = path_share(path_xy, latent_map.item_coords)
        if moved < STILL_PATH_SHARE:
            here = next(s.dataset_name for s in ready if s.model_id == model_id)
            others = [s.model_id for s in ready if s.model_id != model_id and s.dataset_name == here]
            why = (
                f"the {noun}s it ranks highest stay in the same part of the map"
                if latent_map.space == "direction"
                else f"in this model's space your tuned point is far from every stored {noun} and listener, so "
                "the nearest-neighbour placement (below) cannot follow it"
            )
            st.info(
                f"On this map your tuned path barely moves ({moved:.1%} of the map's size) although tuning "
                f"changes the Tuned list: {why}."
                + (f" The maps of {', '.join(others[:3])} show the path." if others else "")
            )
    if not picks and not tags:
        st.info("Pick songs and tags on the **Recommend** page to see your point and its tuned trajectory here.")
    elif not tags:
        st.caption("Your point (the star). Choose tags on the **Recommend** page to see where tuning takes it.")
    dim = loaded.manifest["info"]["map"]["latent_dim"]
    space = {
        "latent": f"the {dim}-d latent space",
        "pre-flow": f"the {dim}-d codes this model's scores come from, before its flow (your tuned points z are "
        "taken back through the flow to be placed)",
        "direction": f"the directions z / ‖z‖ of the {dim}-d latent space (this model's ranking depends only on "
        "the direction)",
    }[latent_map.space]
    st.caption(
        f"{len(latent_map.item_index):,} {noun}s and {len(latent_map.user_index):,} training listeners, "
        f"UMAP n_neighbors {latent_map.n_neighbors}, min_dist {latent_map.min_dist:g}, a map of {space}. "
        f"Colour: a {noun}'s first tag, a listener's most frequent tag."
    )
    st.markdown(PLACEMENT)
    if latent_map.space == "direction":
        st.markdown(DIRECTION_PLACEMENT)
