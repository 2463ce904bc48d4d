"""The Transfer page over depth: an x-axis family switch for sweeps with a depth ladder.

`family_switch` draws a width/depth radio when the sweep has a ladder. Over width, the page shows
the runs at the base depth (`runs_for_width`), as the report's width section reads them. Over
depth, `render_depth` draws, at the report's fixed width, the loss-vs-LR curves per depth, the
depth verdict (judged on CompleteP, µP's drift beside it) and the optimum vs depth with its
drift line. Numbers come from the engine's report (`Service.transfer`); nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from app.transfer import depth_charts
from app.widgets import charts, verdict_view

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import TransferReport

FAMILIES = ("width", "depth")
DEPTH_HELP = ("Slope of the best log2 LR against log2 depth at a fixed width: how many LR "
              "doublings the optimum moves per depth doubling. CompleteP should keep it near 0.")


def family_switch(runs: pd.DataFrame) -> str:
    """The x-axis family: a radio for a sweep with a depth ladder, else "width"."""
    if not depth_charts.has_depth_ladder(runs):
        return "width"
    base = depth_charts.base_depth_of(runs)
    family = st.radio(
        "x-axis family", FAMILIES, key="transfer_family", horizontal=True,
        help=f"Width: curves per width at the base depth ({base}). Depth: curves per depth at "
             "one width, and the optimal LR against depth.",
    )
    return str(family)


def runs_for_width(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the width family draws (a ladder's runs at its base depth)."""
    return depth_charts.at_base_depth(runs)


def render_depth(runs: pd.DataFrame, report: TransferReport | None, loss: str,
                 reanalyse: Callable[[int], TransferReport | None] | None = None) -> None:
    """Draw the depth family: curves per depth, the depth verdict, optimum vs depth.

    With several widths, a picker chooses the width the depth section reads (the report's
    default is the smallest); `reanalyse(width)` gives the report at another one.
    """
    depth = None if report is None else report.depth
    if depth is None:
        st.info("Waiting for finished runs at two depths or more.")
        return
    widths = sorted(int(w) for w in runs["width"].dropna().unique())
    if reanalyse is not None and len(widths) > 1:
        width = int(st.selectbox(
            "Width", widths, index=widths.index(depth.width) if depth.width in widths else 0,
            key="transfer_depth_width",
            help="The width whose runs the depth curves, optima and verdict read."))
        if width != depth.width:
            report = reanalyse(width)
            depth = None if report is None else report.depth
            if report is None or depth is None:
                st.info(f"No depth analysis at width {width} yet.")
                return
    chart_col, verdict_col = st.columns([4, 1.3])
    with chart_col:
        st.plotly_chart(depth_charts.depth_curves_figure(runs, report, depth.width, loss=loss),
                        key="transfer_depth_chart")
    with verdict_col:
        _depth_verdict(report)
    st.subheader(f"Optimal learning rate vs depth (width {depth.width})")
    st.plotly_chart(depth_charts.depth_optimum_figure(report), key="transfer_depth_optimum")


def _depth_verdict(report: TransferReport | None) -> None:
    """The depth verdict, each parametrization's drift per depth doubling, the warnings."""
    depth = None if report is None else report.depth
    if depth is None:
        return
    st.subheader("Depth verdict")
    judged = charts.param_label(depth.judged_on) if depth.judged_on else "CompleteP"
    verdict_view.render(depth.verdict, depth.reason, depth.next_step,
                        subject="Depth transfer", axis="depth", qualifier=f" under {judged}")
    for param, d in depth.parametrizations.items():
        st.metric(f"{charts.param_label(param)} drift",
                  "—" if d.drift_slope is None else f"{d.drift_slope:+.2f}", help=DEPTH_HELP)
        if d.drift_ci:
            st.caption(f"95% interval [{d.drift_ci[0]:+.2f}, {d.drift_ci[1]:+.2f}] log2 LR per "
                       "depth doubling")
    st.caption(f"Tolerance: ±{depth.tolerance} log2 LR per depth doubling; base depth "
               f"{depth.base_depth}, width {depth.width}.")
    for warning in depth.warnings:
        st.warning(warning)
