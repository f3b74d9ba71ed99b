"""Home: what this is, what each steering mode does, what is loaded, where to start."""

import streamlit as st

from recsys.app_support import (
    STEERING_MODES,
    build_command,
    cached_statuses,
    current_registry,
    datasets_loaded,
    page_guard,
    require_router,
)

require_router(__file__)

with page_guard("home"):
    st.title("Steerable recommender")
    st.markdown(
        "Pick songs you like and tags you want more of. The app shows, side by side, what a neural "
        "recommender suggests **as is**, **postfiltered** toward your tags and **tuned** in its latent "
        "space, next to an SVD baseline; you can watch your own point move through a map of that latent "
        "space as you turn the steering up, and compare the models on held-out listeners."
    )

    st.header("Four ways to steer")
    for col, (mode, text) in zip(st.columns(len(STEERING_MODES)), STEERING_MODES.items(), strict=True):
        with col:
            st.subheader(mode)
            st.write(text)
    st.caption(
        "α is the steering strength (0 = the standard list in every column); under Advanced on the Recommend "
        "page it can instead be solved from a target tag share. Models without a latent space (Popularity, "
        "EASE) offer Standard and Postfilter."
    )

    st.header("What is loaded")
    registry = current_registry()
    statuses = cached_statuses(registry)
    if not statuses:
        st.warning(f"The model registry at `{registry.root}` is empty. Build the default models with:")
        st.code(build_command(), language="bash")
    else:
        data = datasets_loaded(statuses)
        if data.empty:
            st.error("No model in the registry passes verification: see the Models page.")
        else:
            st.table(data.set_index("data set"))
        ready = [s for s in statuses if s.ok]
        st.markdown(f"**{len(ready)} model(s) ready:** " + ", ".join(f"`{s.model_id}` ({s.family})" for s in ready))
        bad = [s.model_id for s in statuses if not s.ok]
        if bad:
            st.error(f"{len(bad)} model(s) fail verification and are not used: {', '.join(bad)}. See the Models page.")

    st.header("Where to start")
    st.markdown(
        "Open **Recommend**, press *Sample a listener* (or type a few song titles), choose a tag you want "
        "more of and move α: the five columns change side by side. Then look at **Latent space** to see "
        "where that took you."
    )
    st.page_link(
        "pages/recommend.py", label="Recommend: picks and tags in, five lists out", icon=":material/queue_music:"
    )
    st.page_link(
        "pages/latent_space.py",
        label="Latent space: the UMAP map and your tuned trajectory",
        icon=":material/scatter_plot:",
    )
    st.page_link(
        "pages/compare.py",
        label="Compare: accuracy, steering trade-offs, latency, overlap",
        icon=":material/leaderboard:",
    )
    st.page_link(
        "pages/models.py",
        label="Models: registry, integrity, training curves, train one",
        icon=":material/inventory_2:",
    )
