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
    finite_or,
    format_tags_param,
    mappable_statuses,
    model_labeler,
    page_guard,
    parse_tags_param,
    remember_person,
    remember_tuned_alpha,
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
        st.stop()
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

    view = {"model": model_id, "users": str(int(show_users)), "items": str(int(show_items))}
    if params is not None:
        view |= {"nn": str(params[0]), "md": f"{params[1]:g}"}
    if picks:
        view["picks"] = ",".join(picks)
    if tags:
        view |= {"tags": format_tags_param(tags), "alpha": f"{alpha:.4g}"}
    st.query_params.from_dict(view)

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
