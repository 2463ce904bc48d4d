"""The optimum of one loss-vs-log2(HP) curve: best grid point, refined by a local quadratic.

Tensor Programs V (Yang et al., 2022), Section 4 / Figure 1: µTransfer is judged by where the
loss-vs-log2(LR) curve of each width bottoms out. On a log2 grid the curve near its minimum is
close to a parabola, so we take the best grid point and refine it by the parabola through it and
its two immediate neighbours (non-uniform spacing is fine: it is an exact 3-point interpolation
in log2 units). No refinement happens when a neighbour is missing (grid edge), diverged (+inf),
or when the parabola is not convex / its vertex leaves the neighbours' span; the grid point
stands and the caller warns.

Everything here is pure numpy on small arrays; no pandas, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

# With one seed there is no noise estimate; the curvature interval then spans the log2 range
# where the fitted loss is within this fraction of its minimum (1% of the loss).
SINGLE_SEED_REL_DELTA = 0.01
# Floor of the curvature delta, in loss units, so a near-zero loss still gives an interval.
ABS_DELTA_FLOOR = 1e-4

Edge = Literal["lower", "upper"]


@dataclass(frozen=True)
class CurveOptimum:
    """The optimum of one curve.

    Attributes:
        opt_log2: the refined optimum (log2 units of the HP), or the best grid point.
        grid_log2: the best grid point.
        best_loss: loss at the optimum: the parabola's vertex value when refined, else the
            grid point's loss.
        refined: whether the quadratic refinement was used.
        edge: "lower"/"upper" when the best grid point is the first/last point with data.
        blocked: why refinement was skipped when it was not an edge: "diverged neighbour",
            "flat" (non-convex or degenerate parabola), "vertex outside span"; None otherwise.
        curvature: the parabola's leading coefficient a (loss per log2^2), when refined.
        lower_neighbour: the grid point below the best one (None at the lower edge).
        upper_neighbour: the grid point above the best one (None at the upper edge).
    """

    opt_log2: float
    grid_log2: float
    best_loss: float
    refined: bool
    edge: Edge | None
    blocked: str | None
    curvature: float | None
    lower_neighbour: float | None
    upper_neighbour: float | None


def parabola_through(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
    """Coefficients (a, b, c) of y = a x^2 + b x + c through three points (any spacing)."""
    x0, x1, x2 = (float(v) for v in xs)
    y0, y1, y2 = (float(v) for v in ys)
    # Newton divided differences: robust for unequal spacing.
    d01 = (y1 - y0) / (x1 - x0)
    d12 = (y2 - y1) / (x2 - x1)
    a = (d12 - d01) / (x2 - x0)
    b = d01 - a * (x0 + x1)
    c = y0 - a * x0 * x0 - b * x0
    return a, b, c


def curve_optimum(xs: np.ndarray, ys: np.ndarray) -> CurveOptimum | None:
    """The optimum of a loss curve sampled on a (possibly non-uniform) log2 grid.

    Args:
        xs: grid points in log2 units, strictly increasing (points without data removed).
        ys: loss at each point; +inf for diverged points. NaN is not allowed here.

    Returns:
        The optimum, or None when no point is finite (every run diverged).
    """
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    if xs.size == 0 or not np.isfinite(ys).any():
        return None
    i = int(np.argmin(ys))  # the first minimum on ties: the smaller, safer LR
    n = xs.size
    lower = float(xs[i - 1]) if i > 0 else None
    upper = float(xs[i + 1]) if i < n - 1 else None
    edge: Edge | None = None
    if n > 1 and i == 0:
        edge = "lower"
    elif n > 1 and i == n - 1:
        edge = "upper"

    def grid_point(blocked: str | None) -> CurveOptimum:
        return CurveOptimum(opt_log2=float(xs[i]), grid_log2=float(xs[i]),
                            best_loss=float(ys[i]), refined=False, edge=edge, blocked=blocked,
                            curvature=None, lower_neighbour=lower, upper_neighbour=upper)

    if n == 1:
        return grid_point("single point")
    if edge is not None:
        return grid_point(None)
    if not (np.isfinite(ys[i - 1]) and np.isfinite(ys[i + 1])):
        return grid_point("diverged neighbour")
    a, b, c = parabola_through(xs[i - 1 : i + 2], ys[i - 1 : i + 2])
    scale = max(abs(float(ys[i])), 1e-12)
    if not (a > 1e-12 * scale):
        return grid_point("flat")
    vertex = -b / (2 * a)
    if not (xs[i - 1] <= vertex <= xs[i + 1]):
        return grid_point("vertex outside span")
    vertex_loss = c - b * b / (4 * a)
    return CurveOptimum(opt_log2=float(vertex), grid_log2=float(xs[i]),
                        best_loss=float(min(vertex_loss, ys[i])), refined=True, edge=None,
                        blocked=None, curvature=float(a), lower_neighbour=lower,
                        upper_neighbour=upper)


def curvature_interval(opt: CurveOptimum, delta: float) -> tuple[float, float]:
    """A flatness interval around the optimum: where the fitted loss is within `delta` of it.

    For a refined optimum with parabola curvature a, the half-width is sqrt(delta / a), clipped
    to the neighbours' span (the parabola means nothing beyond it). Without a refinement the
    interval is the grid resolution: halfway to each neighbour, and one full neighbour spacing
    beyond a grid edge (the optimum may lie anywhere out there; the caller warns).

    Args:
        opt: the curve's optimum.
        delta: loss tolerance (the seed-mean's standard error, or 1% of the loss for one seed).
    """
    lower, upper = opt.lower_neighbour, opt.upper_neighbour
    if opt.refined and opt.curvature is not None and lower is not None and upper is not None:
        half = math.sqrt(max(delta, ABS_DELTA_FLOOR) / opt.curvature)
        return max(opt.opt_log2 - half, lower), min(opt.opt_log2 + half, upper)
    x = opt.grid_log2
    lo = x - (x - lower) / 2 if lower is not None else None
    hi = x + (upper - x) / 2 if upper is not None else None
    if lo is None and hi is None:
        return x, x
    if lo is None:
        assert hi is not None
        lo = x - 2 * (hi - x)  # one full spacing below the lower edge
    if hi is None:
        hi = x + 2 * (x - lo)  # one full spacing above the upper edge
    return lo, hi


def seed_delta(losses_at_best: np.ndarray, best_loss: float) -> float:
    """The loss tolerance of the curvature interval.

    Several seeds: the standard error of the seed mean at the best grid point (the loss
    differences the data can resolve). One seed: SINGLE_SEED_REL_DELTA of the loss.
    """
    finite = losses_at_best[np.isfinite(losses_at_best)]
    if finite.size >= 2:
        se = float(np.std(finite, ddof=1) / math.sqrt(finite.size))
        return max(se, ABS_DELTA_FLOOR)
    return max(SINGLE_SEED_REL_DELTA * abs(best_loss), ABS_DELTA_FLOOR)


def format_log2(x: float) -> str:
    """`2^-3`, `2^-6.5`: how grid values are written in warnings."""
    return f"2^{x:.3g}"
