"""Chart builders: pure functions `data -> plotly Figure`.

Nothing here touches Streamlit, the store or the engine, so every chart is unit-tested without
a browser. Inputs are the engine's DataFrames (runs, metrics, coord-check tables, the transfer
report's per-width optima). What a curve *is* (which runs count, "diverged", the seed mean,
the order of parametrizations) comes from `experiments.analysis`, so the chart draws the curves
the verdict is computed on; the only work done here is what a chart needs to draw: picking
colours, placing markers, and thinning long curves.

Colour language, shared by every page:
- width is a sequential scale (narrow = dark purple, wide = yellow-green), the same width
  always gets the same colour within a chart;
- SP and µP have one colour each when they share a chart (`PARAM_COLORS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from experiments.analysis import grid_optima, param_order, seed_summary
from experiments.spec.sweep import parametrization_label

WIDTH_COLORSCALE = "Viridis"
# The top of Viridis is a pale yellow that vanishes on a white page; stop short of it.
WIDTH_SCALE_STOP = 0.85
PARAM_COLORS = {"sp": "#E4572E", "mup": "#2E86AB"}
DIVERGED_SYMBOL = "x-thin-open"
OPTIMUM_SYMBOL = "star"
# Trace names the transfer chart gives its per-width markers (tests and legends read them).
DIVERGED_NAME = "diverged"
OPTIMUM_NAME = "optimum"
# A line with more points than this is thinned before drawing (the browser stays quick).
MAX_POINTS_PER_LINE = 400
TEMPLATE = "plotly_white"


def param_label(parametrization: str) -> str:
    """Display name of a parametrization ("mup" -> "µP"): the label its table carries."""
    return parametrization_label(parametrization)


def width_colors(widths: Iterable[int]) -> dict[int, str]:
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
    """A blank figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font_size=14
    )
    fig.update_layout(
        template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=300
    )
    return fig


def _loss_range(summary: pd.DataFrame) -> tuple[float, float]:
    """A y range that shows every trained point but is not flattened by one near-divergence."""
    lows = summary["loss_min"].dropna()
    highs = summary["loss_max"].dropna()
    if lows.empty:
        return 0.0, 1.0
    lo, hi = float(lows.min()), float(highs.max())
    means = summary["loss_mean"].astype(float)
    finite = means[np.isfinite(means)]
    if not finite.empty:
        # Cap the top at a few times the spread below the median: runs that almost blew up
        # would otherwise squeeze every interesting curve into a thin strip at the bottom.
        median = float(finite.median())
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

    One panel per parametrization (in `experiments.analysis.PARAM_ORDER`: SP left, µP right,
    as in TP5 Figure 1) with shared axes. Each width is a line through the seed means
    (`experiments.analysis.seed_summary`: a grid point where any seed diverged has no mean)
    with a min-max band over the seeds that trained; grid points with diverged runs are crosses
    along the top edge; each width's optimum is a star. Points carry customdata
    `[parametrization, width, log2_lr]` so a click can open that grid point's training curves.

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
    params = param_order(summary["parametrization"])
    colors = width_colors(summary["width"])
    y_range = _loss_range(summary)
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
            best = optima[(optima["parametrization"] == param) & (optima["width"] == width)]
            for trace in _width_traces(param, width, color, pts, best, y_range, col == 1):
                fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text="log2 learning rate", row=1, col=col)
    _add_marker_legend(fig)
    fig.update_yaxes(title_text=loss.replace("_", " "), range=list(y_range), row=1, col=1)
    fig.update_yaxes(range=list(y_range))
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


def _width_traces(
    param: str,
    width: int,
    color: str,
    pts: pd.DataFrame,
    best: pd.DataFrame,
    y_range: tuple[float, float],
    show_legend: bool,
) -> list[go.Scatter]:
    """One width's traces in one panel: seed band, mean line, diverged crosses, optimum star."""
    y_lo, y_hi = y_range
    group = f"w{width}"
    trained = pts[np.isfinite(pts["loss_mean"].astype(float))]
    traces = [
        *_band_traces(trained, color, group, y_hi),
        _mean_trace(param, width, color, trained, group, show_legend),
    ]
    bad = pts[pts["n_diverged"] > 0]
    if not bad.empty:
        traces.append(_diverged_trace(param, width, color, bad, group, y_hi - 0.04 * (y_hi - y_lo)))
    best = best.dropna(subset=["opt_log2_lr"])
    if not best.empty:
        traces.append(_optimum_trace(width, color, best, group, y_hi))
    return traces


def _band_traces(trained: pd.DataFrame, color: str, group: str, y_hi: float) -> list[go.Scatter]:
    """The min-max band across seeds: the upper edge, then the lower edge filled up to it."""
    edge = {"mode": "lines", "line_width": 0, "hoverinfo": "skip", "showlegend": False,
            "legendgroup": group}
    return [
        go.Scatter(x=trained["log2_lr"], y=trained["loss_max"].clip(upper=y_hi), **edge),
        go.Scatter(x=trained["log2_lr"], y=trained["loss_min"].clip(upper=y_hi), **edge,
                   fill="tonexty", fillcolor=_rgba(color, 0.18)),
    ]


