"""Runs: live table of sweeps and runs, cancel/retry, per-run loss curves, errors."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import nav, state
from app.widgets import charts, components, jobs_view, search_view, tables
from experiments.service import RunState

REFRESH_S = 2
CURVE_POINTS = 300  # per run and metric, downsampled in the store query

st.title("Runs")
st.caption(
    f"Live view of the store (refreshes every {REFRESH_S} s). Runs execute in the background "
    "runner process, so closing this tab does not stop them."
)

PROGRESS = st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent")


@st.fragment(run_every=REFRESH_S)
def sweeps_panel() -> None:
    table = tables.sweeps_table(state.service().sweeps())
    if table.empty:
        st.info("No sweeps yet. Launch one from **Setup**, or the quick demo on the **Overview** page.")
        return
    st.dataframe(
        table, key="runs_sweeps_table", hide_index=True, width="stretch",
        column_config={"progress": PROGRESS, "id": st.column_config.NumberColumn("id", format="%d")},
    )


def live_or_next(sweep_id: int, table: pd.DataFrame, counts: dict[str, int]) -> None:
    """While runs train: one line each (step, loss, device, ETA) as text that updates with
    every refresh. Once none is left to run: the way to the sweep's verdict."""
    lines = tables.live_lines(table) if not table.empty else []
    if lines:
        st.markdown("**Training now**\n\n" + "\n".join(f"- {line}" for line in lines))
    elif not table.empty and not any(counts.get(name, 0) for name in tables.ACTIVE_STATES):
        finished = sum(counts.get(name, 0) for name in tables.FINISHED_STATES)
        st.success(f"Sweep #{sweep_id} has finished: {finished} run(s) trained.",
                   icon=":material/check_circle:")
        st.page_link(nav.page("transfer.py"), label="See its transfer verdict",
                     icon=":material/insights:")


def problems_panel(sweep_id: int, runs: pd.DataFrame) -> None:
    """Metrics files moved aside by ingest (gaps in curves), then failed runs' errors."""
    quarantined = state.service().quarantined(sweep_id)
    if quarantined:
        st.warning(
            f"{len(quarantined)} metrics file(s) of this sweep could not be read and were moved "
            "aside, so those runs' curves have gaps (the runs themselves are kept): "
            + "; ".join(f"run #{q.run_id}: {q.moved_to or q.path}" for q in quarantined),
            icon=":material/warning:",
        )
    errors = tables.failed_runs(runs)
    if not errors.empty:
        with st.expander(f"{len(errors)} failed run(s): errors", expanded=True):
            for row in errors.itertuples():
                st.markdown(f"**#{int(row.run_id)} {tables.run_label(row._asdict())}**")
                st.code(str(row.error or "no error text recorded"), language="text")


@st.fragment(run_every=REFRESH_S)
def runs_panel(sweep_id: int) -> None:
    service = state.service()
    runs = service.runs(sweep_id)
    table = tables.runs_table(runs, live=service.live_losses(sweep_id))
    counts = table["state"].value_counts().to_dict() if not table.empty else {}
    cols = st.columns(len(RunState))
    for col, name in zip(cols, RunState, strict=True):
        col.metric(str(name), counts.get(name, 0))
    search_view.planned_note(sweep_id)  # an adaptive search: runs planned, not yet queued
    live_or_next(sweep_id, table, counts)

    left, mid, right = st.columns(3)  # each label whole at 1024 px
    active = any(counts.get(name, 0) for name in tables.ACTIVE_STATES)
    if left.button("Cancel sweep", key="runs_cancel_sweep", disabled=not active, icon=":material/stop:"):
        service.cancel_sweep(sweep_id)
        st.toast(f"Sweep #{sweep_id}: cancelling queued and running runs")
    failed = counts.get(RunState.FAILED, 0) + counts.get(RunState.CANCELLED, 0)
    if mid.button(f"Retry failed ({failed})", key="runs_retry", disabled=not failed, icon=":material/replay:"):
        service.retry(sweep_id)
        st.toast(f"Sweep #{sweep_id}: failed runs queued again")
    # Labels leave out the state: a label that changed every refresh would reset the picker.
    labels = {int(r["run_id"]): f"#{int(r['run_id'])} {tables.run_label(r)}" for r in runs.to_dict("records")}
    chosen = st.session_state.get("runs_pick", [])
    cancellable = [i for i in chosen if i in labels and runs.loc[runs.run_id == i, "state"].iloc[0] in tables.ACTIVE_STATES]
    if right.button(f"Cancel selected ({len(cancellable)})", key="runs_cancel_runs", disabled=not cancellable):
        for run_id in cancellable:
            service.cancel_run(run_id)
        st.toast(f"Cancelling {len(cancellable)} run(s)")

    st.dataframe(
        table, key="runs_runs_table", hide_index=True, width="stretch", height=360,
        column_config={
            "progress": PROGRESS,
            "log2_lr": st.column_config.NumberColumn("log2 LR", format="%.2f"),
            "latest_loss": st.column_config.NumberColumn(
                "latest loss", format="%.4f",
                help="A running run's latest logged train loss; a finished run's final one."),
            "final_train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
            "final_val_loss": st.column_config.NumberColumn("val loss", format="%.4f"),
        },
    )

    problems_panel(sweep_id, runs)

    st.subheader("Loss curves")
    st.multiselect(
        "Runs to plot", list(labels), key="runs_pick", format_func=lambda i: labels.get(i, str(i)),
        help="Pick runs to see their training (solid) and validation (dotted) loss.",
        placeholder="Choose runs (the first running or finished runs are shown by default)",
    )
    picked = [i for i in st.session_state.get("runs_pick", []) if i in labels]
    if not picked:
        started = runs[runs["state"] != RunState.QUEUED].sort_values("run_id")
        picked = [int(i) for i in started["run_id"].head(4)]
    if picked:
        metrics = service.metrics(sweep_id, run_ids=picked, names=["train_loss", "val_loss"], max_points=CURVE_POINTS)
        st.plotly_chart(charts.loss_curves_figure(metrics, labels=labels), key="runs_curves")
    else:
        st.caption("No run has started yet.")


sweeps_panel()
jobs_view.jobs_panel()
st.divider()
st.subheader("Sweep details")
sweep = components.sweep_picker("runs_sweep")
if sweep is not None:
    runs_panel(sweep.id)
