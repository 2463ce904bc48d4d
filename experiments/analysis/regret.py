"""Transfer regret: what copying the proxy's optimal LR costs at each width, in loss.

µTransfer (Tensor Programs V, Yang et al., 2022, Section 4 and Figure 1) tunes the LR on a
narrow proxy and copies it to the wide target. The drift (`experiments.analysis.drift`) says
how far the optimum moves in log2 LR; the regret says what that move costs, in the units a user
decides in. Per parametrization, step by step:

1. The proxy is the narrowest width with an optimum; its optimum x0 (log2 LR, refined as in
   `experiments.analysis.curves`) is the LR it would transfer.
2. Each width's *fitted curve* is the one the optimum fit reads (`fitted_loss`): on the span of
   the parabola through the best grid point and its two neighbours (when the optimum was
   refined), that parabola; elsewhere the straight line between adjacent grid points of the
   seed-mean curve (in log2 LR). Both pass through the grid points; the line lies above a convex
   curve, so off the parabola's span the regret errs high, never low.
3. Regret at width w = fitted loss of w at x0 - w's best loss (the parabola's vertex value, or
   the best grid point's): `abs` >= 0 in loss units and `rel` = abs / best loss (null when the
   best loss is not positive: a vertex fitted below a saturated loss of ~0 has no meaningful
   ratio). The proxy's own row is 0.
4. No extrapolation: when x0 lies outside the LRs trained at w the row says "outside_grid", and
   when the segment holding x0 ends in a diverged grid point it says "diverged"; both carry null
   numbers and a note.
5. Interval (several seeds): a bootstrap over seeds with a fixed RNG (N resamples, seeds
   resampled independently per width, like the drift's); each resample refits the proxy's
   optimum and every width's curve, and the interval is the 2.5%-97.5% quantiles of the
   resampled regrets (loss units), widened to include the point estimate. The relative
   interval is that one divided by the width's best loss, so the table, the chart and the
   verdict's sentence print one interval for one number (a separate quantile of the resampled
   ratios, each over its own resampled best loss, gave a second interval for the same regret:
   quick preset, µP at width 512, [2.3%, 91%] and [5.6%, 99%]). One seed: no interval (null).
6. Seed noise (`noise_abs`, and `noise_rel` = noise_abs / best loss): the seed-to-seed
   standard deviation of the loss around the width's optimum, pooled over the grid points its
   parabola is fitted on (the best grid point and its neighbours with at least two finite
   seeds: the root of the mean of their ddof-1 variances). It is how much one training run near
   the target's own optimum varies with the seed alone; a regret below it is a cost a user who
   trains the target once cannot tell from re-running with another seed. Pooled because with
   2-3 seeds one point's standard deviation has 1-2 degrees of freedom; not the standard error
   of the seed mean, which measures how well the mean is known and shrinks with every seed
   added (both false-alarm on healthy sweeps: numbers in `experiments.analysis.verdict`). The
   verdict allows max(`--regret-tolerance` x best loss, this noise), and fails only when the
   regret's whole interval lies above it.

When other HPs are swept, each width's LR curve is profiled (best setting at each LR), as in the
drift: the regret of copying the LR while the other HPs are re-tuned per width.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.analysis.curves import CurveOptimum, curve_optimum, parabola_through
from experiments.analysis.drift import ALPHA, _WidthData, seed_noise
from experiments.analysis.regret_schema import RegretResult, RegretStatus, WidthRegret
from experiments.analysis.summary import param_order

# `_WidthData` is drift's per-width loss array: the regret reads the very curves the optima are
# fitted on. The regret is measured for the LR: the HP a µTransfer user copies from the proxy.
REGRET_HP = "lr"
# Grid points closer than this (log2 units) are the same point.
_SAME_POINT = 1e-9


def fitted_loss(
    xs: np.ndarray, ys: np.ndarray, opt: CurveOptimum, x: float
) -> tuple[float | None, RegretStatus]:
    """The fitted loss of one curve at log2 HP `x` (rule 2 of the module docstring).

    Args:
        xs: grid points with data (log2), increasing, as `curve_optimum` read them.
        ys: seed-mean losses there (+inf diverged).
        opt: the curve's optimum (`curve_optimum(xs, ys)`).
        x: where to read the curve.

    Returns:
        (loss, "ok"); (None, "outside_grid") beyond the first/last point with data;
        (None, "diverged") when x sits on or beside a diverged point.
    """
    if x < xs[0] - _SAME_POINT or x > xs[-1] + _SAME_POINT:
        return None, "outside_grid"
    lower, upper = opt.lower_neighbour, opt.upper_neighbour
    if opt.refined and lower is not None and upper is not None and lower <= x <= upper:
        i = int(np.argmin(np.abs(xs - opt.grid_log2)))
        a, b, c = parabola_through(xs[i - 1 : i + 2], ys[i - 1 : i + 2])
        return float(a * x * x + b * x + c), "ok"
    j = int(np.searchsorted(xs, x - _SAME_POINT))  # first grid point >= x
    if abs(xs[j] - x) <= _SAME_POINT:
        y = float(ys[j])
    else:  # strictly between xs[j - 1] and xs[j]: the straight line between them
        t = (x - xs[j - 1]) / (xs[j] - xs[j - 1])
        y = float((1 - t) * ys[j - 1] + t * ys[j])
    return (y, "ok") if math.isfinite(y) else (None, "diverged")


def _curve_fit(
    data: _WidthData, seed_idx: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, CurveOptimum | None]:
    """A width's (resampled) seed-mean curve and its optimum."""
    xs, ys = data.curve(seed_idx)
    return xs, ys, curve_optimum(xs, ys)


