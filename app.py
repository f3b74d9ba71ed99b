"""Steerable recommender: the Streamlit entry point (frame and router).

Run it with ``scripts/demo`` (builds the default models on first run) or
``streamlit run app.py``. Pages live in ``pages/``; they call :mod:`recsys.app_support` and hold no
recommender logic.
"""

import streamlit as st

from recsys.app_support import cached_statuses, current_registry, mark_routed, page_guard, registry_label

st.set_page_config(page_title="Steerable recommender", page_icon=":material/headphones:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/recommend.py", title="Recommend", icon=":material/queue_music:"),
    st.Page("pages/latent_space.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
    st.Page("pages/your_data.py", title="Your data", icon=":material/upload_file:"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
]
page = st.navigation(PAGES)

# the router and the sidebar read the registry on every rerun: an error there becomes a message
# (page_guard), and the page below still runs
with page_guard("app", marker=False):
    mark_routed()
    with st.sidebar:
        registry = current_registry()
        statuses = cached_statuses(registry)
        n_bad = sum(not s.ok for s in statuses)
        st.caption(f"Registry: `{registry_label(registry)}`")
        st.caption(f"{len(statuses) - n_bad} model(s) ready" + (f", {n_bad} failing verification" if n_bad else ""))

with page_guard("page", marker=False):
    page.run()  # each page also guards its own body (recsys.app_support.page_guard)
