"""Compare: registry models on the same split — accuracy, steering trade-offs, latency, list overlap."""

import plotly.express as px
import streamlit as st

from recsys.app_support import (
    INCOMPLETE_BIAS_LABELS,
    INCOMPLETE_SHARE,
    build_command,
    cached_statuses,
    cached_steerer,
    cached_sweep,
    comparison_table,
    current_person,
    current_registry,
    incomplete_tags_check,
    model_labeler,
    page_guard,
    pairwise_jaccard,
    require_router,
    steerable_statuses,
    steering_latency_ms,
    stop_page,
)
from recsys.registry import RegistryError
from recsys.steering import SteeringError
from recsys.steering.evaluation import incomplete_tags_figure, tradeoff_figure

require_router(__file__)

with page_guard("compare"):
    st.title("Compare")
    st.markdown(
        "Accuracy of each model on the **test users** of its strong-generalization split: their histories "
        "were hidden during training, 80 % of each is shown to the model and the other 20 % must be found. "
        "Rows are comparable when the data set and split seed match."
    )
    registry = current_registry()
    statuses = cached_statuses(registry)
    table = comparison_table(statuses)
    if table.empty:
        st.info("No usable model in the registry. Build the default models with:")
        st.code(build_command(), language="bash")
        stop_page("compare")

    datasets = list(dict.fromkeys(table["data set"]))
    if st.session_state.get("cmp_dataset") not in datasets and current_person()["dataset"] in datasets:
        st.session_state.cmp_dataset = current_person()["dataset"]  # the data set of the person's model
    dataset = st.selectbox("Data set", datasets, key="cmp_dataset") if len(datasets) > 1 else datasets[0]
    table = table[table["data set"] == dataset].reset_index(drop=True)

    st.header("Accuracy")
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.4f")
            for c in ("Recall@20", "Recall@50", "NDCG@100", "coverage@20", "next-item HR@10", "next-item NDCG@10")
        }
        | {
            "fit s": st.column_config.NumberColumn(format="%.1f"),
            "score ms/user": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    if "next-item HR@10" in table:
        st.caption(
            "Sequential models are scored on the temporal protocol (each test user's last item, ranked over "
            "every item): the next-item columns. The other columns use the strong-generalization split."
        )
    if (table["family"] == "mlp_flow").any():
        st.caption(
            "An MLP+flow model (mlp_flow) recommends with its MLP, trained exactly as the mlp family trains it: "
            "with the same settings and seed, its accuracy and its standard lists equal the MLP's. Its flow only "
            "gives steering and the latent-space map a second, Gaussian latent space, so its tuned lists and "
            "its map differ."
        )
    st.bar_chart(table.dropna(subset=["NDCG@100"]), x="model", y="NDCG@100", horizontal=True)

    steerable = [s for s in steerable_statuses(statuses) if s.dataset_name == dataset]
    st.header("Steering trade-off")
    st.markdown(
        "Each model's stored test listeners are steered toward a tag that is **not** their dominant one, "
        "for a range of α per mode: the x axis is the share of that tag in the top 20, the y axis the "
        "held-out NDCG@100 that remains. Curves further up and right steer at a lower cost."
    )
    label = model_labeler(statuses)
    chosen = st.multiselect(
        "Models",
        [s.model_id for s in steerable],
        default=[s.model_id for s in steerable][:4],
        key="cmp_models",
        format_func=label,
    )
    sweeps = {}
    if chosen:
        bar = st.progress(0.0, text="Sweeping α…")
        for i, model_id in enumerate(chosen):
            bar.progress(i / len(chosen), text=f"Sweeping α for {model_id}…")
            try:
                df = cached_sweep(registry, model_id)
            except (RegistryError, SteeringError) as e:
                st.warning(f"{model_id}: {e}")
                continue
            if df is None:
                st.caption(f"{model_id} was saved without test listeners; retrain it to see its curve.")
            else:
                sweeps[model_id] = df
        bar.empty()
    if sweeps:
        st.plotly_chart(tradeoff_figure(sweeps, title=""), width="stretch")

    # ---- where latent steering pays: incomplete tags ----------------------------------------------------
    st.header("What if tags were incomplete?")
    st.markdown(
        "Real catalogues miss tags, most of all on the long tail. Hide part of the item–tag entries from the "
        "steering machinery and steer each stored test listener toward the tag their **held-out** songs carry "
        f"more than their picks, every mode to the same visible share ({INCOMPLETE_SHARE:.0%} of the top 20). "
        "**Tag recall** counts the held-out songs of that tag found in the top 100 by the *complete* tags: a "
        "postfilter can only boost what is tagged, the latent space also knows what is not."
    )
    latent_models = [s.model_id for s in steerable if s.family not in ("popularity", "ease")]
    if latent_models:
        c1, c2, c3 = st.columns([2, 2, 1])
        inc_model = c1.selectbox("Model", latent_models, key="cmp_inc_model", format_func=label)
        hidden_pct = c2.slider("Hide this share of the tags", 0, 90, 50, 10, format="%d%%", key="cmp_inc_hidden")
        bias = c3.radio("Which", ["uniform", "popularity"], key="cmp_inc_bias", format_func=INCOMPLETE_BIAS_LABELS.get)
        with st.spinner("Steering the stored listeners with the visible tags…"):
            try:
                got = incomplete_tags_check(registry, inc_model, hidden_pct / 100, bias)
            except (RegistryError, SteeringError) as e:
                got = None
                st.warning(f"{inc_model}: {e}")
        if got is None:
            st.caption(f"{inc_model} has no stored test listeners with held-out songs of a steerable tag.")
        else:
            summary, how = got
            st.plotly_chart(incomplete_tags_figure(summary), width="stretch")
            st.dataframe(
                summary[["mode", "users", "share", "true share", "tag recall", "NDCG@100", "jaccard", "taste",
                         "Δ tag recall vs postfilter", "CI low", "CI high"]],
                hide_index=True,
                column_config={c: st.column_config.NumberColumn(format="%.3f") for c in
                               ("share", "true share", "tag recall", "NDCG@100", "jaccard", "taste",
                                "Δ tag recall vs postfilter", "CI low", "CI high")},
            )  # fmt: skip
            best = summary.loc[summary["tag recall"].idxmax(), "mode"]
            st.caption(
                f"Best tag recall here: **{best}**. Δ is paired per listener against the postfilter, with a "
                f"95 % bootstrap interval; {how}. Benchmarks over 300 users x 3 split seeds: "
                "benchmarks/results/steering/incomplete_tags.md."
            )

    # ---- the current person: latency and overlap ------------------------------------------------------
    st.header("For the current person")
    fp = steerable[0].manifest["dataset"]["fingerprint"] if steerable else ""
    person = current_person(fp)
    picks, tags = person["picks"], person["tags"]
    if not picks:
        st.info("Pick songs on the **Recommend** page to compare every model's list for you here.")
        stop_page("compare")
    same_items = [s for s in steerable if s.manifest["dataset"]["fingerprint"] == fp]
    lists, latency = {}, []
    for s in same_items:
        try:
            steerer = cached_steerer(registry, s.model_id)
            usable = {t: w for t, w in tags.items() if t in steerer.steerable_tags}
            lists[s.model_id] = steerer.recommend(picks, {}, 0.0, modes=("standard",)).top_item_ids("standard")
            latency.append({"model": s.model_id, "ms per Recommend call": steering_latency_ms(steerer, picks, usable)})
        except (RegistryError, SteeringError) as e:
            st.warning(f"{s.model_id}: {e}")
    st.caption(f"{len(picks)} picks" + (f", tags {', '.join(tags)}" if tags else ""))
    left, right = st.columns(2)
    with left:
        st.subheader("Latency")
        st.dataframe(latency, hide_index=True)
        st.caption("Median of 5 calls that compute every column of the Recommend page for this person (server time).")
    with right:
        st.subheader("Overlap of the top 20 (Jaccard)")
        jac = pairwise_jaccard(lists)
        fig = px.imshow(jac, text_auto=".2f", zmin=0, zmax=1, color_continuous_scale="Blues", aspect="auto")
        fig.update_layout(height=360, margin={"t": 10, "b": 10})
        st.plotly_chart(fig, width="stretch")
