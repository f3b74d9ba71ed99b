"""Your data: upload two CSV files, train models on them in a background job, then steer them.

The import is the CLI's (``python -m recsys data import``: same checks, same messages, which name
the person's own file and line); the training job is :mod:`recsys.jobs` (a detached process that
survives page changes); uploads and models stay under the data and registry directories.
"""

import streamlit as st

from recsys.app_support import (
    cached_statuses,
    current_registry,
    data_dir_label,
    job_models_table,
    open_model,
    page_guard,
    registry_label,
    require_router,
    upload_error_text,
)
from recsys.data import CsvImportError, CsvSourceError, csv_dataset_name, data_home, imported_datasets
from recsys.jobs import (
    DEFAULT_JOB_FAMILIES,
    FINISHED,
    JOB_FAMILIES,
    JOB_FAMILY_NOTES,
    JobError,
    active_job,
    cancel_job,
    job_status,
    jobs_root,
    list_jobs,
    log_tail,
    progress_fraction,
    start_job,
)
from recsys.uploads import UPLOAD_TYPES, UploadedCsv, UploadError, import_upload, max_upload_mb

require_router(__file__)

FORMAT = """
**Interactions** (one row per listen, play count or rating): columns `user`, `item`, and optionally
`weight` (a number ≥ 0, default 1) and `timestamp` (unix seconds).

**Items** (one row per song): columns `item`, `title`, and optionally `artist` and `tags`
(separated by `|`, most relevant first: `rock|indie rock`). The tags are what you steer towards.

Both files UTF-8, comma-separated, with a header line. Every problem is reported with its file and
line. The same files work on the command line: `python -m recsys data import INTERACTIONS.csv ITEMS.csv`.
"""

