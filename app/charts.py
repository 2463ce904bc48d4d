"""Chart builders: pure functions `data -> plotly Figure`.

Nothing here touches Streamlit, the store or the engine, so every chart is unit-tested without
a browser. Inputs are the engine's DataFrames (runs, metrics, coord-check tables, the transfer
report's per-width optima); the only work done here is what a chart needs to draw: grouping
seeds into a mean and a band, picking colours, and thinning long curves.

Colour language, shared by every page:
- width is a sequential scale (narrow = dark purple, wide = yellow-green), the same width
  always gets the same colour within a chart;
- SP and µP have one colour each when they share a chart (`PARAM_COLORS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

WIDTH_COLORSCALE = "Viridis"
# The top of Viridis is a pale yellow that vanishes on a white page; stop short of it.
WIDTH_SCALE_STOP = 0.85
PARAM_COLORS = {"sp": "#E4572E", "mup": "#2E86AB"}
PARAM_LABELS = {"sp": "SP (standard)", "mup": "µP"}
DIVERGED_SYMBOL = "x-thin-open"
OPTIMUM_SYMBOL = "star"
# A line with more points than this is thinned before drawing (the browser stays quick).
MAX_POINTS_PER_LINE = 400
TEMPLATE = "plotly_white"


def param_label(parametrization: str) -> str:
    """Display name of a parametrization ("mup" -> "µP")."""
    return PARAM_LABELS.get(parametrization, parametrization)


def param_order(names: Sequence[str]) -> list[str]:
    """SP first, then µP, then anything else alphabetically: SP is the baseline on the left."""
    rank = {"sp": 0, "mup": 1}
    return sorted(set(names), key=lambda n: (rank.get(n, 2), n))


def width_colors(widths: Sequence[int]) -> dict[int, str]:
    """One colour per width from the sequential width scale, spaced evenly in log2(width)."""
    unique = sorted({int(w) for w in widths})
    if not unique:
        return {}
    if len(unique) == 1:
        return {unique[0]: sample_colorscale(WIDTH_COLORSCALE, [0.0])[0]}
    logs = [math.log2(w) for w in unique]
    lo, hi = logs[0], logs[-1]
    positions = [WIDTH_SCALE_STOP * (x - lo) / (hi - lo) for x in logs]
    return dict(zip(unique, sample_colorscale(WIDTH_COLORSCALE, positions), strict=True))


def _rgba(color: str, alpha: float) -> str:
    """`rgb(r, g, b)` or `#rrggbb` -> `rgba(r, g, b, alpha)` for translucent bands."""
    if color.startswith("#"):
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in color[color.index("(") + 1 : -1].split(",")[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font_size=14
    )
    fig.update_layout(
        template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=300
    )
    return fig


def _is_diverged(runs: pd.DataFrame, loss: str) -> pd.Series:
    """A run counts as diverged when the engine says so or its loss is not a finite number."""
    values = pd.to_numeric(runs[loss], errors="coerce")
    finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    return (runs["state"] == "diverged") | ~finite


def seed_summary(runs: pd.DataFrame, loss: str = "final_train_loss") -> pd.DataFrame:
    """Group finished runs by (parametrization, width, log2_lr) across seeds.

    Args:
        runs: the store's runs frame (needs parametrization, width, log2_lr, state and `loss`).
        loss: which final loss column to summarise.

    Returns:
        One row per grid point: loss_mean, loss_min, loss_max over the seeds that trained
        (NaN when none did), n_seeds, n_diverged.
    """
    cols = ["parametrization", "width", "log2_lr"]
    finished = runs[runs["state"].isin(["done", "diverged"])].copy()
    if finished.empty:
        return pd.DataFrame(columns=[*cols, "loss_mean", "loss_min", "loss_max", "n_seeds", "n_diverged"])
    finished["_diverged"] = _is_diverged(finished, loss)
    finished["_loss"] = pd.to_numeric(finished[loss], errors="coerce").where(~finished["_diverged"])
    grouped = finished.groupby(cols, sort=True)
    out = grouped["_loss"].agg(loss_mean="mean", loss_min="min", loss_max="max")
    out["n_seeds"] = grouped.size()
    out["n_diverged"] = grouped["_diverged"].sum().astype(int)
    return out.reset_index()


def grid_optima(summary: pd.DataFrame) -> pd.DataFrame:
    """The best grid point per (parametrization, width) from a `seed_summary` table.

    Used when no transfer report is available yet; the report's own optima (a quadratic fit
    around the best grid point) are preferred when given.
    """
    ok = summary.dropna(subset=["loss_mean"])
    if ok.empty:
        return pd.DataFrame(columns=["parametrization", "width", "opt_log2_lr", "best_loss"])
    idx = ok.groupby(["parametrization", "width"])["loss_mean"].idxmin()
    best = ok.loc[idx, ["parametrization", "width", "log2_lr", "loss_mean"]]
    return best.rename(columns={"log2_lr": "opt_log2_lr", "loss_mean": "best_loss"}).reset_index(drop=True)


def _loss_range(summary: pd.DataFrame) -> tuple[float, float]:
    """A y range that shows every trained point but is not flattened by one near-divergence."""
    lows = summary["loss_min"].dropna()
    highs = summary["loss_max"].dropna()
    if lows.empty:
        return 0.0, 1.0
    lo, hi = float(lows.min()), float(highs.max())
    median = float(summary["loss_mean"].dropna().median())
    # Cap the top at a few times the spread below the median: runs that almost blew up would
    # otherwise squeeze every interesting curve into a thin strip at the bottom.
    hi = min(hi, median + 3.0 * max(median - lo, 1e-6))
    pad = 0.06 * max(hi - lo, 1e-6)
    return lo - pad, hi + 2 * pad


def transfer_figure(
    runs: pd.DataFrame,
    optima: pd.DataFrame | None = None,
    loss: str = "final_train_loss",
    height: int = 460,
) -> go.Figure:
    """The signature µTransfer chart: final loss vs log2 LR, one curve per width.

    One panel per parametrization (SP left, µP right) with shared axes. Each width is a line
    through the seed means with a min-max band; diverged runs are crosses along the top edge;
    each width's optimum is a star. Points carry customdata `[parametrization, width,
    log2_lr]` so a click can open that grid point's training curves.

    Args:
        runs: the store's runs frame.
        optima: per-width optima (parametrization, width, opt_log2_lr, best_loss), e.g. from the
            transfer report; when None the best grid point per width is marked.
        loss: the final-loss column to plot.
        height: figure height in pixels.

    Returns:
        The figure (an explanatory empty figure when nothing has finished yet).
    """
    summary = seed_summary(runs, loss)
    if summary.empty:
        return _empty("No finished runs yet: the chart fills in as runs complete.")
    if optima is None or optima.empty:
        optima = grid_optima(summary)
    params = param_order(summary["parametrization"].unique())
    colors = width_colors(summary["width"].unique())
    y_lo, y_hi = _loss_range(summary)
    y_diverged = y_hi - 0.04 * (y_hi - y_lo)

    fig = make_subplots(
        rows=1,
        cols=len(params),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[param_label(p) for p in params],
    )
    for col, param in enumerate(params, start=1):
        for width, color in colors.items():
            pts = summary[(summary["parametrization"] == param) & (summary["width"] == width)]
            if pts.empty:
                continue
            group = f"w{width}"
            first_panel = col == 1
            band = pts.dropna(subset=["loss_mean"])
            # Min-max band across seeds: upper edge, then lower edge filled up to it.
            fig.add_trace(
                go.Scatter(
                    x=band["log2_lr"], y=band["loss_max"].clip(upper=y_hi), mode="lines",
                    line_width=0, hoverinfo="skip", showlegend=False, legendgroup=group,
                ),
                row=1, col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=band["log2_lr"], y=band["loss_min"].clip(upper=y_hi), mode="lines", line_width=0,
                    fill="tonexty", fillcolor=_rgba(color, 0.18), hoverinfo="skip",
                    showlegend=False, legendgroup=group,
                ),
                row=1, col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=band["log2_lr"], y=band["loss_mean"], mode="lines+markers",
                    name=f"width {width}", legendgroup=group, showlegend=first_panel,
                    line={"color": color, "width": 2}, marker={"color": color, "size": 7},
                    customdata=np.column_stack(
                        [np.full(len(band), param), np.full(len(band), width), band["log2_lr"]]
                    ),
                    hovertemplate=(
                        f"{param_label(param)}, width {width}<br>log2 LR %{{x:.2f}}"
                        "<br>mean loss %{y:.4f}<extra></extra>"
                    ),
                ),
                row=1, col=col,
            )
            bad = pts[pts["n_diverged"] > 0]
            if not bad.empty:
                fig.add_trace(
                    go.Scatter(
                        x=bad["log2_lr"], y=np.full(len(bad), y_diverged), mode="markers",
                        marker={"symbol": DIVERGED_SYMBOL, "size": 11, "color": color,
                                "line": {"width": 2, "color": color}},
                        name="diverged", legendgroup=group, showlegend=False,
                        customdata=np.column_stack(
                            [np.full(len(bad), param), np.full(len(bad), width), bad["log2_lr"],
                             bad["n_diverged"], bad["n_seeds"]]
                        ),
                        hovertemplate=(
                            f"{param_label(param)}, width {width}<br>log2 LR %{{x:.2f}}"
                            "<br>diverged: %{customdata[3]} of %{customdata[4]} seeds<extra></extra>"
                        ),
                    ),
                    row=1, col=col,
                )
            opt = optima[(optima["parametrization"] == param) & (optima["width"] == width)]
            opt = opt.dropna(subset=["opt_log2_lr"])
            if not opt.empty:
                fig.add_trace(
                    go.Scatter(
                        x=opt["opt_log2_lr"], y=opt["best_loss"].clip(upper=y_hi), mode="markers",
                        marker={"symbol": OPTIMUM_SYMBOL, "size": 16, "color": color,
                                "line": {"width": 1.5, "color": "black"}},
                        name="optimum", legendgroup=group, showlegend=False,
                        hovertemplate=(
                            f"optimum, width {width}<br>log2 LR %{{x:.2f}}"
                            "<br>loss %{y:.4f}<extra></extra>"
                        ),
                    ),
                    row=1, col=col,
                )
        fig.update_xaxes(title_text="log2 learning rate", row=1, col=col)
    # Two legend-only entries explain the markers once.
    for symbol, label in ((OPTIMUM_SYMBOL, "optimum (per width)"), (DIVERGED_SYMBOL, "diverged run")):
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=label,
                marker={"symbol": symbol, "size": 12, "color": "grey",
                        "line": {"width": 2, "color": "black" if symbol == OPTIMUM_SYMBOL else "grey"}},
            ),
            row=1, col=1,
        )
    fig.update_yaxes(title_text=loss.replace("_", " "), range=[y_lo, y_hi], row=1, col=1)
    fig.update_yaxes(range=[y_lo, y_hi])
    fig.update_xaxes(matches="x")  # one LR axis for both panels: optima compare by eye
    fig.update_layout(
        template=TEMPLATE,
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"title": {"text": "width"}, "groupclick": "togglegroup"},
        hovermode="closest",
        clickmode="event+select",
    )
    return fig


def optimum_figure(widths: pd.DataFrame, drift: pd.DataFrame | None = None, height: int = 380) -> go.Figure:
    """Optimal log2 LR vs width, per parametrization, with intervals and the drift line.

    Args:
        widths: one row per (parametrization, width): opt_log2_lr, ci_low, ci_high.
        drift: one row per parametrization with drift_slope (log2 LR per doubling of width);
            the drift line is the least-squares line, which passes through the mean point.
        height: figure height in pixels.

    Returns:
        The figure; a flat µP line and a falling SP line is what transfer looks like.
    """
    ok = widths.dropna(subset=["opt_log2_lr"]) if not widths.empty else widths
    if ok.empty:
        return _empty("No optimum found yet.")
    fig = go.Figure()
    all_widths = sorted(int(w) for w in ok["width"].unique())
    for param in param_order(ok["parametrization"].unique()):
        rows = ok[ok["parametrization"] == param].sort_values("width")
        color = PARAM_COLORS.get(param, "#555555")
        low = rows.get("ci_low", rows["opt_log2_lr"]).fillna(rows["opt_log2_lr"])
        high = rows.get("ci_high", rows["opt_log2_lr"]).fillna(rows["opt_log2_lr"])
        fig.add_trace(
            go.Scatter(
                x=rows["width"], y=rows["opt_log2_lr"], mode="markers", name=param_label(param),
                legendgroup=param, marker={"color": color, "size": 10},
                error_y={"type": "data", "symmetric": False,
                         "array": (high - rows["opt_log2_lr"]).clip(lower=0),
                         "arrayminus": (rows["opt_log2_lr"] - low).clip(lower=0),
                         "color": color, "thickness": 1.5, "width": 6},
                hovertemplate="width %{x}<br>optimal log2 LR %{y:.2f}<extra>" + param_label(param) + "</extra>",
            )
        )
        slope = None
        if drift is not None and not drift.empty:
            match = drift[drift["parametrization"] == param]["drift_slope"].dropna()
            slope = float(match.iloc[0]) if not match.empty else None
        if slope is not None and len(rows) >= 2:
            x_log = np.log2(rows["width"].astype(float))
            xs = np.array([x_log.min(), x_log.max()])
            ys = float(rows["opt_log2_lr"].mean()) + slope * (xs - float(x_log.mean()))
            fig.add_trace(
                go.Scatter(
                    x=2.0**xs, y=ys, mode="lines", name=f"{param_label(param)} drift {slope:+.2f}/doubling",
                    legendgroup=param, line={"color": color, "dash": "dash", "width": 2},
                    hoverinfo="skip",
                )
            )
    fig.update_xaxes(type="log", tickvals=all_widths, ticktext=[str(w) for w in all_widths], title_text="width")
    fig.update_yaxes(title_text="optimal log2 learning rate")
    fig.update_layout(template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return fig


def thin_curve(frame: pd.DataFrame, max_points: int = MAX_POINTS_PER_LINE, by: str = "step") -> pd.DataFrame:
    """Keep at most `max_points` evenly spaced rows of one curve, always keeping the last."""
    if len(frame) <= max_points:
        return frame
    frame = frame.sort_values(by)
    idx = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[idx]


def loss_curves_figure(
    metrics: pd.DataFrame,
    labels: dict[int, str] | None = None,
    colors: dict[int, str] | None = None,
    names: Sequence[str] = ("train_loss", "val_loss"),
    max_points: int = MAX_POINTS_PER_LINE,
    height: int = 340,
    title: str | None = None,
) -> go.Figure:
    """Training curves: one line per (run, metric name), thinned to `max_points` each.

    Args:
        metrics: long metrics (run_id, step, name, value).
        labels: legend label per run_id (default "run <id>").
        colors: line colour per run_id (default: plotly's qualitative cycle).
        names: which metric names to draw; validation lines are dashed.
        max_points: per-line cap after thinning.
        height: figure height in pixels.
        title: optional figure title.
    """
    wanted = metrics[metrics["name"].isin(list(names))] if not metrics.empty else metrics
    if wanted.empty:
        return _empty("No metrics recorded yet.")
    fig = go.Figure()
    labels = labels or {}
    for (run_id, name), curve in wanted.groupby(["run_id", "name"], sort=True):
        curve = thin_curve(curve.sort_values("step"), max_points)
        label = labels.get(run_id, f"run {run_id}")
        line: dict[str, object] = {"width": 2, "dash": "dot" if name.startswith("val") else "solid"}
        if colors and run_id in colors:
            line["color"] = colors[run_id]
        fig.add_trace(
            go.Scattergl(
                x=curve["step"], y=curve["value"], mode="lines", name=f"{label} · {name}",
                line=line, hovertemplate="step %{x}<br>%{y:.4f}<extra>" + f"{label} {name}" + "</extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 40 if title else 20, "b": 50},
        xaxis_title="step", yaxis_title="loss", title=title,
    )
    return fig


# Mean |activation| at or below this is a zero output (e.g. zero readout at init): not drawn.
ZERO_ACTIVATION = 1e-9


def coord_check_figure(table: pd.DataFrame, max_steps: int = 6, height: int = 360) -> go.Figure:
    """Coordinate check small multiples: one panel per step, mean |activation| vs width.

    Both axes are log scale (log-log), so a flat line (slope 0) is what µP promises and a
    rising line is an activation that blows up with width.

    Args:
        table: long table with columns step, module, width, value (mean |activation|).
        max_steps: at most this many step panels (evenly picked) to keep panels readable.
        height: figure height in pixels.
    """
    if table.empty:
        return _empty("No coordinate check yet.")
    steps = sorted(int(s) for s in table["step"].unique())
    if len(steps) > max_steps:
        steps = [steps[int(i)] for i in np.linspace(0, len(steps) - 1, max_steps).round()]
    modules = list(dict.fromkeys(table.sort_values("module", kind="stable")["module"]))
    palette = sample_colorscale("Turbo", [0.1 + 0.8 * i / max(len(modules) - 1, 1) for i in range(len(modules))])
    fig = make_subplots(
        rows=1, cols=len(steps), shared_yaxes=True, horizontal_spacing=0.02,
        subplot_titles=[f"step {s}" for s in steps],
    )
    widths = sorted(int(w) for w in table["width"].unique())
    for col, step in enumerate(steps, start=1):
        at_step = table[table["step"] == step]
        for module, color in zip(modules, palette, strict=True):
            pts = at_step[at_step["module"] == module].sort_values("width")
            # Exact zeros (a zero-initialised readout before its first update) have no place
            # on a log axis; drawing them at a floor would squash every other line flat.
            pts = pts[pts["value"] > ZERO_ACTIVATION]
            if pts.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=pts["width"], y=pts["value"], mode="lines+markers", name=module,
                    legendgroup=module, showlegend=col == 1, line={"color": color, "width": 1.5},
                    marker={"size": 5, "color": color},
                    hovertemplate=f"{module}<br>width %{{x}}<br>mean |x| %{{y:.3g}}<extra>step {step}</extra>",
                ),
                row=1, col=col,
            )
        fig.update_xaxes(type="log", tickvals=widths, ticktext=[str(w) for w in widths], row=1, col=col)
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="mean |activation|", row=1, col=1)
    fig.update_layout(
        template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"title": {"text": "module"}},
    )
    return fig
