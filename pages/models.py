"""Models: the registry's contents, each model's manifest, and its integrity status."""

import streamlit as st

from recsys.app_support import (
    build_command,
    cached_statuses,
    current_registry,
    fix_hint,
    manifest_text_or_problem,
    registry_table,
    require_router,
)

require_router(__file__)

st.title("Models")
registry = current_registry()
st.caption(f"Registry: `{registry.root}` (set `RECSYS_MODELS_DIR` to use another)")
statuses = cached_statuses(registry)

if not statuses:
    st.info("No models yet. Build the default models (a few minutes on the synthetic data) with:")
    st.code(build_command(), language="bash")
    st.stop()

st.table(registry_table(statuses))

for s in statuses:
    if not s.ok:
        reason = "cannot be read" if s.manifest is None else "fails verification"
        st.error(f"**{s.model_id}** {reason} and will not be loaded: " + "; ".join(s.problems))
        st.markdown(fix_hint(s.model_id, registry))

st.header("Manifest")
model_id = st.selectbox("Model", [s.model_id for s in statuses], key="manifest_model")
manifest, problem = manifest_text_or_problem(registry, model_id)
if problem:
    st.error(problem)
else:
    log = manifest.pop("training_log", None) or []
    st.json(manifest, expanded=1)
    if log:
        st.subheader("Training log")
        st.dataframe(log, hide_index=True)
