"""Compare: the stored held-out metrics of every intact model (same data set and split seed side by side)."""

import streamlit as st

from recsys.app_support import build_command, cached_statuses, comparison_table, current_registry, require_router

require_router(__file__)

st.title("Compare")
st.markdown(
    "Accuracy of each model on the **test users** of its strong-generalization split: their histories "
    "were hidden during training, 80 % of each is shown to the model and the other 20 % must be found. "
    "Rows are comparable when the data set and split seed match."
)
statuses = cached_statuses(current_registry())
table = comparison_table(statuses)
if table.empty:
    st.info("No usable model in the registry. Build the default models with:")
    st.code(build_command(), language="bash")
    st.stop()

st.dataframe(
    table,
    hide_index=True,
    column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in ("Recall@20", "Recall@50", "NDCG@100", "coverage@20")
    }
    | {
        "fit s": st.column_config.NumberColumn(format="%.1f"),
        "score ms/user": st.column_config.NumberColumn(format="%.3f"),
    },
)

st.bar_chart(table, x="model", y="NDCG@100", horizontal=True)
st.caption("List overlap, steering trade-off curves and latency under load come in the next release.")
