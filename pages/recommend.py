"""Recommend: pick songs, choose a model, get a top-20 list (the full steering page comes later)."""

import streamlit as st

from recsys.app_support import (
    build_command,
    cached_model,
    cached_statuses,
    current_registry,
    item_labels,
    require_router,
)
from recsys.app_support import recommendations as top_list
from recsys.registry import RegistryError

require_router(__file__)

st.title("Recommend")
registry = current_registry()
ready = [s for s in cached_statuses(registry) if s.ok]
if not ready:
    st.info("No usable model in the registry. Build the default models with:")
    st.code(build_command(), language="bash")
    st.stop()

model_id = st.selectbox("Model", [s.model_id for s in ready], key="rec_model")
try:
    loaded = cached_model(registry, model_id)
except RegistryError as e:
    st.error(f"{e}")
    st.stop()

noun = loaded.manifest["dataset"].get("item_noun", "item")
labels = item_labels(loaded.items)
picks = st.multiselect(
    f"{noun.capitalize()}s you like (type to search title or artist)",
    options=list(labels),
    format_func=labels.__getitem__,
    key=f"picks-{loaded.manifest['dataset']['fingerprint'][:16]}",
    placeholder=f"Search {len(labels)} {noun}s…",
    filter_mode="contains",
    select_all=False,
)

if not picks:
    st.info(f"Pick a few {noun}s you like to get recommendations from **{model_id}**.")
    st.stop()

st.subheader(f"Top 20 for you from {model_id}")
st.table(top_list(loaded, picks, k=20), hide_index=False)
