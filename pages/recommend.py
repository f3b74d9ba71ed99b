"""Recommend: pick songs and tags, set the share dial, see standard / postfiltered / tuned / tune+post next to SVD.

The dial is the share of each list that should carry the chosen tags; every mode solves its own
strength α for it (:mod:`recsys.steering.calibration`) and shows it, or says when it cannot get
there. α can still be set by hand under Advanced. The page only reads widgets, calls
:class:`recsys.steering.Steerer` and renders; the state (data set, model, picks, tags, weights,
share or α) mirrors the URL's query parameters, so a copied link reopens the same view.

The tags, the dial, the Advanced settings and the lists are one ``st.fragment``: a dial move reruns
that part alone, and each column is one HTML block (:mod:`recsys.list_view`), so the browser shows
the new lists within ~150 ms (``benchmarks/results/browser_latency.md``).
"""

import streamlit as st

from recsys.app_support import (
    COLUMNS,
    DEFAULT_SHARE_PCT,
    MAX_ALPHA,
    PERSON_KEY,
    build_command,
    cached_item_labels,
    cached_model,
    cached_statuses,
    cached_steerer,
    current_person,
    current_registry,
    demo_person,
    finite_or,
    format_tags_param,
    model_labeler,
    off_dial_text,
    page_guard,
    parse_tags_param,
    remember_person,
    remember_tuned_alpha,
    require_router,
    results_csv,
    sample_listener,
    steerable_statuses,
    stop_page,
    strength_text,
    svd_partner,
)
from recsys.list_view import column_html, rows_of
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
        stop_page("recommend")

    # ---- state from the URL, once per session ------------------------------------------------------
    qp = st.query_params
    if "rec_init" not in st.session_state:
        st.session_state.rec_init = True
        st.session_state.rec_dataset = qp.get("dataset")
        st.session_state.rec_model = qp.get("model")
        st.session_state.rec_url_picks = [p for p in (qp.get("picks") or "").split(",") if p]
        st.session_state.rec_url_tags = parse_tags_param(qp.get("tags"))
        st.session_state.rec_share = int(round(finite_or(qp.get("share"), DEFAULT_SHARE_PCT, 0, 100)))
        st.session_state.rec_alpha = finite_or(qp.get("alpha"), 1.0, 0.0, MAX_ALPHA)
        st.session_state.rec_manual = "alpha" in qp and "share" not in qp
        # a first visit with nothing in the link: show steering working on a real listener
        st.session_state.rec_fresh = not any(k in qp for k in ("picks", "tags", "share", "alpha"))

    # widget state is dropped while another page runs: put it back from the session's person
    person = st.session_state.get(PERSON_KEY)
    if person:
        for key, value in (
            ("rec_dataset", person["dataset"]),
            ("rec_model", person["model"]),
            ("rec_alpha", person["alpha_manual"]),
            ("rec_share", person["share_pct"]),
            ("rec_manual", person["manual"]),
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
        "Model",
        choices,
        key="rec_model",
        format_func=model_labeler(ready),
        help="Latent models can be tuned; all can be postfiltered.",
    )

    try:
        loaded = cached_model(registry, model_id)
        steerer = cached_steerer(registry, model_id)
    except (RegistryError, SteeringError) as e:
        st.error(f"{e}")
        stop_page("recommend")

    fp = loaded.manifest["dataset"]["fingerprint"]
    noun = loaded.manifest["dataset"].get("item_noun", "item")
    labels = cached_item_labels(registry, model_id)
    picks_key = f"rec_picks_{fp[:16]}"
    tags_key = f"rec_tags_{fp[:16]}"
    saved = current_person(fp) if person else None
    valid_tags = steerer.steerable_tags
    nothing_saved = not (saved and (saved["picks"] or saved["tags"]))  # for this data set
    if st.session_state.pop("rec_fresh", False) and picks_key not in st.session_state and nothing_saved:
        st.session_state.rec_url_picks, st.session_state.rec_url_tags = demo_person(loaded, steerer)
    if picks_key not in st.session_state:
        first = saved["picks"] if saved and saved["picks"] else st.session_state.pop("rec_url_picks", [])
        st.session_state[picks_key] = [p for p in first if p in labels]
    if tags_key not in st.session_state:
        wanted_tags = saved["tags"] if saved and saved["tags"] else st.session_state.get("rec_url_tags", {})
        st.session_state[tags_key] = [t for t in wanted_tags if t in valid_tags]
        for t in st.session_state[tags_key]:
            st.session_state[f"rec_w_{t}"] = finite_or(wanted_tags[t], 1.0, 0.1, 5.0)

    def _sample() -> None:
        st.session_state.rec_draws = st.session_state.get("rec_draws", 0) + 1  # draw 0 is the first visit's person
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

    # Everything below depends only on the tags, the dial and the Advanced settings: a fragment, so moving
    # the dial reruns this part alone (not app.py, the model selectors or the song picker with its
    # thousands of options), and each column is one HTML block (recsys.list_view) instead of a heading,
    # a metric, captions and a list.
    @st.fragment
    def steer_and_show() -> None:
        with page_guard("recommend"):
            _steer_and_show()

    def _steer_and_show() -> None:
        tag_cols = st.columns([3, 2])
        chosen = tag_cols[0].multiselect(
            "Tags you want more of", valid_tags, key=tags_key, placeholder="Choose tags…", select_all=False
        )
        with st.expander("Advanced: tag weights β, strength α by hand, list length"):
            weights = {}
            if chosen:
                wcols = st.columns(min(len(chosen), 4))
                for i, t in enumerate(chosen):
                    st.session_state.setdefault(f"rec_w_{t}", 1.0)  # (a link's weight is already there)
                    weights[t] = wcols[i % len(wcols)].slider(f"β {t}", 0.1, 5.0, step=0.1, key=f"rec_w_{t}")
            else:
                st.caption("Choose tags to weigh them.")
            manual = st.toggle(
                "Set the strength α by hand instead of the share",
                key="rec_manual",
                help="α means different things per mode and model (a postfilter needs far more than tuning for "
                "the same share); the share dial solves each mode's α for you.",
            )
            alpha = st.slider(
                "Strength α (every mode)",
                0.0,
                MAX_ALPHA,
                step=0.05,
                key="rec_alpha",
                disabled=not manual,
                help="Tuning moves your latent point by α toward the tags; postfiltering boosts tagged "
                f"{noun}s by (1 + β)^α; tune+post takes the model's small latent step, then postfilters with α.",
            )
            k = st.slider("List length", 5, 50, 20, 5, key="rec_k")
        share_pct = tag_cols[1].slider(
            "Share of the list with your tags",
            min_value=0,
            max_value=100,
            step=5,
            format="%d%%",
            key="rec_share",
            disabled=manual,
            help="Every column is steered until this share of its list carries a chosen tag; each mode finds its "
            "own strength α (shown above its list). A column says so when it cannot get there.",
        )

        remember_person(
            dataset=dataset,
            model_id=model_id,
            fingerprint=fp,
            picks=picks,
            tags=weights,
            alpha=float(alpha),
            share_pct=int(share_pct),
            manual=bool(manual),
        )
        params = {"dataset": dataset, "model": model_id, "picks": ",".join(picks), "tags": format_tags_param(weights)}
        params |= {"alpha": f"{alpha:g}"} if manual else {"share": str(int(share_pct))}
        st.query_params.from_dict(params)

        share = None if manual else share_pct / 100.0
        try:
            result = steerer.recommend(picks, weights, float(alpha), share=share, k=int(k))
        except SteeringError as e:
            st.error(f"{e}")
            stop_page("recommend")
        if "tune" in result.lists:  # the Latent space page marks the tuned point the dial chose
            remember_tuned_alpha(result.lists["tune"].alpha)

        lists = {
            m: (lst.items, lst.label, lst.tag_share, lst.note, strength_text(lst), lst.status)
            for m, lst in result.lists.items()
        }
        svd_id = svd_partner(statuses, fp)
        if svd_id and svd_id != model_id:
            try:
                svd_steerer = cached_steerer(registry, svd_id)
                mode = "postfilter" if weights else "standard"
                s = svd_steerer.recommend(picks, weights, float(alpha), share=share, k=int(k), modes=(mode,))
                s = s.lists[mode]
                label = {"standard": "standard", "postfilter": "postfiltered"}[mode]
                lists["svd"] = (s.items, f"{svd_id}, {label}", s.tag_share, s.note, strength_text(s), s.status)
            except (RegistryError, SteeringError) as e:
                lists["svd"] = (None, "SVD baseline", float("nan"), f"unavailable: {e}", "", "")
        elif model_id == svd_id:
            pass
        else:
            lists["svd"] = (None, "SVD baseline", float("nan"), "no SVD model trained on this data set", "", "")

        if result.cold_start == "popularity":
            st.info(
                f"Nothing picked and no tags: every column shows the most popular {noun}s. Pick a few {noun}s you like."
            )
        elif result.cold_start == "tags":
            st.info(f"No {noun}s picked: the tuned columns start from the average listener and move toward your tags.")
        elif weights and "tune" in result.lists and result.top_item_ids("tune") == result.top_item_ids("standard"):
            st.info(
                f"Tuning moves you from the tag mix of your picks toward the chosen tags; your {noun}s already "
                "carry that mix, so the tuned list equals the standard one. Choose a tag your picks lack to see it "
                "move."
            )

        chosen_set = frozenset(weights)
        cols = st.columns(len(COLUMNS))
        for i, (col, (mode, title)) in enumerate(zip(cols, COLUMNS.items(), strict=True)):
            first = i == 0  # carries the blocks' styles (recsys.list_view.STYLE)
            if mode in result.unavailable:
                why = f"Not available for {model_id}: {result.unavailable[mode]}."
                block = column_html(title, mode, captions=(why,), style=first)
            elif mode not in lists:
                why = "This model is the SVD baseline: see the Standard column."
                block = column_html(title, mode, captions=(why,), style=first)
            elif lists[mode][0] is None:
                block = column_html(title, mode, captions=(lists[mode][3],), style=first)
            else:
                df, label, got, note, strength, status = lists[mode]
                captions = []
                if weights and mode != "standard":
                    captions.append(("⚠ " if status == "ceiling" else "") + strength)
                if label.lower() not in ("standard", "postfiltered", "tuned", "tune+post"):
                    captions.append(label)
                if note:
                    captions.append(note)
                block = column_html(
                    title,
                    mode,
                    captions=tuple(captions),
                    share=float(got),
                    delta=off_dial_text(got, share, int(k)) if mode != "standard" else None,
                    status=status,
                    rows=rows_of(df),
                    chosen=chosen_set,
                    style=first,
                )
            col.html(block)

        st.download_button(
            "Download the lists (CSV)",
            lambda: results_csv({COLUMNS[m]: v[0] for m, v in lists.items() if v[0] is not None}),  # built on click
            file_name=f"recommendations_{model_id}.csv",
            mime="text/csv",
            icon=":material/download:",
        )

    steer_and_show()