def _regret(
    x0: float, fit: tuple[np.ndarray, np.ndarray, CurveOptimum | None]
) -> tuple[float | None, float | None, RegretStatus]:
    """(loss at x0, best loss, status) of one fitted width."""
    xs, ys, opt = fit
    if opt is None:
        return None, None, "no_optimum"
    loss, status = fitted_loss(xs, ys, opt, x0)
    return loss, opt.best_loss, status


def _note(status: RegretStatus, width: int, proxy: int | None, x0: float | None) -> str | None:
    """Why a row has no number, in plain words."""
    at = f"the proxy's optimum 2^{x0:.2f}" if x0 is not None else "the proxy's optimum"
    return {
        "ok": None,
        "outside_grid": f"{at} (width {proxy}) lies outside the LRs trained at width {width}: "
                        "not extrapolated; extend this width's grid to cover it",
        "diverged": f"{at} (width {proxy}) lies beside a diverged grid point at width {width}: "
                    "copying it risks divergence there",
        "no_optimum": f"no optimum at width {width} or at the proxy: every run diverged or none "
                      "finished",
    }[status]


def transfer_regret(
    frame: pd.DataFrame, param: str, other_hps: list[str], *, n_bootstrap: int, seed: int
) -> RegretResult:
    """The LR's transfer regret at every width of one parametrization (module docstring).

    Args:
        frame: the prepared runs of `param` (`experiments.analysis.summary.prepare_runs`).
        param: the parametrization.
        other_hps: the other swept HPs, profiled out.
        n_bootstrap: bootstrap resamples over seeds (0: no interval).
        seed: the bootstrap RNG's seed (deterministic for a fixed seed).
    """
    widths = sorted(int(w) for w in frame["width"].unique())
    data = {w: _WidthData(frame[frame["width"] == w], REGRET_HP, other_hps) for w in widths}
    fits = {w: _curve_fit(data[w]) for w in widths}
    proxy_opt = next(((w, f[2]) for w, f in fits.items() if f[2] is not None), None)
    proxy, x0 = (None, None) if proxy_opt is None else (proxy_opt[0], proxy_opt[1].opt_log2)
    boot = _bootstrap(data, proxy, n_bootstrap, seed)
    rows = [_row(w, data[w], fits[w], proxy, x0, boot.get(w, [])) for w in widths]
    n_boot = max((len(b) for b in boot.values()), default=0)
    method = (f"bootstrap over seeds ({n_boot} resamples, 95% quantiles, widened to the "
              "point estimate)" if boot else "one seed: no interval")
    return RegretResult(parametrization=param, proxy_width=proxy, proxy_log2_lr=x0,
                        widths=rows, ci_method=method)


