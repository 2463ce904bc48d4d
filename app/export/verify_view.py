"""A verification's result as a comparison: a sentence and a small chart (pure, tested).

What a reader wants from a verification at the target width: the loss µP reached at the
transferred LR (and whether a neighbouring LR did better: the bracket), the loss the SP
baseline reached at its own extrapolated LR, which of the two is better and by how much, in
loss and in units of the seed-to-seed noise (a gap smaller than twice the noise cannot be told
apart from a reseed). A loss forecast, where the report carries one, is drawn beside them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

from app.export.bundles import LOSS_WORDS
from app.widgets.charts import PARAM_COLORS, TEMPLATE, param_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import VerifyEstimate, VerifyPoint, VerifyReport

# A gap under this many seed-noise units is called "within the seed noise".
NOISE_UNITS = 2.0


def seed_noise(*points: VerifyPoint | None) -> float | None:
    """The pooled seed-to-seed standard deviation of the final loss over `points` (ddof 1);
    None when no point has two finished seeds."""
    variances = []
    for p in points:
        seeds = [x for x in (p.seed_losses if p is not None else []) if x is not None]
        if len(seeds) >= 2:
            variances.append(float(np.var(seeds, ddof=1)))
    return math.sqrt(sum(variances) / len(variances)) if variances else None


def forecast_of(report: VerifyReport) -> dict[str, Any] | None:
    """The report's loss forecast (`forecast` in the verify JSON), when it carries one."""
    check = report.forecast
    return None if check is None else check.model_dump(mode="json")


def _transferred(report: VerifyReport) -> VerifyPoint | None:
    return next((p for p in report.points if p.offset_steps == 0), None)


def bracket_sentence(report: VerifyReport) -> str:
    """Where µP's own optimum at the target lies against the transferred LR."""
    name = param_label(report.parametrization)
    if report.transferred_loss is None:
        return (f"At the transferred LR 2^{report.transferred_log2_lr:.2f} {name} diverged at "
                f"width {report.target_width:,}: the LR is too large for the target.")
    words = LOSS_WORDS.get(report.loss, report.loss)
    text = (f"At width {report.target_width:,}, {name} at the transferred LR "
            f"2^{report.transferred_log2_lr:.2f} reached a {words} of {report.transferred_loss:.4f}")
    if report.best_log2_lr is None or report.best_loss is None:
        return text + "."
    if report.loss_gap is not None and report.loss_gap <= 0:
        return text + ", the best of the bracket it was tried in."
    return (text + f"; the bracket's best LR 2^{report.best_log2_lr:.2f} reached "
            f"{report.best_loss:.4f} ({report.loss_gap or 0:.4f} lower), "
            + ("within one grid step, so the transferred LR holds."
               if report.within_one_step else "more than one grid step away."))


def baseline_sentence(report: VerifyReport) -> str:
    """µP at the transferred LR against the SP baseline: which is better, by how much, in
    loss and in seed noise."""
    sp, mine = report.sp_baseline, _transferred(report)
    name = param_label(report.parametrization)
    if sp is None:
        return "No SP baseline was trained (the sweep has no SP optimum to extrapolate from)."
    where = f"the SP baseline at its extrapolated LR 2^{sp.log2_lr:.2f}"
    if sp.loss is None:
        return f"{where[0].upper()}{where[1:]} diverged: {name} is better."
    if report.transferred_loss is None:
        return f"{where[0].upper()}{where[1:]} reached {sp.loss:.4f} while {name} diverged: SP is better."
    gap = sp.loss - report.transferred_loss
    better, worse = (name, "SP") if gap > 0 else ("SP", name)
    rel = abs(gap) / max(sp.loss, report.transferred_loss)
    noise = seed_noise(sp, mine)
    if noise is None or noise == 0:
        noise_words = "with one seed the seed noise is not measured"
    elif abs(gap) < NOISE_UNITS * noise:
        noise_words = (f"{abs(gap) / noise:.1f}x the seed noise ({noise:.4f}), less than "
                       f"{NOISE_UNITS:g}x: with these seeds the two cannot be told apart")
    else:
        noise_words = f"{abs(gap) / noise:.1f}x the seed noise ({noise:.4f})"
    return (f"{where[0].upper()}{where[1:]} reached {sp.loss:.4f} against {name}'s "
            f"{report.transferred_loss:.4f}: {better} is better than {worse} by {abs(gap):.4f} "
            f"({rel:.0%} of the larger loss), {noise_words}.")


