"""Latent space: the model's UMAP map with songs, listeners, tag centroids and your tuned trajectory."""

import numpy as np
import streamlit as st

from recsys.app_support import (
    build_command,
    cached_map,
    cached_model,
    cached_statuses,
    cached_steerer,
    current_person,
    current_registry,
    mappable_statuses,
    page_guard,
    require_router,
)
from recsys.map_view import map_figure, map_points
from recsys.registry import RegistryError
from recsys.steering import SteeringError

require_router(__file__)

PLACEMENT = (
    "**How points that were not fitted are placed.** UMAP's fitted object is not stored (it would be a "
    "pickle), so your point, your tuned point at every α and the tag centroids are placed by a fixed "
    "rule: find the 10 stored songs and listeners nearest to the point in the latent space and put it at "
    "the mean of their map positions, weighted by inverse latent distance. A stored point lands exactly "
    "where it is; a point moving through the latent space moves smoothly across the map."
)

with page_guard("latent_space"):
    st.title("Latent space")
    registry = current_registry()
    statuses = cached_statuses(registry)
    ready = mappable_statuses(statuses)
    if not ready:
        st.info("No latent model with a stored map in the registry. Build the default models with:")
        st.code(build_command() + " --force", language="bash")
        st.stop()

    wanted = current_person()["model"]
    ids = [s.model_id for s in ready]
    if st.session_state.get("map_model") not in ids:
        st.session_state.map_model = wanted if wanted in ids else ids[0]
    top = st.columns([2, 1, 1])
    model_id = top[0].selectbox("Model", ids, key="map_model")
    show_users = top[1].toggle("Training listeners", value=True, key="map_users")
    show_items = top[2].toggle("Songs", value=True, key="map_items")

    try:
        loaded = cached_model(registry, model_id)
        steerer = cached_steerer(registry, model_id)
    except (RegistryError, SteeringError) as e:
        st.error(f"{e}")
        st.stop()
    noun = loaded.manifest["dataset"].get("item_noun", "item")

    with st.expander("Recompute the map with other UMAP parameters"):
        st.caption(
            "The map stored with the model was fitted at training time. A new layout refits the same "
            "latent points; results are cached, so going back to a setting is instant."
        )
        c = st.columns(3)
        n_neighbors = c[0].slider(
            "n_neighbors", 5, 50, int(loaded.manifest["info"]["map"]["umap"]["n_neighbors"]), key="map_nn"
        )
        min_dist = c[1].slider(
            "min_dist", 0.0, 0.99, float(loaded.manifest["info"]["map"]["umap"]["min_dist"]), 0.01, key="map_md"
        )
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
    fp = loaded.manifest["dataset"]["fingerprint"][:16]
    person = current_person(fp)
    picks = person["picks"]
    tags = {t: w for t, w in person["tags"].items() if t in steerer.steerable_tags}
    alpha = float(person["alpha"])
    alphas = np.round(np.linspace(0.0, 4.0, 17), 2)
    trajectory = None
    if tags:
        trajectory = steerer.trajectory(picks, tags, alphas)
    elif picks:
        trajectory = steerer.model.encode(steerer.history(picks))

    points = map_points(latent_map, steerer, codes if show_users else None, item_noun=noun)
    if not show_items:
        points = points[points["kind"] != noun]
    fig = map_figure(
        points,
        latent_map,
        list(steerer.centroids.tags) if steerer.centroids is not None else [],
        trajectory=trajectory,
        alphas=alphas if tags else [0.0],
        current_alpha=alpha if tags else None,
        item_noun=noun,
    )
    st.plotly_chart(fig, width="stretch", key="map_chart")

    if not picks and not tags:
        st.info("Pick songs and tags on the **Recommend** page to see your point and its tuned trajectory here.")
    elif not tags:
        st.caption("Your point (the star). Choose tags on the **Recommend** page to see where tuning takes it.")
    else:
        start = "the average listener" if not picks else "your point"
        st.caption(
            f"The line is the tuned trajectory from {start} (white star, α = 0) toward "
            f"{', '.join(tags)} for α from 0 to 4; the red star is where the Tuned column on the Recommend page "
            f"stands (α = {alpha:.2f}, solved from the share dial unless α is set by hand)."
        )
    info = loaded.manifest["info"]["map"]
    st.caption(
        f"{len(latent_map.item_index):,} {noun}s and {len(latent_map.user_index):,} training listeners, "
        f"UMAP n_neighbors {latent_map.n_neighbors}, min_dist {latent_map.min_dist:g} "
        f"({info['latent_dim']}-d latent space). Colour: a {noun}'s first tag, a listener's most frequent tag."
    )
    st.markdown(PLACEMENT)
