"""Evidence charts of the µP doctor: pure functions `DoctorEvidence -> plotly Figure`.

The doctor's report (`python -m experiments doctor --json`, read as the engine's
`DoctorResult`) carries its evidence per finding:
the coordinate check's slope of log2 mean |activation| against log2 width per module and
step, and the update-size check's slope of log2 |dW|/|W| per weight next to the slope µP
prescribes for the weight's role. Nothing here touches Streamlit or the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import DoctorEvidence

_MAX_MODULES = 12  # the worst ones; a GPT has ~40 measured modules


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(xaxis_visible=False, yaxis_visible=False, height=200)
    return fig


def activation_slopes_figure(evidence: DoctorEvidence, height: int = 380) -> go.Figure:
    """Slope per step, one line per module (the worst `_MAX_MODULES` by max |slope|), with the
    tolerance band: a line leaving the band upwards is an activation that grows with width."""
    if not evidence.slopes:
        return _empty("no activation slopes recorded")
    by_module: dict[str, list[tuple[int, float]]] = {}
    for s in evidence.slopes:
        by_module.setdefault(s.module, []).append((s.step, s.slope))
    worst = sorted(by_module, key=lambda m: -max(abs(v) for _, v in by_module[m]))
    roles = evidence.roles
    fig = go.Figure()
    for module in worst[:_MAX_MODULES]:
        points = sorted(by_module[module])
        fig.add_trace(go.Scatter(
            x=[t for t, _ in points], y=[v for _, v in points], mode="lines", name=module,
            line={"width": 3 if roles.get(module) == "readout" else 1.5},
            hovertemplate=f"{module}<br>step %{{x}}: slope %{{y:+.2f}}<extra></extra>"))
    tol = 0.15 if evidence.tolerance is None else evidence.tolerance
    for y in (tol, -tol):
        fig.add_hline(y=y, line_dash="dot", line_color="grey")
    fig.update_layout(height=height, xaxis_title="step", yaxis_title="slope vs log2 width",
                      legend_title="module (readout bold)", margin={"t": 30})
    return fig


def update_slopes_figure(evidence: DoctorEvidence, height: int = 340) -> go.Figure:
    """Measured slope of log2 |dW|/|W| per weight (bars, red when off) next to µP's (marks)."""
    judged = evidence.judgements
    if not judged:
        return _empty("no update sizes recorded")
    names = [j.param for j in judged]
    colors = ["#2e7d32" if j.ok else "#c62828" for j in judged]
    fig = go.Figure([
        go.Bar(x=names, y=[j.slope for j in judged], marker_color=colors, name="measured",
               hovertemplate="%{x}<br>measured slope %{y:+.2f}<extra></extra>"),
        go.Scatter(x=names, y=[j.expected for j in judged], mode="markers",
                   marker={"symbol": "line-ew-open", "size": 28, "color": "black",
                           "line": {"width": 3}},
                   name="µP prescribes", hovertemplate="%{x}<br>µP: %{y:+.2f}<extra></extra>"),
    ])
    fig.update_layout(height=height, yaxis_title="slope of |dW|/|W| vs log2 width",
                      margin={"t": 30}, bargap=0.4)
    return fig


def ablation_figure(evidence: DoctorEvidence, height: int = 260) -> go.Figure:
    """How far the worst measurement stayed out of range as the model is, then with each
    ingredient switched to µP's (0 = that switch alone restored flat slopes). Every bar is
    labelled, so a switch that fixes everything (a bar of height 0) still shows."""
    tried = evidence.tried
    if not tried:
        return _empty("no ingredient differed from µP's")
    labels = [t.label for t in tried]
    values = [t.excess for t in tried]
    colors = ["#2e7d32" if t.healthy else "#9e9e9e" for t in tried]
    words = ["fixes it" if t.healthy else f"{t.excess:.2f} left" for t in tried]
    if evidence.before is not None:
        labels, values = ["as it is", *labels], [evidence.before, *values]
        colors, words = ["#c62828", *colors], [f"{evidence.before:.2f}", *words]
    fig = go.Figure(go.Bar(
        x=labels, y=values, marker_color=colors, text=words, textposition="outside",
        cliponaxis=False, hovertemplate="%{x}: worst excess %{y:.2f}<extra></extra>"))
    top = max([*values, 0.1])
    fig.update_yaxes(range=[0, 1.25 * top])
    fig.update_layout(height=height, yaxis_title="worst |slope| left", margin={"t": 30},
                      showlegend=False)
    return fig
