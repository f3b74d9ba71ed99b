"""Models: the registry's contents, each model's manifest and training curves, and a quick training run."""

import streamlit as st

from recsys.app_support import (
    QUICK_TRAIN,
    build_command,
    cached_statuses,
    current_registry,
    fix_hint,
    manifest_text_or_problem,
    model_labeler,
    page_guard,
    registry_label,
    registry_table,
    require_router,
    train_small_model,
    training_curves,
)

require_router(__file__)

with page_guard("models"):
    st.title("Models")
    registry = current_registry()
    st.caption(f"Registry: `{registry_label(registry)}` (set `RECSYS_MODELS_DIR` to use another)")
    statuses = cached_statuses(registry)

    if not statuses:
        st.info("No models yet. Build the default models (about a minute on the synthetic data) with:")
        st.code(build_command(), language="bash")
    else:
        st.table(registry_table(statuses))
        for s in statuses:
            if not s.ok:
                reason = "cannot be read" if s.manifest is None else "fails verification"
                st.error(f"**{s.model_id}** {reason} and will not be loaded: " + "; ".join(s.problems))
                st.markdown(fix_hint(s.model_id, registry))

        st.header("Manifest")
        model_id = st.selectbox(
            "Model", [s.model_id for s in statuses], key="manifest_model", format_func=model_labeler(statuses)
        )
        manifest, problem = manifest_text_or_problem(registry, model_id)
        if problem:
            st.error(problem)
        else:
            fig = training_curves(manifest)
            if fig is not None:
                st.subheader("Training curves")
                st.plotly_chart(fig, width="stretch")
            log = manifest.pop("training_log", None) or []
            st.json(manifest, expanded=1)
            if log:
                st.subheader("Training log")
                st.dataframe(log, hide_index=True)

    st.header("Train a small model")
    st.markdown(
        "Fits a model on the embedded synthetic catalogue with a short schedule, scores it on held-out "
        "users and registers it as `FAMILY-synthetic-small`. Takes seconds to a minute. To train on your own "
        "listening data, upload it on the **Your data** page."
    )
    with st.form("train_form"):
        cols = st.columns(2)
        family = cols[0].selectbox("Family", list(QUICK_TRAIN), key="train_family")
        epochs = cols[1].slider("Epochs (neural families)", 2, 40, 10, key="train_epochs")
        go = st.form_submit_button("Train", icon=":material/model_training:")
    if go:
        bar = st.progress(0.0, text=f"Training {family}…")
        try:
            model_id, metrics = train_small_model(registry, family, epochs, lambda f, text: bar.progress(f, text=text))
        except Exception as e:  # shown, never a traceback: training is the user's action
            bar.empty()
            st.error(f"Training {family} failed: {type(e).__name__}: {e}")
        else:
            bar.progress(1.0, text="done")
            st.cache_data.clear()
            st.success(
                f"Registered **{model_id}**: NDCG@100 {metrics['ndcg@100']:.4f}, Recall@20 {metrics['recall@20']:.4f}."
            )
