"""Transfer: did the optimal learning rate stay put as the model got wider?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import state
from app.transfer import forecast_view, noise_view, regret_view, transfer_ladder
from app.widgets import charts, components, search_view, tables, verdict_view
from experiments.analysis import param_order
from experiments.service import LOSS_CHOICES, RunState

if TYPE_CHECKING:  # typing only
    from experiments.service import Service, TransferReport, TransferView

CURVE_POINTS = 400

LOSS_LABELS = {"auto": "auto (validation if the task has it)", "val": "validation",
               "train": "train"}


def analysis_options(targets: list[int]) -> tuple[dict[str, Any], DeltaGenerator]:
    """The top row's controls: the loss, the drift and regret tolerances, the strict rule and
    the width the loss forecast is for (`targets`: `Service.target_widths`).

    Returns:
        (the keyword arguments of `Service.transfer` they set, the row's column for the count).
    """
    top_left, top_mid, top_right = st.columns([2, 2, 3])
    loss = top_left.radio(
        "Loss", [c for c in LOSS_CHOICES if c in LOSS_LABELS], key="transfer_loss",
        format_func=LOSS_LABELS.__getitem__,
        help="Which final loss ranks the learning rates, feeds the verdict, the regret and the "
        "forecast. Auto: the validation loss where the task has a validation split (a train "
        "loss near 0 makes a relative regret meaningless), else the train loss.",
    )
    choices: list[int | None] = [*targets] or [None]
    target = top_left.selectbox(
        "Forecast the best loss at width", choices, key="transfer_target",
        index=min(len(targets) - 1, max(len(targets) - 3, 0)) if targets else 0,
        help="The power law fitted to the ladder's best losses is extrapolated to this width.",
    )
    tolerance = top_mid.number_input(
        "Tolerance (log2 LR)", min_value=0.05, max_value=2.0, value=0.25, step=0.05, key="transfer_tolerance",
        help=components.HELP["transfer"],
    )
    strict = top_mid.checkbox(
        "Strict: the drift's whole 95% interval within the tolerance", key="transfer_strict",
        help="Off: the drift estimate must be within the tolerance and the per-width optima must "
        "agree. On: also the drift's 95% interval, which needs more widths or seeds to be narrow.",
    )
    regret_pct = top_mid.number_input(
        "Regret tolerance (% of best loss)", min_value=0.1, max_value=50.0, value=1.0, step=0.5,
        key="transfer_regret_tolerance",
        help="What copying the narrowest width's best LR may cost at the widest width under µP, as "
        "a % of its best loss; the seeds' noise there applies when larger.",
    )
    return {"tolerance": float(tolerance), "loss": loss, "strict_interval": strict,
            "regret_tolerance": float(regret_pct) / 100,
            "target_width": None if target is None else int(target)}, top_right


def transfer_chart(service: Service, sweep_id: int, view: TransferView, runs: pd.DataFrame,
                   loss: str) -> Any:
    """The verdict, then the loss-vs-LR chart (one curve per width); returns the chart's
    selection event (a clicked point picks the training curves below)."""
    report = view.report
    widths_frame, drift_frame = tables.report_frames(report)
    # The verdict above the chart, both full width: side by side, the verdict's column was
    # ~150 px at 1024 px and broke its own headline mid-word.
    verdict_col = st.container()
    chart_col = st.container()
    with chart_col:
        event = st.plotly_chart(
            search_view.mark_adaptive(  # rings the points an adaptive search chose
                charts.transfer_figure(runs, widths_frame if not widths_frame.empty else None,
                                       loss=loss, height=620),
                runs, service.adaptive_widths(sweep_id), loss),
            key="transfer_chart", on_select="rerun", selection_mode="points",
        )
    with verdict_col:
        st.subheader("Verdict")
        if report is None:
            st.info(view.problem or "Waiting for finished runs.")
        else:
            verdict(report, drift_frame)

    st.subheader("Optimal learning rate vs width")
    st.plotly_chart(charts.optimum_figure(widths_frame, drift_frame), key="transfer_optimum")
    regret_view.render(report)  # what copying the narrowest width's LR costs, per width
    forecast_view.render(report)  # best loss vs width, µP against tuned SP at the target
    return event


def verdict(report: TransferReport, drift_frame: pd.DataFrame) -> None:
    """The verdict (confirmed, not confirmed or inconclusive), its next step and why, the
    regret tolerance it applied, the loss it was judged on, and the drift per
    parametrization, with its interval."""
    verdict_view.render(report.verdict, report.reason, report.next_step,
                        applied=report.regret_applied)
    st.caption(f"Loss used: {report.loss_reason or report.loss}.")
    for row in drift_frame.itertuples():
        low, high = row.drift_ci_low, row.drift_ci_high
        has_ci = low is not None and high is not None and low == low and high == high
        st.metric(
            f"{charts.param_label(row.parametrization)} drift",
            f"{row.drift_slope:+.2f}" if row.drift_slope is not None else "—",
            help=components.HELP["drift"],
        )
        if has_ci:
            st.caption(f"95% interval [{low:+.2f}, {high:+.2f}] log2 LR per doubling")
    st.caption(f"Tolerance: ±{report.tolerance} log2 LR per width doubling.")
    for warning in report.warnings:
        st.warning(warning)


def follow_click(event: Any) -> None:
    """A new click on the chart moves the grid-point selectboxes; later selectbox changes win
    until the next click."""
    points = (event.selection.points if event and event.selection else None) or []
    clicked = next((p.get("customdata") for p in points if p.get("customdata")), None)
    if clicked and tuple(clicked[:3]) != st.session_state.get("transfer_last_click"):
        st.session_state["transfer_last_click"] = tuple(clicked[:3])
        st.session_state["transfer_pick_param"] = str(clicked[0])
        st.session_state["transfer_pick_width"] = int(float(clicked[1]))
        st.session_state["transfer_pick_lr"] = float(clicked[2])


def curves_section(service: Service, sweep_id: int, finished: pd.DataFrame) -> None:
    """The training curves of the seeds at one (parametrization, width, LR) grid point."""
    st.caption("Click a point on the chart above, or choose here.")
    c1, c2, c3 = st.columns(3)
    params = param_order(finished["parametrization"])
    param = c1.selectbox("Parametrization", params, key="transfer_pick_param", format_func=charts.param_label)
    at_param = finished[finished["parametrization"] == param]
    width = c2.selectbox("Width", sorted(int(w) for w in at_param["width"].unique()), key="transfer_pick_width")
    at_width = at_param[at_param["width"] == width]
    log2_lr = c3.selectbox(
        "log2 LR", sorted(float(x) for x in at_width["log2_lr"].unique()), key="transfer_pick_lr",
        format_func=lambda x: f"{x:.2f}  (LR {2.0 ** x:.2e})",
    )
    picked = at_width[at_width["log2_lr"] == log2_lr]
    run_ids = [int(i) for i in picked["run_id"]]
    metrics = service.metrics(sweep_id, run_ids=run_ids, names=["train_loss", "val_loss"], max_points=CURVE_POINTS)
    labels = {int(r.run_id): f"seed {int(r.seed)}" + (" (diverged)" if r.state == RunState.DIVERGED else "") for r in picked.itertuples()}
    st.plotly_chart(
        charts.loss_curves_figure(
            metrics, labels=labels,
            title=f"{charts.param_label(param)}, width {width}, log2 LR {log2_lr:.2f}",
        ),
        key="transfer_curves",
    )


st.title("Transfer")
st.caption(
    "Final loss against learning rate, one curve per width. Under µP the curves' minima line up "
    "(the best LR transfers from narrow to wide); under SP they slide left as width grows."
)

sweep = components.sweep_picker("transfer_sweep")
if sweep is None:
    st.stop()

service = state.service()
options, top_right = analysis_options(service.target_widths(sweep.id))
# The analysis refuses partial data in plain words: the view carries them as `problem`.
view = service.transfer(sweep.id, **options)
runs, finished, report = view.runs, view.finished, view.report
loss_column = view.loss_column(options["loss"])  # "auto" resolved: the column drawn
top_right.metric("Finished runs", f"{len(finished)} / {len(runs)}")
family = transfer_ladder.family_switch(runs)
if family != transfer_ladder.WIDTH:  # a ladder (depth, ...), shown along its axis
    sweep_id = sweep.id  # the closure below would lose the narrowing of `sweep`
    transfer_ladder.render_ladder(family, runs, report, loss_column, reanalyse=lambda width: service.transfer(
        sweep_id, **options, depth_width=width).report)
    if family == "batch":  # the critical batch size, where the runs logged it
        noise_view.render(service, int(sweep_id), runs)
    st.stop()
runs, finished = transfer_ladder.runs_for_width(runs), transfer_ladder.runs_for_width(finished)
event = transfer_chart(service, sweep.id, view, runs, loss_column)

# --- Training curves for one grid point: a click on the chart, or the selectboxes -------------
st.subheader("Training curves at one grid point")
follow_click(event)
if finished.empty:
    st.caption("Click a point once runs have finished.")
    st.stop()
curves_section(service, sweep.id, finished)