def comparison_figure(report: VerifyReport, height: int = 300) -> go.Figure:
    """Final loss against log2 LR at the target: µP's bracket (seed mean, min-max bars), the
    transferred LR starred, the SP baseline as one point, the forecast where there is one.
    Diverged points are left out (the sentence says so); only traces with a point are listed."""
    fig = go.Figure()
    name = param_label(report.parametrization)
    finished = [p for p in report.points if p.loss is not None]
    if finished:
        fig.add_trace(_point_trace(finished, f"{name} bracket", PARAM_COLORS.get(
            report.parametrization, "#2E86AB"), "circle", mode="lines+markers"))
    mine = _transferred(report)
    if mine is not None and mine.loss is not None:
        fig.add_trace(_point_trace([mine], f"{name} at the transferred LR", PARAM_COLORS.get(
            report.parametrization, "#2E86AB"), "star", size=16))
    sp = report.sp_baseline
    if sp is not None and sp.loss is not None:
        fig.add_trace(_point_trace([sp], "SP baseline", PARAM_COLORS["sp"], "diamond", size=13))
    forecast = forecast_of(report)
    if forecast is not None and isinstance(forecast.get("loss"), int | float):
        fig.add_hline(y=float(forecast["loss"]), line_dash="dot", line_color="#555",
                      annotation_text="forecast", annotation_position="top left")
    fig.update_layout(
        template=TEMPLATE, height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="log2 learning rate", yaxis_title=LOSS_WORDS.get(report.loss, report.loss),
        legend={"orientation": "h", "y": -0.3}, title=f"Width {report.target_width:,}",
    )
    return fig


def _point_trace(points: list[VerifyPoint], label: str, color: str, symbol: str,
                 size: int = 9, mode: str = "markers") -> go.Scatter:
    """Seed-mean losses with the seeds' min-max as error bars."""
    xs = [p.log2_lr for p in points]
    ys = [float(p.loss) for p in points if p.loss is not None]
    lows = [y - min(x for x in p.seed_losses if x is not None) for p, y in zip(points, ys, strict=True)]
    highs = [max(x for x in p.seed_losses if x is not None) - y for p, y in zip(points, ys, strict=True)]
    return go.Scatter(
        x=xs, y=ys, mode=mode, name=label, marker={"color": color, "symbol": symbol, "size": size},
        line={"color": color},
        error_y={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows,
                 "thickness": 1, "width": 3},
        hovertemplate="log2 LR %{x:.2f}<br>loss %{y:.4f}<extra>" + label + "</extra>",
    )


def cost_words(est: VerifyEstimate, width: int) -> str:
    """A `VerifyEstimate` in one sentence: what will train, how long, how much memory."""
    from app.widgets.tables import fmt_duration

    timed = ("timed from this sweep's own widest runs" if est.calibrated
             else "a rough estimate from the model's FLOPs")
    lrs = (f"{est.points - 1} µP learning rates and the SP baseline" if est.baseline
           else f"{est.points} learning rates")
    return (f"**Cost**: {est.runs} runs ({lrs}, x {est.seeds} seed(s), "
            f"{est.steps:,} steps each) at width {width:,}: about "
            f"**{fmt_duration(est.est_compute_s)}** on the {est.device.upper()} ({timed}), "
            f"{est.peak_memory_bytes / 2**20:,.0f} MiB per run.")
