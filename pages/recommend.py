"""Recommend: pick songs and tags, move α, see standard / postfiltered / tuned / tune+post next to SVD.

The page only reads widgets, calls :class:`recsys.steering.Steerer` (one vectorised call per model)
and renders; the state (data set, model, picks, tags, weights, α) mirrors the URL's query
parameters, so a copied link reopens the same view.
"""

import html

import streamlit as st

from recsys.app_support import (
    COLUMNS,
    PERSON_KEY,
    build_command,
    cached_item_labels,
    cached_model,
    cached_statuses,
    cached_steerer,
    current_person,
    current_registry,
    format_tags_param,
    page_guard,
    parse_tags_param,
    remember_person,
    require_router,
    results_csv,
    sample_listener,
    steerable_statuses,
    svd_partner,
)
from recsys.registry import RegistryError
from recsys.steering import SteeringError

require_router(__file__)

with page_guard("recommend"):
    st.title("Recommend")
    registry = current_registry()
    statuses = cached_statuses(registry)
    ready = steerable_statuses(statuses)
    if not ready:
        if any(s.ok for s in statuses):
            st.warning("The models in the registry were saved without steering data. Rebuild them with:")
            st.code(build_command() + " --force", language="bash")
        else:
            st.info("No usable model in the registry. Build the default models with:")
            st.code(build_command(), language="bash")
        st.stop()

    # ---- state from the URL, once per session ------------------------------------------------------
    qp = st.query_params
    if "rec_init" not in st.session_state:
        st.session_state.rec_init = True
        st.session_state.rec_dataset = qp.get("dataset")
        st.session_state.rec_model = qp.get("model")
        st.session_state.rec_url_picks = [p for p in (qp.get("picks") or "").split(",") if p]
        st.session_state.rec_url_tags = parse_tags_param(qp.get("tags"))
        try:
            st.session_state.rec_alpha = min(max(float(qp.get("alpha", 1.0)), 0.0), 4.0)
        except ValueError:
            st.session_state.rec_alpha = 1.0

    # widget state is dropped while another page runs: put it back from the session's person
    person = st.session_state.get(PERSON_KEY)
    if person:
        for key, value in (
            ("rec_dataset", person["dataset"]),
            ("rec_model", person["model"]),
            ("rec_alpha", person["alpha"]),
        ):
            st.session_state.setdefault(key, value)

    datasets = sorted({s.dataset_name for s in ready})
    if st.session_state.get("rec_dataset") not in datasets:
        st.session_state.rec_dataset = datasets[0] if "synthetic" not in datasets else "synthetic"
    top = st.columns([1, 2, 1])
    dataset = top[0].selectbox("Data set", datasets, key="rec_dataset")
    in_dataset = [s for s in ready if s.dataset_name == dataset]
    neural = [s for s in in_dataset if s.family not in ("svd", "popularity", "ease")]
    choices = [s.model_id for s in (neural or in_dataset)] + [
        s.model_id for s in in_dataset if s not in (neural or in_dataset)
    ]
    if st.session_state.get("rec_model") not in choices:
        st.session_state.rec_model = choices[0]
    model_id = top[1].selectbox(
        "Model", choices, key="rec_model", help="Latent models can be tuned; all can be postfiltered."
    )

    try:
        loaded = cached_model(registry, model_id)
        steerer = cached_steerer(registry, model_id)
    except (RegistryError, SteeringError) as e:
        st.error(f"{e}")
        st.stop()

    fp = loaded.manifest["dataset"]["fingerprint"]
    noun = loaded.manifest["dataset"].get("item_noun", "item")
    labels = cached_item_labels(registry, model_id)
    picks_key = f"rec_picks_{fp[:16]}"
    tags_key = f"rec_tags_{fp[:16]}"
    saved = current_person(fp) if person else None
    if picks_key not in st.session_state:
        first = saved["picks"] if saved and saved["picks"] else st.session_state.pop("rec_url_picks", [])
        st.session_state[picks_key] = [p for p in first if p in labels]
    valid_tags = steerer.steerable_tags
    if tags_key not in st.session_state:
        wanted_tags = saved["tags"] if saved and saved["tags"] else st.session_state.get("rec_url_tags", {})
        st.session_state[tags_key] = [t for t in wanted_tags if t in valid_tags]
        for t in st.session_state[tags_key]:
            st.session_state[f"rec_w_{t}"] = min(max(float(wanted_tags[t]), 0.1), 5.0)

    def _sample() -> None:
        st.session_state.rec_draws = st.session_state.get("rec_draws", -1) + 1
        st.session_state[picks_key] = sample_listener(loaded, st.session_state.rec_draws)

    with top[2]:
        st.write("")
        st.button(
            "Sample a listener",
            on_click=_sample,
            icon=":material/shuffle:",
            help=f"Fill the picks with the {noun}s of a real held-out listener (not used in training).",
            disabled=not sample_listener(loaded, 0),
        )

    # The chosen songs first: Streamlit maps every chosen label back to its option with list.index on
    # each rerun, O(picks x songs) (a 200-song listener at 20k songs: ~20 ms). The dropdown hides
    # chosen songs, so the order people see is unchanged.
    chosen_ids = [p for p in st.session_state.get(picks_key, []) if p in labels]
    picked_set = set(chosen_ids)
    picks = st.multiselect(
        f"{noun.capitalize()}s you like (type to search title or artist)",
        options=chosen_ids + [i for i in labels if i not in picked_set],
        format_func=labels.__getitem__,
        key=picks_key,
        placeholder=f"Search {len(labels):,} {noun}s…",
        filter_mode="contains",
        select_all=False,
    )
    if steerer.sequential and picks:
        st.caption(
            f"**{model_id} reads your picks as a session, in the order you picked them** (the last one is the "
            "most recent; remove and re-add a pick to move it to the end): "
            + " → ".join(f"{i}. {labels[p]}" for i, p in enumerate(picks, start=1))
        )
    tag_cols = st.columns([3, 2])
    chosen = tag_cols[0].multiselect(
        "Tags you want more of", valid_tags, key=tags_key, placeholder="Choose tags…", select_all=False
    )
    alpha = tag_cols[1].slider(
        "Steering strength α",
        min_value=0.0,
        max_value=4.0,
        step=0.05,
        key="rec_alpha",
        help="0 = no steering (every column equals the standard list). Tuning moves your latent point by α "
        "toward the tags; postfiltering boosts tagged songs by (1 + β)^α.",
    )
    with st.expander("Advanced: tag weights β and tune+post factor"):
        weights = {}
        if chosen:
            wcols = st.columns(min(len(chosen), 4))
            for i, t in enumerate(chosen):
                weights[t] = wcols[i % len(wcols)].slider(f"β {t}", 0.1, 5.0, 1.0, 0.1, key=f"rec_w_{t}")
        else:
            st.caption("Choose tags to weigh them.")
        post_factor = st.slider("tune+post postfilters with α × factor", 0.0, 4.0, 1.0, 0.1, key="rec_factor")
        calibrate = st.toggle(
            "Set α from a target tag share instead",
            key="rec_calibrate",
            help="α means different things per mode and model; a share does not. The smallest α whose "
            "tuned list (postfiltered list for non-latent models) reaches this share is used for every column.",
        )
        target_share = st.slider("Target tag share", 0.05, 1.0, 0.5, 0.05, key="rec_target", disabled=not calibrate)
        k = st.slider("List length", 5, 50, 20, 5, key="rec_k")

    remember_person(dataset=dataset, model_id=model_id, fingerprint=fp, picks=picks, tags=weights, alpha=alpha)
    st.query_params.from_dict(
        {
            "dataset": dataset,
            "model": model_id,
            "picks": ",".join(picks),
            "tags": format_tags_param(weights),
            "alpha": f"{alpha:g}",
        }
    )

    if calibrate and weights:
        cal_mode = "tune" if steerer.latent else "postfilter"
        try:
            found = steerer.alpha_for_share(picks, weights, float(target_share), mode=cal_mode, k=int(k))
        except SteeringError as e:
            st.error(f"{e}")
            st.stop()
        if found is None:
            st.warning(
                f"Even α = 8 does not reach a tag share of {target_share:.0%} in the {cal_mode} list; using α = 8."
            )
            found = 8.0
        alpha = found
        st.caption(f"Calibrated: α = {alpha:g} reaches a tag share of {target_share:.0%} in the {cal_mode} list.")
    try:
        result = steerer.recommend(picks, weights, float(alpha), k=int(k), post_factor=float(post_factor))
    except SteeringError as e:
        st.error(f"{e}")
        st.stop()

    lists = {m: (lst.items, lst.label, lst.tag_share, lst.note) for m, lst in result.lists.items()}
    svd_id = svd_partner(statuses, fp)
    if svd_id and svd_id != model_id:
        try:
            svd_steerer = cached_steerer(registry, svd_id)
            mode = "tune" if (weights and svd_steerer.latent) else "standard"
            s = svd_steerer.recommend(picks, weights, float(alpha), k=int(k), modes=(mode,)).lists[mode]
            label = {"standard": "standard", "tune": "tuned by the same α"}.get(mode, mode)
            lists["svd"] = (s.items, f"{svd_id}, {label}", s.tag_share, s.note)
        except (RegistryError, SteeringError) as e:
            lists["svd"] = (None, "SVD baseline", float("nan"), f"unavailable: {e}")
    elif model_id == svd_id:
        pass
    else:
        lists["svd"] = (None, "SVD baseline", float("nan"), "no SVD model trained on this data set")

    if result.cold_start == "popularity":
        st.info(
            f"Nothing picked and no tags: every column shows the most popular {noun}s. Pick a few {noun}s you like."
        )
    elif result.cold_start == "tags":
        st.info(f"No {noun}s picked: the tuned columns start from the average listener and move toward your tags.")
    elif (
        weights
        and alpha > 0
        and "tune" in result.lists
        and result.top_item_ids("tune") == result.top_item_ids("standard")
    ):
        st.info(
            f"Tuning moves you from the tag mix of your picks toward the chosen tags; your {noun}s already carry "
            "that mix, so the tuned list equals the standard one. Choose a tag your picks lack to see it move."
        )

    chosen_set = set(weights)

    def render(df, tags_on: set[str]) -> str:
        rows = []
        for r in df.itertuples(index=False):
            tag_txt = ", ".join(f"<b>{html.escape(t)}</b>" if t in tags_on else html.escape(t) for t in r.tags[:4])
            style = "background:#fff3cd;" if r.on_target else ""
            rows.append(
                f"<li style='{style}padding:2px 4px;border-radius:4px;margin-bottom:2px'>"
                f"<span style='font-weight:600'>{html.escape(str(r.title))}</span><br>"
                f"<span style='color:#555'>{html.escape(str(r.artist))}</span><br>"
                f"<span style='font-size:0.8em;color:#777'>{tag_txt}</span></li>"
            )
        return "<ol style='padding-left:1.4em;margin:0'>" + "".join(rows) + "</ol>"

    cols = st.columns(len(COLUMNS))
    for col, (mode, title) in zip(cols, COLUMNS.items(), strict=True):
        with col:
            st.subheader(title)
            if mode in result.unavailable:
                st.caption(f"Not available for {model_id}: {result.unavailable[mode]}.")
                continue
            if mode not in lists:
                st.caption("This model is the SVD baseline: see the Standard column.")
                continue
            df, label, share, note = lists[mode]
            if df is None:
                st.caption(note)
                continue
            st.metric(
                "tag share", "–" if share != share else f"{share:.0%}", help="share of the list carrying a chosen tag"
            )
            if label.lower() not in ("standard", "postfiltered", "tuned", "tune+post"):
                st.caption(label)
            if note:
                st.caption(note)
            st.html(render(df, chosen_set))

    st.download_button(
        "Download the lists (CSV)",
        lambda: results_csv({COLUMNS[m]: v[0] for m, v in lists.items() if v[0] is not None}),  # built on click
        file_name=f"recommendations_{model_id}.csv",
        mime="text/csv",
        icon=":material/download:",
    )
