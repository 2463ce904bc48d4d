"""The Transfer page along a ladder: an x-axis family switch for sweeps with ladders.

`family_switch` draws a radio of width and every ladder axis the sweep has (depth, ...). Over
width, the page shows the runs where every ladder sits at its base (`runs_for_width`), as the
report's width section reads them. Over another axis, `render_ladder` draws, at the section's
fixed width, the loss-vs-LR curves per rung, the axis's verdict (judged on its entry's
parametrization, the compared one's drift beside it) and the optimum vs the axis with its drift
line. Numbers come from the engine's report (`Service.transfer`); nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from app.transfer import exponent_view, ladder_charts
from app.widgets import charts, verdict_view
from experiments import service

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import Axis, LadderReport, TransferReport

WIDTH = "width"


def family_switch(runs: pd.DataFrame) -> str:
    """The x-axis family: a radio for a sweep with ladders, else "width"."""
    bases = ladder_charts.ladders(runs)
    if not bases:
        return WIDTH
    at = ", ".join(f"{service.get_axis(a).word} {b}" for a, b in bases.items())
    family = st.radio(
        "x-axis family", (WIDTH, *bases), key="transfer_family", horizontal=True,
        help=f"Width: curves per width at the ladders' bases ({at}). Another axis: curves "
             "per rung at one width, and the optimal LR along it.",
    )
    return str(family)


def runs_for_width(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the width family draws (every ladder at its base)."""
    return ladder_charts.at_bases(runs)


def _section(report: TransferReport | None, axis: str) -> LadderReport | None:
    return None if report is None else report.ladders.get(axis)


def render_ladder(axis_name: str, runs: pd.DataFrame, report: TransferReport | None, loss: str,
                  reanalyse: Callable[[int], TransferReport | None] | None = None) -> None:
    """Draw one ladder family: curves per rung, the axis's verdict, optimum vs the axis.

    With several widths, a picker chooses the width the section reads (the report's default
    is the smallest); `reanalyse(width)` gives the report at another one.
    """
    axis = service.get_axis(axis_name)
    section = _section(report, axis_name)
    if section is None:
        st.info(f"Waiting for finished runs at two {axis.word}s or more.")
        return
    widths = sorted(int(w) for w in runs["width"].dropna().unique())
    if reanalyse is not None and len(widths) > 1:
        width = int(st.selectbox(
            "Width", widths, index=widths.index(section.width) if section.width in widths else 0,
            key=f"transfer_{axis_name}_width",
            help=f"The width whose runs the {axis.word} curves, optima and verdict read."))
        if width != section.width:
            report = reanalyse(width)
            section = _section(report, axis_name)
            if section is None:
                st.info(f"No {axis.word} analysis at width {width} yet.")
                return
    # The verdict above the chart, both full width: side by side, the verdict's column was
    # ~150 px at 1024 px and broke its own headline mid-word.
    verdict_col = st.container()
    chart_col = st.container()
    with chart_col:
        st.plotly_chart(ladder_charts.ladder_curves_figure(runs, section, axis, section.width,
                                                           loss=loss),
                        key=f"transfer_{axis_name}_chart")
    with verdict_col:
        _ladder_verdict(section, axis)
    st.subheader(f"Optimal learning rate vs {axis.word} (width {section.width})")
    st.plotly_chart(ladder_charts.ladder_optimum_figure(section, axis),
                    key=f"transfer_{axis_name}_optimum")
    exponent_view.render(section, axis)


def _ladder_verdict(section: LadderReport, axis: Axis) -> None:
    """The axis's verdict, each parametrization's drift per doubling, the warnings."""
    word = axis.word
    help_text = (f"Slope of the best log2 LR against log2 {word} at a fixed width: how many LR "
                 f"doublings the optimum moves per {word} doubling. The judged table should "
                 "keep it near 0.")
    st.subheader(f"{axis.label} verdict")
    judged = charts.param_label(section.judged_on) if section.judged_on else "its judged table"
    verdict_view.render(section.verdict, section.reason, section.next_step,
                        subject=f"{axis.label} transfer", axis=axis.name,
                        qualifier=f" under {judged}")
    for param, d in section.parametrizations.items():
        st.metric(f"{charts.param_label(param)} drift",
                  "—" if d.drift_slope is None else f"{d.drift_slope:+.2f}", help=help_text)
        if d.drift_ci:
            st.caption(f"95% interval [{d.drift_ci[0]:+.2f}, {d.drift_ci[1]:+.2f}] log2 LR per "
                       f"{word} doubling")
    st.caption(f"Tolerance: ±{section.tolerance} log2 LR per {word} doubling; base {word} "
               f"{section.base}, width {section.width}.")
    for warning in section.warnings:
        st.warning(warning)