def _row(
    width: int,
    data: _WidthData,
    fit: tuple[np.ndarray, np.ndarray, CurveOptimum | None],
    proxy: int | None,
    x0: float | None,
    boot: list[float],
) -> WidthRegret:
    """One width's regret row, with its bootstrap interval when there is one."""
    loss, best, status = (None, None, "no_optimum") if x0 is None else _regret(x0, fit)
    opt = fit[2]
    if status != "ok" or loss is None or best is None or opt is None:
        return WidthRegret(width=width, best_loss=best, status=status,
                           note=_note(status, width, proxy, x0))
    # >= 0 by construction (clip float round-off); the proxy's own row is 0 by definition.
    abs_regret = 0.0 if width == proxy else max(loss - best, 0.0)
    rel = abs_regret / best if best > 0 else None
    noise = seed_noise(data, opt)
    row = WidthRegret(width=width, abs=abs_regret, rel=rel, loss_at_transfer=loss,
                      best_loss=best, noise_abs=noise,
                      noise_rel=noise / best if noise is not None and best > 0 else None,
                      note=None if best > 0 else "best loss <= 0: no relative regret")
    if boot:
        a_lo, a_hi = np.quantile(boot, [ALPHA, 1 - ALPHA])
        row.abs_ci_low, row.abs_ci_high = min(float(a_lo), abs_regret), max(float(a_hi), abs_regret)
        if rel is not None:  # one interval per number: the loss interval, in % of the best loss
            row.ci_low, row.ci_high = row.abs_ci_low / best, row.abs_ci_high / best
    return row


def _bootstrap(
    data: dict[int, _WidthData], proxy: int | None, n_boot: int, rng_seed: int
) -> dict[int, list[float]]:
    """Per width, the regret (loss units) of each bootstrap resample (rule 5).

    One RNG, drawn width by width in ascending order per resample; a resample whose proxy or
    width has no optimum, or whose regret is not a number, is left out for that width. Without
    two seeds anywhere (or with n_boot 0) it is empty.
    """
    if proxy is None or n_boot <= 0 or not any(len(d.seeds) >= 2 for d in data.values()):
        return {}
    rng = np.random.default_rng(rng_seed)
    out: dict[int, list[float]] = {w: [] for w in data}
    for _ in range(n_boot):
        fits = {w: _curve_fit(d, rng.integers(0, len(d.seeds), size=len(d.seeds)))
                for w, d in data.items()}
        proxy_opt = fits[proxy][2]
        if proxy_opt is None:
            continue
        for w, fit in fits.items():
            loss, best, status = _regret(proxy_opt.opt_log2, fit)
            if status == "ok" and loss is not None and best is not None:
                out[w].append(0.0 if w == proxy else max(loss - best, 0.0))
    return out


def regret_by_param(
    df: pd.DataFrame, other_hps: list[str], *, n_bootstrap: int, seed: int
) -> dict[str, RegretResult]:
    """The LR's transfer regret of every parametrization of a prepared runs frame (in
    `PARAM_ORDER`); `other_hps` are the swept knobs, profiled out."""
    return {
        p: transfer_regret(df[df["parametrization"] == p], p, other_hps,
                           n_bootstrap=n_bootstrap, seed=seed)
        for p in param_order(df["parametrization"].unique())
    }
