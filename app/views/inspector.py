"""µP inspector: what µP does to every parameter of the model, at the base and target widths."""

from __future__ import annotations

import streamlit as st

from app import jobs
from app.widgets import charts, components, model_picker, tables
from experiments.service import DescribeTable
from experiments.spec.sweep import (
    MUON_ADJUSTMENTS,
    depth_kinds,
    depth_rule_names,
    optimizer_names,
    zoo_labels,
)

MODELS = zoo_labels()
WIDTHS = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
# Parametrizations whose tables scale residual branches and block LRs with depth (CompleteP, depth-µP).
DEPTH_PARAMS = tuple(depth_rule_names())
DEPTH_MODELS = depth_kinds()  # the zoo models with residual blocks (mlp: residual)
DEPTHS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]

st.title("µP inspector")
st.caption(
    "One row per parameter: its role, how much wider it is than at the base width, and the "
    "initialisation, forward multiplier and learning-rate multiplier µP gives it. Under SP every "
    "multiplier is 1 and the init follows PyTorch's default."
)

c1, c2, c3, c4, c5 = st.columns(5)
model, registered = model_picker.model_select(c1, MODELS, "insp_model")
param: str = c2.radio("Parametrization", ["mup", "sp", *DEPTH_PARAMS], key="insp_param",
                      format_func=charts.param_label, horizontal=True, help=components.HELP["mup"])
optimizer: str = c3.selectbox("Optimizer", optimizer_names(), key="insp_optimizer",
                         help="Adam-family and SGD scale learning rates differently under µP.")
base_width = c4.select_slider("Base width", WIDTHS, value=64, key="insp_base", help=components.HELP["base_width"])
target_width = c5.select_slider("Target width", WIDTHS, value=1024, key="insp_target",
                                help="The wide model you want to train.")

depth_args: dict[str, list[str]] = {}  # per side ("base", "target"): the describe depth flags
if param in DEPTH_PARAMS and model in DEPTH_MODELS:
    d1, d2, d3 = st.columns(3)
    base_depth = d1.select_slider("Base depth", DEPTHS, value=2, key="insp_base_depth",
                                  help="Residual blocks of the proxy, where the depth rules equal µP.")
    target_depth = d2.select_slider("Target depth", DEPTHS, value=16, key="insp_target_depth",
                                    help="Residual blocks of the deep model you want to train.")
    residual = d3.checkbox("Residual MLP", value=True, key="insp_residual", disabled=model != "mlp",
                           help="The MLP has blocks to scale only as a pre-LN residual stack.")
    mlp_option = ["--option", "residual=true"] if model == "mlp" and residual else []
    if model != "mlp" or residual:
        depth_args = {side: [*mlp_option, "--depth", str(d), "--base-depth", str(base_depth)]
                      for side, d in (("base", base_depth), ("target", target_depth))}
elif param in DEPTH_PARAMS:
    st.info(f"{model} has no residual blocks, so {charts.param_label(param)} has no depth to scale "
            "here: the table shows its width rules (depth multiplier m_L = 1).", icon=":material/info:")



def muon_args(optimizer: str) -> list[str]:
    """The describe flags of Muon's LR adjustment, which changes the hidden rule ([] otherwise)."""
    if optimizer != "muon":
        return []
    adjust: str = st.radio("Muon LR adjustment", list(MUON_ADJUSTMENTS), key="insp_muon_adjust",
                           horizontal=True,
                           help="original: hidden LR width-constant; match_rms_adamw: hidden LR "
                           "/ sqrt(m) (docs/optimizers.md). Muon trains the 2-D hidden weights, "
                           "AdamW the rest (the update column).")
    return ["--muon-adjust", adjust]


optimizer_args = muon_args(optimizer)
model_args: list[str] = []
if model in registered:
    with st.expander(f"Task and options of {model}", expanded=True):
        model_args = model_picker.cli_args(st, registered[model], f"insp.{model}")


def column_help() -> None:
    """What each column of the table means."""
    with st.expander("What do the columns mean?"):
        st.markdown(
            f"- **role**: input (fan-in fixed, fan-out grows), hidden (both grow), output/readout "
            f"(fan-in grows, fan-out fixed), vector (biases, norm gains).\n"
            f"- **width_mult**: {components.HELP['width_mult']}\n"
            f"- **init_std**: standard deviation of the initial weights (0 for zero/one inits).\n"
            f"- **forward_mult**: {components.HELP['forward_mult']}\n"
            f"- **lr_mult**: {components.HELP['lr_mult']}\n"
            f"- **depth_mult** (CompleteP, depth-µP): m_L, the model's residual blocks / the base's, for "
            f"parameters inside the blocks; their Adam LR gets m_L^(alpha-1) (alpha = 1 CompleteP, 1/2 "
            f"depth-µP).\n"
            f"- **branch_mult**: the multiplier m_L^(-alpha) on the output of the parameter's residual "
            f"branch, x = x + branch_mult * F(norm(x)).\n"
            f"- **update** (Muon): which optimizer trains the parameter, Muon (2-D hidden weights) or "
            f"AdamW (the rest)."
        )


column_help()


def describe_args(width: int, side: str) -> list[str]:
    return ["describe", "--model", model, *model_args, "--param", param, "--width", str(width),
            "--base-width", str(base_width), "--optimizer", optimizer, *optimizer_args,
            *depth_args.get(side, [])]


registry = jobs.registry()
# Keyed by side: base and target may share a width but not a depth.
sides = {"base": describe_args(base_width, "base"), "target": describe_args(target_width, "target")}
wanted = {side: registry.start(" ".join(args), args) for side, args in sides.items()}


@st.fragment(run_every=1)
def tables_panel() -> None:
    states = {side: job.status() for side, job in wanted.items()}
    failed = [side for side, s in states.items() if s == "failed"]
    if failed:
        st.error(f"describe failed for the {failed[0]} model:\n\n```\n{wanted[failed[0]].error()}\n```")
        return
    if any(s == "running" for s in states.values()):
        st.info("Building the model at both widths...", icon=":material/hourglass_top:")
        return
    base = wanted["base"].result(DescribeTable.from_json)
    target = wanted["target"].result(DescribeTable.from_json)
    depths = f", depth {base_depth} → {target_depth}" if depth_args else ""
    st.subheader(f"Base width {base_width} → target width {target_width}{depths}")
    st.dataframe(
        tables.describe_compare(base, target), key="insp_table", hide_index=True, width="stretch",
        height=min(38 * (len(target.rows) + 1) + 4, 700),
    )


tables_panel()
