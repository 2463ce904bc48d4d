"""The Transfer page's loss forecast: best loss against width, fitted and extrapolated.

Per parametrization (`experiments.analysis.forecast`): the ladder's best losses as points with
their seed bands (± one seed standard deviation), the fitted L(w) = L_inf + A * w^-alpha, and
the forecast at the target width with its 95% interval, on a log width axis; then one sentence
comparing µP with tuned SP there (each width's SP point is at that width's own best LR, so SP
is tuned per width: the fair contrast). The figure and the sentence are pure functions of the
report, tested without a browser; `render` draws them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.widgets.charts import PARAM_COLORS, TEMPLATE, _empty, param_label
from experiments.service import loss_words

if TYPE_CHECKING:  # typing only
    from experiments.service import Forecast, TransferReport

JUDGED, COMPARED = "mup", "sp"
# Points along each fitted curve (log-spaced between the narrowest rung and the target).
CURVE_POINTS = 60


def _traces(param: str, f: Forecast, right: float) -> list[go.Scatter]:
    """One parametrization's rungs, fitted curve and target forecast."""
    color = PARAM_COLORS.get(param, "#555555")
    label = param_label(param)
    widths = [p.width for p in f.points]
    sd = [p.seed_sd or 0.0 for p in f.points]
    name = label if f.refused is None else f"{label} (no forecast)"
    out = [go.Scatter(
        x=widths, y=[p.loss for p in f.points], mode="markers", name=name, legendgroup=param,
        marker={"color": color, "size": 9},
        error_y={"type": "data", "array": sd, "color": color, "thickness": 1.5, "width": 5},
        hovertemplate="width %{x}<br>best loss %{y:.4g}<extra>" + label + "</extra>")]
    if f.params is None or not widths:
        return out
    xs = np.geomspace(min(widths), max(right, max(widths)), CURVE_POINTS)
    ys = [f.predict(float(x)) for x in xs]
    alpha = f.params["alpha"]
    out.append(go.Scatter(x=xs, y=ys, mode="lines", legendgroup=param, line={"color": color,
                          "dash": "dash", "width": 2}, hoverinfo="skip",
                          name=f"{label} fit, alpha {alpha:.2f}"))
    for a in f.at:
        lo = a.loss if a.ci_low is None else a.ci_low
        hi = a.loss if a.ci_high is None else a.ci_high
        out.append(go.Scatter(
            x=[a.width], y=[a.loss], mode="markers", legendgroup=param,
            name=f"{label} forecast at {a.width}",
            marker={"color": color, "size": 13, "symbol": "diamond-open", "line": {"width": 2}},
            error_y={"type": "data", "symmetric": False, "array": [hi - a.loss],
                     "arrayminus": [a.loss - lo], "color": color, "thickness": 2, "width": 8},
            hovertemplate=(f"width %{{x}}<br>forecast %{{y:.4g}} [{lo:.4g}, {hi:.4g}]"
                           f"<extra>{label}</extra>")))
    return out


def forecast_figure(forecast: dict[str, Forecast], loss: str = "", height: int = 380) -> go.Figure:
    """Best loss against width (log axis): rungs with seed bands, fits, target forecasts."""
    if not any(f.points for f in forecast.values()):
        return _empty("No width has a best loss yet.")
    right = max((a.width for f in forecast.values() for a in f.at), default=0)
    fig = go.Figure()
    for param, f in forecast.items():
        for trace in _traces(param, f, right):
            fig.add_trace(trace)
    ticks = sorted({p.width for f in forecast.values() for p in f.points}
                   | {a.width for f in forecast.values() for a in f.at})
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[str(w) for w in ticks],
                     title_text="width")
    fig.update_yaxes(title_text=f"best {loss_words(loss)} loss" if loss else "best loss")
    fig.update_layout(template=TEMPLATE, height=height,
                      margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return fig


def forecast_sentence(report: TransferReport) -> str | None:
    """µP against tuned SP at the target, in loss: one sentence; None without a target."""
    mup, sp = report.forecast.get(JUDGED), report.forecast.get(COMPARED)
    if mup is None or report.target_width is None:
        return None
    width, words = report.target_width, loss_words(report.loss)
    if mup.refused is not None:
        return f"No {param_label(JUDGED)} loss forecast at width {width}: {mup.refused}."
    m = mup.point_at(width)
    s = None if sp is None else sp.point_at(width)
    if m is None:
        return None
    head = (f"At width {width}, {param_label(JUDGED)} is forecast to reach a {words} loss of "
            f"{m.loss:.4g} [{m.ci_low:.4g}, {m.ci_high:.4g}]")
    if sp is None:
        return head + "."
    if s is None or s.ci_low is None or s.ci_high is None or m.ci_low is None or m.ci_high is None:
        return head + f"; tuned {param_label(COMPARED)} has no forecast ({sp.refused})."
    tail = f" and tuned {param_label(COMPARED)} {s.loss:.4g} [{s.ci_low:.4g}, {s.ci_high:.4g}]"
    if m.ci_high < s.ci_low:
        return head + tail + f": {param_label(JUDGED)} is forecast better, beyond both intervals."
    if s.ci_high < m.ci_low:
        return head + tail + f": tuned {param_label(COMPARED)} is forecast better, beyond both intervals."
    return head + tail + ": the intervals overlap, so the ladder cannot tell them apart."


def render(report: TransferReport | None) -> None:
    """The section: the chart, the sentence, and which loss it is."""
    if report is None or not report.forecast:
        return
    st.subheader("Best loss vs width: the forecast")
    st.plotly_chart(forecast_figure(report.forecast, report.loss), key="transfer_forecast")
    sentence = forecast_sentence(report)
    if sentence:
        st.markdown(sentence)
    for param, f in report.forecast.items():
        if f.refused is not None:
            st.caption(f"{param_label(param)}: no forecast: {f.refused}")
