"""Coord check: is the model really in µP? Activation sizes should not grow with width."""

from __future__ import annotations

import streamlit as st

from app import charts, components, jobs, model_picker, tables

MODELS = {"mlp": "MLP", "gpt": "GPT (small transformer)", "llama": "LLaMA (RMSNorm, RoPE, SwiGLU)", "cnn": "CNN"}
WIDTH_LADDERS = {
    "64 → 1024 (5 widths)": [64, 128, 256, 512, 1024],
    "64 → 512 (4 widths)": [64, 128, 256, 512],
    "32 → 256 (4 widths, fastest)": [32, 64, 128, 256],
}

st.title("Coordinate check")
st.caption(components.HELP["coord_check"])

# Outside the form: picking a registered model redraws its own option fields below.
registered, registry_error = model_picker.registered()
if registry_error:
    st.error(f"Registered models are unavailable: {registry_error}", icon=":material/error:")
model: str = st.selectbox(
    "Model", [*MODELS, *registered], key="coord_model",
    format_func=lambda k: MODELS.get(k) or model_picker.label(registered[k]),
    help="The zoo's models, then the models registered on this server (MUTRANSFER_MODEL_DIRS).",
)

with st.form("coord_form"):
    model_args = model_picker.cli_args(st, registered[model], f"coord.{model}") if model in registered else []
    c2, c3 = st.columns(2)
    param: str = c2.radio(
        "Parametrization", ["mup", "sp"], key="coord_param", format_func=charts.param_label, horizontal=True,
        help=components.HELP["mup"],
    )
    ladder: str = c3.selectbox("Widths", list(WIDTH_LADDERS), key="coord_widths", help=components.HELP["widths"])
    c4, c5, c6 = st.columns(3)
    optimizer: str = c4.selectbox("Optimizer", ["adam", "sgd"], key="coord_optimizer")
    steps = c5.number_input("Steps", min_value=1, max_value=20, value=4, key="coord_steps",
                            help="Training steps to record; a few are enough to see growth.")
    lr = c6.number_input("Learning rate", min_value=1e-5, max_value=10.0, value=0.01, format="%.4f", key="coord_lr",
                         help="Fairly large on purpose: a parametrization error shows up sooner.")
    submitted = st.form_submit_button("Run coordinate check", type="primary", icon=":material/play_arrow:")

widths = WIDTH_LADDERS[ladder]
args = [
    "coord-check", "--model", model, *model_args, "--param", param, "--widths", ",".join(map(str, widths)),
    "--steps", str(int(steps)), "--optimizer", optimizer, "--lr", repr(float(lr)),
]
key = " ".join(args)
if submitted:
    jobs.registry().start(key, args, restart=True)
    st.session_state["coord_key"] = key


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
    result = job.result()
    activations, slopes = tables.coord_frames(result)
    verdict = result.get("verdict")
    worst = result.get("max_abs_slope")
    label = charts.param_label(str(result.get("param", "")))
    if verdict == "pass":
        st.success(f"**{label}: pass.** The largest |slope| is {worst:.3f}: activation sizes stay flat as width grows.")
    else:
        st.error(
            f"**{label}: fail.** The largest |slope| is {worst:.3f}: some activations change size with width "
            "(expected for SP; under µP it points at a layer that is not parametrized right)."
        )
    st.plotly_chart(charts.coord_check_figure(activations), key="coord_chart")
    st.subheader("Slopes of log2 mean |activation| vs log2 width")
    st.caption("One row per module, one column per step. Near 0 means width-independent.")
    st.dataframe(tables.slope_pivot(slopes), key="coord_slopes", width="stretch")


current = st.session_state.get("coord_key")
if current:
    result_panel(current)
else:
    st.info("Choose a model and press **Run coordinate check**. It takes a few seconds on a CPU.")
