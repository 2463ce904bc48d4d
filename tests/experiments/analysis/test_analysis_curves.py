"""The optimum of one loss-vs-log2(HP) curve: exact on a parabola, honest at edges and cliffs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.analysis import curvature_interval, curve_optimum


def test_curve_optimum_exact_on_a_nonuniform_parabola() -> None:
    xs = np.array([-12.0, -10.0, -9.0, -8.5, -7.2, -5.0, -4.5])
    ys = 0.3 + 0.07 * (xs + 8.1) ** 2
    opt = curve_optimum(xs, ys)
    assert opt is not None and opt.refined
    assert opt.grid_log2 == -8.5
    assert opt.opt_log2 == pytest.approx(-8.1, abs=1e-9)
    assert opt.best_loss == pytest.approx(0.3, abs=1e-9)
    lo, hi = curvature_interval(opt, delta=0.07 * 0.2**2)
    assert (lo, hi) == (pytest.approx(-8.3), pytest.approx(-7.9))


def test_curve_optimum_edges_flat_and_diverged_neighbours() -> None:
    xs = np.arange(-6.0, -2.0)
    upper = curve_optimum(xs, np.array([0.9, 0.7, 0.5, 0.3]))
    assert upper is not None and upper.edge == "upper" and not upper.refined
    assert upper.opt_log2 == -3.0
    assert curvature_interval(upper, 0.01) == (-3.5, -2.0)  # one full step beyond the edge
    lower = curve_optimum(xs, np.array([0.3, 0.5, 0.7, 0.9]))
    assert lower is not None and lower.edge == "lower"
    tie = curve_optimum(xs, np.array([0.5, 0.4, 0.4, 0.5]))  # symmetric: the midpoint
    assert tie is not None and tie.refined and tie.opt_log2 == pytest.approx(-4.5)
    cliff = curve_optimum(xs, np.array([0.5, 0.4, math.inf, math.inf]))
    assert cliff is not None and cliff.blocked == "diverged neighbour"
    assert cliff.opt_log2 == -5.0
    assert curve_optimum(xs, np.full(4, math.inf)) is None
