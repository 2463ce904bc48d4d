"""Depth-transfer charts for the Transfer page: pure `data -> Figure` functions.

A sweep with a depth ladder is shown over depth at one fixed width (the report's `depth.width`):
final loss vs log2 LR with one curve per depth, and the optimal LR vs depth with its drift line
(log2 LR per depth doubling). Both reuse the width charts (`app.widgets.charts`) on a frame where the
depth stands in the width's column, then relabel the axis: the curves, bands, stars and drift
line are drawn by the same code, so the two families read the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from app.widgets import charts
from app.widgets.tables import DRIFT_COLUMNS, WIDTH_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import TransferReport


def has_depth_ladder(runs: pd.DataFrame) -> bool:
    """Whether the runs are a depth ladder: a base depth and more than one depth."""
    if "depth" not in runs.columns or "base_depth" not in runs.columns:
        return False
    return bool(runs["base_depth"].notna().any() and runs["depth"].dropna().nunique() > 1)


def base_depth_of(runs: pd.DataFrame) -> int | None:
    """The ladder's base depth (None without a ladder)."""
    if not has_depth_ladder(runs):
        return None
    return int(runs["base_depth"].dropna().iloc[0])


def at_base_depth(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the width family shows: a ladder's runs at its base depth (else all runs)."""
    base = base_depth_of(runs)
    return runs if base is None else runs[runs["depth"] == base]


def depth_as_width(runs: pd.DataFrame, width: int) -> pd.DataFrame:
    """The runs at `width`, with their depth in the `width` column (the charts' x family)."""
    at = runs[runs["width"] == width].copy()
    at["width"] = at["depth"].astype(int)
    return at


def depth_frames(report: TransferReport | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's depth section as (optima, drift) frames shaped like `tables.report_frames`
    (the depth in the `width` column); empty frames without a depth section."""
    depth = None if report is None else report.depth
    rows: list[dict[str, Any]] = []
    drifts: list[dict[str, Any]] = []
    for param, d in (depth.parametrizations if depth is not None else {}).items():
        low, high = d.drift_ci if d.drift_ci else (None, None)
        drifts.append({"parametrization": param, "drift_slope": d.drift_slope,
                       "drift_ci_low": low, "drift_ci_high": high})
        rows += [{"parametrization": param, "width": o.depth, "opt_log2_lr": o.opt_log2_lr,
                  "ci_low": o.ci_low, "ci_high": o.ci_high, "best_loss": o.best_loss}
                 for o in d.depths]
    optima = pd.DataFrame(rows, columns=WIDTH_COLUMNS)
    for col in ("opt_log2_lr", "ci_low", "ci_high", "best_loss"):
        optima[col] = pd.to_numeric(optima[col], errors="coerce")
    return optima, pd.DataFrame(drifts, columns=DRIFT_COLUMNS)


def as_depth(fig: go.Figure) -> go.Figure:
    """Relabel a width chart as a depth chart: trace names, hover texts, legend and axis."""
    for trace in fig.data:
        for attr in ("name", "hovertemplate"):
            text = getattr(trace, attr, None)
            if isinstance(text, str):
                setattr(trace, attr, text.replace("width", "depth"))
    if fig.layout.legend.title.text == "width":
        fig.update_layout(legend_title_text="depth")
    fig.for_each_xaxis(lambda ax: ax.update(title_text="depth")
                       if ax.title.text == "width" else None)
    return fig


def depth_curves_figure(runs: pd.DataFrame, report: TransferReport | None, width: int,
                        loss: str = "final_train_loss", height: int = 620) -> go.Figure:
    """Final loss vs log2 LR at `width`, one curve per depth (panels per parametrization)."""
    optima, _ = depth_frames(report)
    fig = charts.transfer_figure(depth_as_width(runs, width), optima if not optima.empty else None,
                                 loss=loss, height=height)
    return as_depth(fig)


def depth_optimum_figure(report: TransferReport | None) -> go.Figure:
    """Optimal log2 LR vs depth per parametrization, with intervals and the drift line."""
    optima, drift = depth_frames(report)
    return as_depth(charts.optimum_figure(optima, drift))
