"""µP inspector: what µP does to every parameter of the model, at the base and target widths."""

from __future__ import annotations

import streamlit as st

from app import charts, components, jobs, model_picker, tables

MODELS = {"mlp": "MLP", "gpt": "GPT (small transformer)", "llama": "LLaMA (RMSNorm, RoPE, SwiGLU)", "cnn": "CNN"}
WIDTHS = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]

st.title("µP inspector")
st.caption(
    "One row per parameter: its role, how much wider it is than at the base width, and the "
    "initialisation, forward multiplier and learning-rate multiplier µP gives it. Under SP every "
    "multiplier is 1 and the init follows PyTorch's default."
)

registered, registry_error = model_picker.registered()
if registry_error:
    st.error(f"Registered models are unavailable: {registry_error}", icon=":material/error:")
c1, c2, c3, c4, c5 = st.columns(5)
model: str = c1.selectbox(
    "Model", [*MODELS, *registered], key="insp_model",
    format_func=lambda k: MODELS.get(k) or model_picker.label(registered[k]),
    help="The zoo's models, then the models registered on this server (MUTRANSFER_MODEL_DIRS).",
)
param: str = c2.radio("Parametrization", ["mup", "sp"], key="insp_param", format_func=charts.param_label,
                 horizontal=True, help=components.HELP["mup"])
optimizer: str = c3.selectbox("Optimizer", ["adam", "adamw", "sgd"], key="insp_optimizer",
                         help="Adam-family and SGD scale learning rates differently under µP.")
base_width = c4.select_slider("Base width", WIDTHS, value=64, key="insp_base", help=components.HELP["base_width"])
target_width = c5.select_slider("Target width", WIDTHS, value=1024, key="insp_target",
                                help="The wide model you want to train.")

model_args: list[str] = []
if model in registered:
    with st.expander(f"Task and options of {model}", expanded=True):
        model_args = model_picker.cli_args(st, registered[model], f"insp.{model}")

with st.expander("What do the columns mean?"):
    st.markdown(
        f"- **role**: input (fan-in fixed, fan-out grows), hidden (both grow), output/readout "
        f"(fan-in grows, fan-out fixed), vector (biases, norm gains).\n"
        f"- **width_mult**: {components.HELP['width_mult']}\n"
        f"- **init_std**: standard deviation of the initial weights (0 for zero/one inits).\n"
        f"- **forward_mult**: {components.HELP['forward_mult']}\n"
        f"- **lr_mult**: {components.HELP['lr_mult']}"
    )


def describe_args(width: int) -> list[str]:
    return ["describe", "--model", model, *model_args, "--param", param, "--width", str(width),
            "--base-width", str(base_width), "--optimizer", optimizer]


registry = jobs.registry()
wanted = {w: registry.start(" ".join(describe_args(w)), describe_args(w)) for w in (base_width, target_width)}


@st.fragment(run_every=1)
def tables_panel() -> None:
    states = {w: job.status() for w, job in wanted.items()}
    failed = [w for w, s in states.items() if s == "failed"]
    if failed:
        st.error(f"describe failed at width {failed[0]}:\n\n```\n{wanted[failed[0]].error()}\n```")
        return
    if any(s == "running" for s in states.values()):
        st.info("Building the model at both widths...", icon=":material/hourglass_top:")
        return
    base_rows = wanted[base_width].result().get("rows", [])
    target_rows = wanted[target_width].result().get("rows", [])
    st.subheader(f"Base width {base_width} → target width {target_width}")
    st.dataframe(
        tables.describe_compare(base_rows, target_rows), key="insp_table", hide_index=True, width="stretch",
        height=min(38 * (len(target_rows) + 1) + 4, 700),
    )


tables_panel()
