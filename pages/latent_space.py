"""Latent space: the UMAP map of a model's latent space (coming in the next release)."""

import streamlit as st

from recsys.app_support import page_guard, require_router

require_router(__file__)

with page_guard("latent_space"):
    st.title("Latent space")
    st.info(
        "Coming in the next release: a UMAP map of a latent model's space with songs and listeners "
        "coloured by tag, the tag centroids marked, and your own point moving as you steer."
    )
