"""Coord check: is the model really in µP (over width) or CompleteP (over depth)? Activation
sizes should not grow as the model gets wider, or deeper."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app import jobs, state
from app.widgets import charts, components, model_picker, tables
from experiments.service import CoordCheckReport, CoordCheckRequest, ServiceError
from experiments.spec.sweep import depth_rule_names, optimizer_names, zoo_labels

MODELS = zoo_labels()
WIDTH_LADDERS = {
    "64 → 1024 (5 widths)": [64, 128, 256, 512, 1024],
    "64 → 512 (4 widths)": [64, 128, 256, 512],
    "32 → 256 (4 widths, fastest)": [32, 64, 128, 256],
}
AXES = {"width": "Width (µP)", "depth": "Depth (CompleteP, depth-µP)"}
# The parametrizations each axis offers first: the tables with depth rules lead a depth check.
PARAMS = {"width": ["mup", "sp", *depth_rule_names()], "depth": [*depth_rule_names(), "mup", "sp"]}
DEPTH_WIDTHS = [32, 64, 128, 256]
DEPTH_HELP = (
    "Residual blocks to build, comma-separated and strictly increasing (e.g. 2,4,8,16). Each depth "
    "is trained at the one width chosen beside; slopes are against log2(depth)."
)

st.title("Coordinate check")
st.caption(components.HELP["coord_check"])

# Outside the form: picking a registered model or the axis redraws the fields below.
c0, c1 = st.columns(2)
model, registered = model_picker.model_select(c0, MODELS, "coord_model")
axis: str = c1.radio(
    "Axis", list(AXES), key="coord_axis", format_func=AXES.__getitem__, horizontal=True,
    help="Width: the model at several widths (µP keeps activations flat). Depth: at one width and "
    "several depths; only models with residual blocks (GPT, LLaMA, residual MLP) have a depth.",
)

with st.form("coord_form"):
    model_args = model_picker.cli_args(st, registered[model], f"coord.{model}") if model in registered else []
    c2, c3 = st.columns(2)
    param: str = c2.radio(
        "Parametrization", PARAMS[axis], key=f"coord_param_{axis}", format_func=charts.param_label,
        horizontal=True, help=components.HELP["mup"],
    )
    if axis == "depth":
        d1, d2 = c3.columns(2)
        depth_text: str = d1.text_input("Depths", "2,4,8,16", key="coord_depths", help=DEPTH_HELP)
        depth_width: int = d2.selectbox("Width", DEPTH_WIDTHS, index=1, key="coord_depth_width",
                                        help="The one width every depth is built at.")
        residual = st.checkbox("Residual MLP (pre-LN blocks)", value=True, key="coord_residual",
                               help="The MLP has a depth to scale only as a residual stack.",
                               disabled=model != "mlp")
    else:
        ladder: str = c3.selectbox("Widths", list(WIDTH_LADDERS), key="coord_widths", help=components.HELP["widths"])
    c4, c5, c6 = st.columns(3)
    optimizer: str = c4.selectbox("Optimizer", optimizer_names(), key="coord_optimizer")
    steps = c5.number_input("Steps", min_value=1, max_value=20, value=4, key="coord_steps",
                            help="Training steps to record; a few are enough to see growth.")
    lr = c6.number_input("Learning rate", min_value=1e-5, max_value=10.0, value=0.01, format="%.4f", key="coord_lr",
                         help="Fairly large on purpose: a parametrization error shows up sooner.")
    submitted = st.form_submit_button("Run coordinate check", type="primary", icon=":material/play_arrow:")


def request() -> CoordCheckRequest:
    """The page's choices as one typed request (the service validates it)."""
    common = CoordCheckRequest(model=model, param=param, steps=int(steps), optimizer=optimizer,
                               lr=float(lr), model_args=tuple(model_args))
    if axis == "width":
        return dataclasses.replace(common, widths=tuple(WIDTH_LADDERS[ladder]))
    try:
        depths = tuple(int(p) for p in depth_text.replace(" ", "").split(",") if p)
    except ValueError:
        depths = ()  # the service names the field: fewer than two depths
    return dataclasses.replace(common, axis="depth", depths=depths, width=int(depth_width),
                               residual=bool(residual))


if submitted:
    try:
        args = state.service().coord_check_command(request())
    except ServiceError as exc:
        st.error(str(exc), icon=":material/error:")  # beside the form; nothing is started
    else:
        key = " ".join(args)
        jobs.registry().start(key, args, restart=True)
        st.session_state["coord_key"] = key


def verdict_text(report: CoordCheckReport, label: str) -> tuple[bool, str]:
    """(passed, the verdict in plain words) for a width or a depth check."""
    worst = report.max_abs_slope
    if report.axis == "depth":
        if report.passed:
            return True, (f"**{label}: pass.** The largest |slope| is {worst:.3f}: activation sizes stay flat "
                          f"as blocks are added (width {report.width}).")
        return False, (f"**{label}: fail.** The largest |slope| is {worst:.3f}: some activations change size "
                       "with depth (expected without a branch multiplier, as in SP and µP; under CompleteP "
                       "it points at a block that is not scaled).")
    if report.passed:
        return True, f"**{label}: pass.** The largest |slope| is {worst:.3f}: activation sizes stay flat as width grows."
    return False, (f"**{label}: fail.** The largest |slope| is {worst:.3f}: some activations change size with width "
                   "(expected for SP; under µP it points at a layer that is not parametrized right).")


@st.fragment(run_every=1)
def result_panel(job_key: str) -> None:
    job = jobs.registry().get(job_key)
    if job is None:
        return
    status = job.status()
    if status == "running":
        st.info("Running the coordinate check in a background process...", icon=":material/hourglass_top:")
        return
    if status == "failed":
        st.error(f"The coordinate check failed:\n\n```\n{job.error()}\n```")
        return
    report = job.result(CoordCheckReport.from_json)
    x_axis = report.axis
    activations, slopes = tables.coord_frames(report)
    passed, text = verdict_text(report, charts.param_label(report.param))
    (st.success if passed else st.error)(text)
    st.plotly_chart(charts.coord_check_figure(activations, axis=x_axis), key="coord_chart")
    st.subheader(f"Slopes of log2 mean |activation| vs log2 {x_axis}")
    st.caption(f"One row per module, one column per step. Near 0 means {x_axis}-independent.")
    st.dataframe(tables.slope_pivot(slopes), key="coord_slopes", width="stretch")


current = st.session_state.get("coord_key")
if current:
    result_panel(current)
else:
    st.info("Choose a model and press **Run coordinate check**. It takes a few seconds on a CPU.")
