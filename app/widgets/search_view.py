"""The adaptive LR search on the Runs and Transfer pages.

Runs: how far the search is (runs so far, runs planned but not queued yet, the full grid's
size). Transfer: a ring around every grid point the search chose (the widths past the
full-grid ones), so a reader sees which curves are brackets rather than whole grids.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import state
from experiments.analysis import param_order, seed_summary

ADAPTIVE_NAME = "adaptively chosen"
ADAPTIVE_SYMBOL = "circle-open"


def planned_note(sweep_id: int) -> None:
    """One line on the Runs page for an adaptive sweep (nothing for a grid sweep)."""
    progress = state.service().search_progress(sweep_id)
    if progress is None:
        return
    if progress.complete:
        st.caption(f"Adaptive search complete: {progress.runs:,} runs of the {progress.full_grid:,}"
                   f"-run grid ({progress.runs / progress.full_grid:.0%}).")
    else:
        planned = progress.to_add + progress.later_min
        st.info(f"Adaptive search: {progress.runs:,} runs so far; **{planned:,} planned but not "
                f"queued yet** (at least: brackets grow while an optimum sits on their edge); "
                f"at most {progress.full_grid:,} (the full grid).", icon=":material/explore:")
    for warning in progress.warnings:
        st.warning(warning, icon=":material/warning:")


def mark_adaptive(fig: go.Figure, runs: pd.DataFrame, widths: list[int],
                  loss: str = "final_train_loss") -> go.Figure:
    """Ring the seed-mean points of `widths` on `charts.transfer_figure`'s panels.

    The panels are the parametrizations in `param_order`, as the chart draws them.
    """
    summary = seed_summary(runs, loss) if widths else pd.DataFrame()
    if summary.empty:
        return fig
    chosen = summary[summary["width"].isin(widths)]
    for col, param in enumerate(param_order(summary["parametrization"]), start=1):
        pts = chosen[chosen["parametrization"] == param]
        pts = pts[pd.to_numeric(pts["loss_mean"], errors="coerce").notna()]
        fig.add_trace(go.Scatter(
            x=pts["log2_lr"].tolist(), y=pts["loss_mean"].tolist(), mode="markers",
            name=ADAPTIVE_NAME,
            legendgroup=ADAPTIVE_NAME, showlegend=col == 1, hoverinfo="skip",
            marker={"symbol": ADAPTIVE_SYMBOL, "size": 15, "color": "black",
                    "line": {"width": 1.5}},
        ), row=1, col=col)
    return fig
