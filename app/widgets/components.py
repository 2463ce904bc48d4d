"""Small widgets shared by several pages (sweep picker, plain-word help texts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app import state

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import SweepSummary

# Plain-word explanations of µP terms, used as `help=` texts across the pages.
HELP = {
    "mup": (
        "µP (Maximal Update Parametrization) rescales each layer's initialisation, output "
        "multiplier and learning rate with width, so the best hyperparameters of a narrow model "
        "stay the best for a wide one."
    ),
    "sp": "SP (standard parametrization) is PyTorch's default: the same init rule and one global LR for every width.",
    "base_width": (
        "The width at which µP and SP coincide. Multipliers are ratios to it: a layer at width "
        "1024 with base width 64 has width multiplier 16."
    ),
    "widths": "The model widths to train (hidden size, d_model or channels). Each must be larger than the previous.",
    "lr_grid": (
        "Learning rates are tried on a log2 grid: -10 means 2^-10 ≈ 0.00098. Each step of 1 "
        "doubles the LR."
    ),
    "hparam_grid": (
        "Besides the LR, µP's global knobs (init scale, output, attention and input multipliers) "
        "transfer too. Values given here are crossed with the LR grid; the Transfer analysis "
        "then reports each swept knob's optimum per width and the export carries the chosen value."
    ),
    "seeds": "Each grid point is trained once per seed; the chart shows the mean and the min-max band.",
    "transfer": (
        "Transfer is confirmed when the drift line of the best log2 LR against width is flat "
        "within this tolerance and copying the narrowest width's LR costs no more than the "
        "regret tolerance; not confirmed when the evidence says otherwise; inconclusive when its "
        "intervals cannot tell (the verdict then names the next step)."
    ),
    "coord_check": (
        "A coordinate check trains a few steps at several widths and measures the average size "
        "of every layer's output. Under µP the sizes stay flat as width grows (slope ≈ 0)."
    ),
    "width_mult": "width / base width of the dimension that grows with the model.",
    "lr_mult": "This parameter's effective LR divided by the global LR.",
    "forward_mult": "A constant the layer multiplies its output by in the forward pass.",
    "drift": "Slope of the best log2 LR against log2 width: how many LR doublings the optimum moves per width doubling.",
}


def sweep_label(summary: SweepSummary) -> str:
    """`name · #id` for a sweep summary (its state is shown live beside it, not frozen here)."""
    return f"{summary.name} · #{summary.id}"


def sweep_picker(key: str, sweeps: list[SweepSummary] | None = None, label: str = "Sweep"
                 ) -> SweepSummary | None:
    """A selectbox over the store's sweeps (newest first) bound to the shared current sweep.

    Args:
        key: the widget key (each page uses its own, so pages never fight over one widget).
        sweeps: the list to choose from (default: every sweep, from `Service.sweeps`).
        label: widget label.

    Returns:
        The chosen SweepSummary, or None (with an explanation drawn) when the store is empty.
    """
    if sweeps is None:
        sweeps = state.service().sweeps()
    if not sweeps:
        st.info("No sweeps yet. Launch one from **Setup**, or try the quick demo on the **Overview** page.")
        return None
    sweeps = sorted(sweeps, key=lambda s: s.id, reverse=True)
    by_id = {s.id: s for s in sweeps}
    current = state.current_sweep_id()
    index = list(by_id).index(current) if current in by_id else 0
    chosen = st.selectbox(
        label, list(by_id), index=index, key=key, format_func=lambda i: sweep_label(by_id[i])
    )
    state.set_current_sweep(chosen)
    return by_id.get(chosen)
