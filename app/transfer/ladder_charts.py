"""Ladder charts for the Transfer page (depth, and any other registered axis): pure
`data -> Figure` functions that take the axis.

A sweep with a ladder on an axis is shown along it at one fixed width (the report section's
`width`): final loss vs log2 LR with one curve per rung, and the optimal LR vs the axis with its
drift line (log2 LR per doubling). Both reuse the width charts (`app.widgets.charts`) on a frame
where the axis's value stands in the width's column, then relabel the axis with its word: the
curves, bands, stars and drift line are drawn by the same code, so every axis reads the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from app.widgets import charts
from app.widgets.tables import DRIFT_COLUMNS, WIDTH_COLUMNS
from experiments import service

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import Axis, LadderReport


def ladders(runs: pd.DataFrame) -> dict[str, int]:
    """{axis name: base} of every ladder other than width in the runs."""
    return service.ladder_bases(runs)


def at_bases(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the width family shows: every ladder at its base (all runs without one)."""
    return service.at_bases(runs, ladders(runs))


def axis_as_width(runs: pd.DataFrame, axis: Axis, width: int) -> pd.DataFrame:
    """The runs at `width` (other ladders at their bases), with their value on `axis` in the
    `width` column (the charts' x family)."""
    at = service.at_bases(runs, ladders(runs), skip=axis.name)
    at = at[at["width"] == width].copy()
    at["width"] = at[axis.column].astype(int)
    return at


def ladder_frames(section: LadderReport | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ladder section as (optima, drift) frames shaped like `tables.report_frames` (the rung
    in the `width` column); empty frames without a section."""
    rows: list[dict[str, Any]] = []
    drifts: list[dict[str, Any]] = []
    for param, d in (section.parametrizations if section is not None else {}).items():
        low, high = d.drift_ci if d.drift_ci else (None, None)
        drifts.append({"parametrization": param, "drift_slope": d.drift_slope,
                       "drift_ci_low": low, "drift_ci_high": high})
        rows += [{"parametrization": param, "width": o.value, "opt_log2_lr": o.opt_log2_lr,
                  "ci_low": o.ci_low, "ci_high": o.ci_high, "best_loss": o.best_loss}
                 for o in d.points]
    optima = pd.DataFrame(rows, columns=WIDTH_COLUMNS)
    for col in ("opt_log2_lr", "ci_low", "ci_high", "best_loss"):
        optima[col] = pd.to_numeric(optima[col], errors="coerce")
    return optima, pd.DataFrame(drifts, columns=DRIFT_COLUMNS)


def as_axis(fig: go.Figure, axis: Axis) -> go.Figure:
    """Relabel a width chart as a chart along `axis`: trace names, hover texts, legend, x."""
    word = axis.word
    for trace in fig.data:
        for attr in ("name", "hovertemplate"):
            text = getattr(trace, attr, None)
            if isinstance(text, str):
                setattr(trace, attr, text.replace("width", word))
    if fig.layout.legend.title.text == "width":
        fig.update_layout(legend_title_text=word)
    fig.for_each_xaxis(lambda ax: ax.update(title_text=word)
                       if ax.title.text == "width" else None)
    return fig


def ladder_curves_figure(runs: pd.DataFrame, section: LadderReport | None, axis: Axis,
                         width: int, loss: str = "final_train_loss",
                         height: int = 620) -> go.Figure:
    """Final loss vs log2 LR at `width`, one curve per rung (panels per parametrization)."""
    optima, _ = ladder_frames(section)
    fig = charts.transfer_figure(axis_as_width(runs, axis, width),
                                 optima if not optima.empty else None, loss=loss, height=height)
    return as_axis(fig, axis)


def ladder_optimum_figure(section: LadderReport | None, axis: Axis) -> go.Figure:
    """Optimal log2 LR vs the axis per parametrization, with intervals and the drift line."""
    optima, drift = ladder_frames(section)
    return as_axis(charts.optimum_figure(optima, drift), axis)
