"""Home: what this is, what each steering mode does, what is loaded, where to start."""

import streamlit as st

from recsys.app_support import (
    STEERING_MODES,
    build_command,
    cached_statuses,
    current_registry,
    datasets_loaded,
    model_note,
    page_guard,
    registry_label,
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
        "One dial sets them all: the share of the list that should carry your tags. Each mode finds its own "
        "strength α for it (α means different things per mode and model) and shows it; a mode that cannot get "
        "there says so. α can still be set by hand under Advanced. Models without a latent space (Popularity, "
        "EASE) offer Standard and Postfilter."
    )

    st.header("What is loaded")
    registry = current_registry()
    statuses = cached_statuses(registry)
    if not statuses:
        st.warning(f"The model registry at `{registry_label(registry)}` is empty. Build the default models with:")
        st.code(build_command(), language="bash")
    else:
        data = datasets_loaded(statuses)
        if data.empty:
            st.error("No model in the registry passes verification: see the Models page.")
        else:
            st.table(data.set_index("data set"))
        ready = [s for s in statuses if s.ok]
        st.markdown(
            f"**{len(ready)} model(s) ready:** "
            + ", ".join(
                f"`{s.model_id}` ({s.family}" + (f": {model_note(s)})" if model_note(s) else ")") for s in ready
            )
        )
        bad = [s.model_id for s in statuses if not s.ok]
        if bad:
            st.error(f"{len(bad)} model(s) fail verification and are not used: {', '.join(bad)}. See the Models page.")

    st.header("Where to start")
    st.markdown(
        "Open **Recommend**: it starts with a real held-out listener and a tag they lack, the dial at 40 %. "
        "Move the dial, press *Sample a listener* or type a few song titles: the five columns change side by "
        "side. Then look at **Latent space** to see where tuning took you, and at **Compare** for where the "
        "latent modes pay (incomplete tags)."
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
        "pages/your_data.py",
        label="Your data: upload two CSV files, train models on them, steer them",
        icon=":material/upload_file:",
    )
    st.page_link(
        "pages/models.py",
        label="Models: registry, integrity, training curves, train one",
        icon=":material/inventory_2:",
    )