def _mean_trace(
    param: str, width: int, color: str, trained: pd.DataFrame, group: str, show_legend: bool
) -> go.Scatter:
    """The seed-mean line of one width; each point carries [param, width, log2_lr]."""
    n = len(trained)
    return go.Scatter(
        x=trained["log2_lr"], y=trained["loss_mean"], mode="lines+markers",
        name=f"width {width}", legendgroup=group, showlegend=show_legend,
        line={"color": color, "width": 2}, marker={"color": color, "size": 7},
        customdata=np.column_stack([np.full(n, param), np.full(n, width), trained["log2_lr"]]),
        hovertemplate=(
            f"{param_label(param)}, width {width}<br>log2 LR %{{x:.2f}}"
            "<br>mean loss %{y:.4f}<extra></extra>"
        ),
    )


def _diverged_trace(
    param: str, width: int, color: str, bad: pd.DataFrame, group: str, y: float
) -> go.Scatter:
    """Crosses at height `y` over the grid points where at least one seed diverged."""
    n = len(bad)
    return go.Scatter(
        x=bad["log2_lr"], y=np.full(n, y), mode="markers",
        marker={"symbol": DIVERGED_SYMBOL, "size": 11, "color": color,
                "line": {"width": 2, "color": color}},
        name=DIVERGED_NAME, legendgroup=group, showlegend=False,
        customdata=np.column_stack(
            [np.full(n, param), np.full(n, width), bad["log2_lr"], bad["n_diverged"],
             bad["n_seeds"]]
        ),
        hovertemplate=(
            f"{param_label(param)}, width {width}<br>log2 LR %{{x:.2f}}"
            "<br>diverged: %{customdata[3]} of %{customdata[4]} seeds<extra></extra>"
        ),
    )


def _optimum_trace(width: int, color: str, best: pd.DataFrame, group: str, y_hi: float) -> go.Scatter:
    """The star at one width's optimum (its loss clipped into the visible range)."""
    return go.Scatter(
        x=best["opt_log2_lr"], y=best["best_loss"].clip(upper=y_hi), mode="markers",
        marker={"symbol": OPTIMUM_SYMBOL, "size": 16, "color": color,
                "line": {"width": 1.5, "color": "black"}},
        name=OPTIMUM_NAME, legendgroup=group, showlegend=False,
        hovertemplate=(
            f"optimum, width {width}<br>log2 LR %{{x:.2f}}"
            "<br>loss %{y:.4f}<extra></extra>"
        ),
    )


def _add_marker_legend(fig: go.Figure) -> None:
    """Two legend-only entries that explain the star and the cross once."""
    for symbol, label in ((OPTIMUM_SYMBOL, "optimum (per width)"), (DIVERGED_SYMBOL, "diverged run")):
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", name=label,
                marker={"symbol": symbol, "size": 12, "color": "grey",
                        "line": {"width": 2, "color": "black" if symbol == OPTIMUM_SYMBOL else "grey"}},
            ),
            row=1, col=1,
        )


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


def log_ticks(values: Iterable[float]) -> dict[str, object]:
    """Tick settings of a log axis over `values`: labels at powers of ten when they span a
    decade or more (plotly otherwise labels every minor tick 2..9), at 1-2-5 within one."""
    positive = [float(v) for v in values if v is not None and float(v) > 0]
    if not positive:
        return {}
    span = math.log10(max(positive)) - math.log10(min(positive))
    return {"dtick": 1, "exponentformat": "power"} if span >= 1 else {"dtick": "D2"}


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
                # A one-point curve (validation logged once) draws as a marker: a line of one
                # point draws nothing and would leave an empty legend entry.
                x=curve["step"], y=curve["value"], mode="lines" if len(curve) > 1 else "markers",
                name=f"{label} · {name}",
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


def coord_check_figure(table: pd.DataFrame, max_steps: int = 6, height: int = 360,
                       axis: str = "width") -> go.Figure:
    """Coordinate check small multiples: one panel per step, mean |activation| vs width (or
    vs depth, for a coordinate check over depth).

    Both axes are log scale (log-log), so a flat line (slope 0) is what µP (over width) and
    CompleteP (over depth) promise, and a rising line is an activation that blows up.

    Args:
        table: long table with columns step, module, `axis` (width or depth), value (mean
            |activation|).
        max_steps: at most this many step panels (evenly picked) to keep panels readable.
        height: figure height in pixels.
        axis: the x column, "width" or "depth".
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
    widths = sorted(int(w) for w in table[axis].unique())
    # Each module is listed once, from the first panel where it draws: a zero-initialised
    # readout has no point at step 0, yet it is the line that moves.
    listed: set[str] = set()
    for col, step in enumerate(steps, start=1):
        at_step = table[table["step"] == step]
        for module, color in zip(modules, palette, strict=True):
            pts = at_step[at_step["module"] == module].sort_values(axis)
            # Exact zeros (a zero-initialised readout before its first update) have no place
            # on a log axis; drawing them at a floor would squash every other line flat.
            pts = pts[pts["value"] > ZERO_ACTIVATION]
            if pts.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=pts[axis], y=pts["value"], mode="lines+markers", name=module,
                    legendgroup=module, showlegend=module not in listed,
                    line={"color": color, "width": 1.5},
                    marker={"size": 5, "color": color},
                    hovertemplate=f"{module}<br>{axis} %{{x}}<br>mean |x| %{{y:.3g}}<extra>step {step}</extra>",
                ),
                row=1, col=col,
            )
            listed.add(module)
        fig.update_xaxes(type="log", tickvals=widths, ticktext=[str(w) for w in widths], row=1, col=col)
    fig.update_yaxes(type="log", **log_ticks(table["value"]))
    fig.update_yaxes(title_text="mean |activation|", row=1, col=1)
    fig.update_xaxes(title_text=axis, row=1, col=1)
    fig.update_layout(
        template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"title": {"text": "module"}},
    )
    return fig
