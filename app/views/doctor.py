"""Doctor: is this model really µP, and if not, which ingredient is missing?

Runs `python -m experiments doctor` in a background process (static checks, 30-step dynamic
checks at 3-4 widths, and the ablation when one fails) and shows the findings in plain words
with their evidence charts and fixes.
"""

from __future__ import annotations

import streamlit as st

from app import jobs, state
from app.doctor import doctor_panel
from app.widgets import charts, model_picker
from experiments.service import DoctorResult, ServiceError
from experiments.spec.sweep import optimizer_names, parametrization_choices, zoo_labels

MODELS = zoo_labels()
PARAMS = ["mup", *(p for p in parametrization_choices() if p != "mup")]  # µP first (the default)
WIDTH_LADDERS = {
    "64 → 256 (3 widths)": [64, 128, 256],
    "64 → 512 (4 widths)": [64, 128, 256, 512],
    "32 → 128 (3 widths, fastest)": [32, 64, 128],
}

st.title("µP doctor")
st.caption(
    "Checks a model and its training setup for µP without you reading a plot: static checks "
    "(metadata, readout, attention scale, tied weights, optimizer groups), then 30 training steps "
    "at a few widths (activation sizes, the logits included, and each weight's update size "
    "|dW|/|W|). When something is off, it switches one µP ingredient at a time and names the one "
    "that fixes it."
)

model, registered = model_picker.model_select(st, MODELS, "doctor_model")
with st.form("doctor_form"):
    model_args = model_picker.cli_args(st, registered[model], f"doctor.{model}") if model in registered else []
    c1, c2, c3 = st.columns(3)
    param: str = c1.radio("Parametrization", PARAMS, key="doctor_param", horizontal=True,
                          format_func=charts.param_label)
    ladder: str = c2.selectbox("Widths", list(WIDTH_LADDERS), key="doctor_widths")
    optimizer: str = c3.selectbox("Optimizer", optimizer_names(), key="doctor_optimizer")
    submitted = st.form_submit_button("Run the doctor", type="primary", icon=":material/healing:")

try:
    args = state.service().doctor_command(["--model", model, *model_args], param,
                                          WIDTH_LADDERS[ladder], optimizer)
except ServiceError as exc:
    st.error(str(exc))
    st.stop()
key = " ".join(args)
if submitted:
    jobs.registry().start(key, args, restart=True)
    st.session_state["doctor_key"] = key


@st.fragment(run_every=1)
def result_panel(job_key: str) -> None:
    job = jobs.registry().get(job_key)
    if job is None:
        return
    if job.status() == "running":
        st.info("Running the doctor in a background process (about a minute on a CPU)...",
                icon=":material/hourglass_top:")
        return
    if not job.out_path.exists():  # exit 2: bad input; the command said why
        st.error(f"The doctor could not run:\n\n```\n{job.error()}\n```")
        return
    # Exit 1 (problems) still wrote the report: that is a diagnosis, not a failed job.
    doctor_panel.show_report(job.result(DoctorResult.from_json), key="doctor_report")


current = st.session_state.get("doctor_key")
if current:
    result_panel(current)
else:
    st.info("Choose a model and press **Run the doctor**.")