with page_guard("your_data"):
    st.title("Your data")
    st.markdown(
        "Bring your own listening data: upload two CSV files, train models on them here, then steer them "
        "on the **Recommend** page and see them on the **Latent space** map."
    )
    registry = current_registry()
    data_dir = data_home()
    limit_mb = max_upload_mb()

    # ---- 1. upload ------------------------------------------------------------------------------
    st.header("1. Upload")
    with st.expander("What the two files look like"):
        st.markdown(FORMAT)
    with st.form("upload_form"):
        cols = st.columns(2)
        f_inter = cols[0].file_uploader(
            "Interactions CSV", type=list(UPLOAD_TYPES), key="ud_interactions", max_upload_size=limit_mb
        )
        f_items = cols[1].file_uploader("Items CSV", type=list(UPLOAD_TYPES), key="ud_items", max_upload_size=limit_mb)
        cols = st.columns(2)
        name = cols[0].text_input(
            "Name of the data set",
            key="ud_name",
            placeholder="csv-<interactions file name>",
            help="Letters, digits, _ . - ; models trained on it are called FAMILY-NAME.",
        )
        noun = cols[1].text_input(
            "An item is a…", value="song", key="ud_noun", help="What the pages call an item: song, artist, movie…"
        )
        go = st.form_submit_button("Import", icon=":material/upload_file:")
    st.caption(
        f"Files up to {limit_mb} MB each. They are kept on the server under `{data_dir_label(data_dir)}/uploads`."
    )
    if go:
        if f_inter is None or f_items is None:
            st.error("Choose both files first: the interactions CSV and the items CSV.")
        else:
            chosen = name.strip() or csv_dataset_name(f_inter.name)
            try:
                with st.spinner(f"Importing {f_inter.name} and {f_items.name}…"):
                    ds = import_upload(
                        UploadedCsv(f_inter.name, f_inter.getvalue()),
                        UploadedCsv(f_items.name, f_items.getvalue()),
                        name=chosen,
                        item_noun=noun,
                        data_dir=data_dir,
                    )
            except (CsvImportError, CsvSourceError, UploadError) as e:
                st.error(upload_error_text(e), icon=":material/error:")
            else:
                st.session_state.ud_dataset = ds.name
                s = ds.summary()
                st.success(
                    f"Imported **{ds.name}**: {s['users']:,} listeners, {s['items']:,} {ds.item_noun}s, "
                    f"{s['interactions']:,} interactions, {s['tags']:,} tags. Train models on it below.",
                    icon=":material/check_circle:",
                )

    # ---- 2. train -------------------------------------------------------------------------------
    st.header("2. Train")
    imported = imported_datasets(data_dir)
    root = jobs_root(data_dir)
    running = active_job(root)
    if not imported:
        st.info("Upload a data set above first; each one you import is listed here.")
    else:
        names = sorted(imported)
        if st.session_state.get("ud_dataset") not in names:
            st.session_state.ud_dataset = names[0]
        dataset = st.selectbox("Data set", names, key="ud_dataset")
        record = imported[dataset]
        st.caption(
            f"{record.get('item_noun', 'song')}s from `{record['interactions']['path'].rsplit('/', 1)[-1]}` and "
            f"`{record['items']['path'].rsplit('/', 1)[-1]}`, imported {record.get('imported', '')}"
        )
        cols = st.columns([2, 1])
        families = cols[0].multiselect(
            "Families",
            list(JOB_FAMILIES),
            default=list(DEFAULT_JOB_FAMILIES),
            key="ud_families",
            format_func=lambda f: JOB_FAMILY_NOTES[f][0],
            help="Latent families can be tuned (steered in their latent space); every model can be postfiltered.\n\n"
            + "\n".join(f"- **{title}**: {what}" for title, what in JOB_FAMILY_NOTES.values()),
        )
        epochs = cols[1].slider("Epochs at most (neural families)", 2, 100, 20, key="ud_epochs")
        have = set(registry.ids())
        existing = [f"{f}-{dataset}" for f in families if f"{f}-{dataset}" in have]
        replace = (
            st.checkbox(f"Replace {', '.join(existing)} (already in the registry)", key="ud_replace")
            if existing
            else False
        )
        if st.button(
            "Train", icon=":material/model_training:", disabled=running is not None, key="ud_train", type="primary"
        ):
            try:
                job = start_job(
                    dataset=dataset,
                    families=families,
                    registry_root=registry.root,
                    data_dir=data_dir,
                    epochs=epochs,
                    replace=replace,
                )
            except JobError as e:
                st.error(str(e))
            else:
                st.session_state.ud_job = job.name
                st.rerun()
        if running is not None:
            st.caption("Train is off while the job below runs: one training job at a time.")

    # ---- 3. the job -----------------------------------------------------------------------------
    jobs = list_jobs(root)
    wanted = st.session_state.get("ud_job")
    job = running or next((j for j in jobs if j.name == wanted), None) or (jobs[0] if jobs else None)
    if job is not None:
        st.header("3. Training job")
        status = job_status(job)  # the fragment below reads it afresh on each poll
        live = status["state"] not in FINISHED

        @st.fragment(run_every=1.0 if live else None)
        def job_panel() -> None:
            status = job_status(job)
            state = status["state"]
            if state == "cancelling":
                cancel_job(job)  # kills the runner once it has had CANCEL_GRACE_S to stop by itself
            if live and state in FINISHED:
                st.cache_data.clear()  # new models: the sidebar and the pages read the registry again
                st.rerun()
            label = {
                "running": "Training",
                "starting": "Starting",
                "cancelling": "Cancelling",
                "done": "Finished",
                "failed": "Failed",
                "cancelled": "Cancelled",
                "died": "Stopped unexpectedly",
            }.get(state, state)
            st.progress(progress_fraction(status), text=f"{label}: {status['dataset']} (job {status['job']})")
            table = job_models_table(status)
            if not table.empty:
                st.dataframe(table, hide_index=True, key=None)
            if status.get("error"):
                st.error(status["error"])
            if state not in FINISHED and st.button("Cancel", icon=":material/cancel:", key="ud_cancel"):
                cancel_job(job)
                st.rerun(scope="fragment")
            with st.expander("Log", expanded=state not in FINISHED or state in ("failed", "died")):
                st.code(log_tail(job) or "(nothing yet)", language=None)

        job_panel()

        done = [m for m in status["models"] if m.get("state") == "done"]
        ready = {s.model_id for s in cached_statuses(registry) if s.ok}
        done = [m for m in done if m["model_id"] in ready]
        if done and not live:
            st.header("4. Steer it")
            # latent models first: they are the ones that can be tuned
            ids = [m["model_id"] for m in sorted(done, key=lambda m: m["family"] in ("popularity", "ease", "svd"))]
            cols = st.columns([2, 1, 1, 1])
            chosen = cols[0].selectbox("Model", ids, key="ud_open_model")
            targets = (
                ("pages/recommend.py", "Recommend", ":material/queue_music:"),
                ("pages/latent_space.py", "Latent space", ":material/scatter_plot:"),
                ("pages/compare.py", "Compare", ":material/leaderboard:"),
            )
            for col, (page, title, icon) in zip(cols[1:], targets, strict=True):
                col.write("")  # align with the select box
                if col.button(f"Open in {title}", icon=icon, key=f"ud_open_{title}"):
                    open_model(status["dataset"], chosen)
                    st.switch_page(page, query_params={"dataset": status["dataset"], "model": chosen})
    st.caption(f"Models are registered in `{registry_label(registry)}`.")
