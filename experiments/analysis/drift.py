"""Drift of one HP's optimum with width, in one parametrization (steps 1-4 of the report).

Per width: the profiled seed-mean curve, its optimum (`experiments.analysis.curves`) and an
interval (bootstrap over seeds widened to the curvature interval, or the curvature interval
alone with one seed). Across widths: the least-squares line of the optimum (log2) against
log2(width), its slope's interval, whether the per-width optima agree, and the prediction at a
target width. The rules are written out in `experiments.analysis.report`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from experiments.analysis.curves import (
    CurveOptimum,
    curvature_interval,
    curve_optimum,
    format_log2,
    seed_delta,
)
from experiments.analysis.schema import (
    DriftResult,
    WidthOptimum,
    WidthStatus,
    hp_label,
    hp_words,
)
from experiments.analysis.summary import seed_mean
from experiments.models.parametrizations import is_width_stable

N_BOOTSTRAP = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
# Two-sided tail mass outside the CI_LEVEL interval, on each side.
ALPHA = (1 - CI_LEVEL) / 2
# Relative slack for "wider is better": a best loss may rise by this fraction before we warn.
MONOTONE_REL_TOL = 0.01
# ... and, with seeds, by this many standard errors of the difference of the two seed means:
# a rise seed noise explains is not evidence that the wider model is worse.
MONOTONE_Z = 2.0


class _WidthData:
    """One width's losses as an array [seed, x, other setting] (NaN = no finished run)."""

    def __init__(self, frame: pd.DataFrame, x_col: str, other_cols: list[str]) -> None:
        self.xs = np.array(sorted(frame[x_col].unique()), dtype=float)
        self.seeds = sorted(frame["seed"].unique())
        others = sorted({tuple(r) for r in frame[other_cols].itertuples(index=False)})
        x_index = {x: i for i, x in enumerate(self.xs)}
        s_index = {s: i for i, s in enumerate(self.seeds)}
        o_index = {o: i for i, o in enumerate(others)}
        self.array = np.full((len(self.seeds), len(self.xs), len(others)), np.nan)
        for row in frame.itertuples(index=False):
            r = row._asdict()
            o = tuple(r[c] for c in other_cols)
            self.array[s_index[r["seed"]], x_index[r[x_col]], o_index[o]] = r["value"]

    @property
    def n_seeds(self) -> int:
        finished = ~np.isnan(self.array).all(axis=(1, 2))
        return int(finished.sum())

    def curve(self, seed_idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The profiled seed-mean curve (xs, ys) over points with data; ys may hold +inf."""
        a = self.array if seed_idx is None else self.array[seed_idx]
        mean = seed_mean(a, axis=0)  # [x, other]; a diverged seed makes it +inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no data there
            ys = np.nanmin(mean, axis=1)  # best over the other HPs' settings
        keep = ~np.isnan(ys)
        return self.xs[keep], ys[keep]

    def seed_losses_at(self, x: float) -> np.ndarray:
        """Per-seed losses at grid point x, at the best other setting there."""
        i = int(np.searchsorted(self.xs, x))
        mean = seed_mean(self.array[:, i, :], axis=0)
        j = int(np.nanargmin(np.where(np.isnan(mean), np.inf, mean))) if mean.size else 0
        return self.array[:, i, j]


def seed_noise(data: _WidthData, opt: CurveOptimum) -> float | None:
    """Seed noise of one width's loss near its optimum, in loss units: the seeds' standard
    deviation pooled over the best grid point and its neighbours (the root of the mean of their
    ddof-1 variances; rule 6 of `experiments.analysis.regret`); None when no such point has two
    finite seeds."""
    variances = []
    for x in (opt.lower_neighbour, opt.grid_log2, opt.upper_neighbour):
        if x is None:
            continue
        losses = data.seed_losses_at(x)  # (seeds,), NaN missing, +inf diverged
        finite = losses[np.isfinite(losses)]
        if finite.size >= 2:
            variances.append(float(np.var(finite, ddof=1)))
    return math.sqrt(float(np.mean(variances))) if variances else None


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float | None]:
    """Least-squares slope, intercept and the slope's standard error (None with 2 points)."""
    xm, ym = x.mean(), y.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - ym)).sum() / sxx)
    intercept = float(ym - slope * xm)
    if x.size < 3:
        return slope, intercept, None
    resid = y - (intercept + slope * x)
    se = math.sqrt(float((resid**2).sum()) / (x.size - 2) / sxx)
    return slope, intercept, se


def _grid_step(xs: list[float]) -> float | None:
    """The median spacing of a grid (log2 units); None with fewer than two values."""
    values = np.array(sorted(set(xs)), dtype=float)
    if values.size < 2:
        return None
    return float(np.median(np.diff(values)))


def fit_drift(
    hp: str,
    param: str,
    frame: pd.DataFrame,
    other_hps: list[str],
    *,
    n_bootstrap: int,
    seed: int,
    target_width: int | None,
    warn: list[str],
    warn_few: bool = True,
) -> DriftResult:
    """Per-width optima, their intervals, and the drift line of one HP in one parametrization.

    Args:
        hp: the HP whose optimum is found ("lr" or a knob); its column holds log2 values.
        param: the parametrization `frame` holds.
        frame: the prepared runs of `param` (`experiments.analysis.summary.prepare_runs`).
        other_hps: the other swept HPs, profiled out (best setting at each value of `hp`).
        n_bootstrap: bootstrap resamples over seeds (0: none).
        seed: the bootstrap RNG's seed.
        target_width: predict the optimum at this width (None: no prediction).
        warn: plain-words warnings are appended here.
        warn_few: warn when fewer than two widths have an optimum (off for a sweep that
            measures another ladder at one width on purpose).
    """
    widths = sorted(int(w) for w in frame["width"].unique())
    data = {w: _WidthData(frame[frame["width"] == w], hp, other_hps) for w in widths}
    point = {w: curve_optimum(*data[w].curve()) for w in widths}
    boot_opt, boot_slopes = _bootstrap(data, point, n_bootstrap, seed)
    label = hp_label(param, hp)
    out = [_width_optimum(w, data[w], point[w], boot_opt[w], label, hp, warn) for w in widths]
    result = DriftResult(hp=hp, parametrization=param, widths=out,
                         grid_step=_grid_step(list(frame[hp].unique())))
    usable = result.usable()
    if len(usable) < 2:
        result.ci_method = "none: fewer than two widths with an optimum"
        if warn_few:
            warn.append(f"{label}: only {len(usable)} width(s) with an optimum: no drift can "
                        "be measured; add widths or fix the diverged ones")
    else:
        _fit_line(result, boot_slopes)
    if target_width is not None and usable:
        _predict(result, target_width)
    return result


def _bootstrap(
    data: dict[int, _WidthData], point: dict[int, CurveOptimum | None], n_boot: int, rng_seed: int
) -> tuple[dict[int, list[float]], list[float]]:
    """Resample seeds per width: each resample's per-width optima and drift slope.

    One RNG, drawn width by width in ascending order, shared by the per-width intervals and the
    slope's. Without two seeds anywhere (or with n_boot 0) both come back empty.
    """
    widths = list(data)
    boot_opt: dict[int, list[float]] = {w: [] for w in widths}
    boot_slopes: list[float] = []
    if not (any(len(d.seeds) >= 2 for d in data.values()) and n_boot > 0):
        return boot_opt, boot_slopes
    rng = np.random.default_rng(rng_seed)
    for _ in range(n_boot):
        xs_b, ys_b = [], []
        for w in widths:
            n = len(data[w].seeds)
            opt = curve_optimum(*data[w].curve(rng.integers(0, n, size=n)))
            if opt is not None and point[w] is not None:
                boot_opt[w].append(opt.opt_log2)
                xs_b.append(math.log2(w))
                ys_b.append(opt.opt_log2)
        if len(xs_b) >= 2:
            boot_slopes.append(_ols(np.array(xs_b), np.array(ys_b))[0])
    return boot_opt, boot_slopes


def _width_optimum(
    width: int,
    data: _WidthData,
    opt: CurveOptimum | None,
    boot: list[float],
    label: str,
    hp: str,
    warn: list[str],
) -> WidthOptimum:
    """One width's optimum and interval (curvature interval, widened to the bootstrap's)."""
    xs, _ = data.curve()
    if opt is None:
        status: WidthStatus = "all_diverged" if xs.size else "no_data"
        if status == "all_diverged":
            warn.append(f"{label}: every run at width {width} diverged: the width is left out "
                        f"of the drift fit; lower the {hp_words(hp)} grid")
        else:
            warn.append(f"{label}: no finished runs at width {width}: the width is left out of "
                        "the drift fit; run or retry the sweep")
        return WidthOptimum(width=width, opt_log2=None, ci_low=None, ci_high=None,
                            best_loss=None, n_points=int(xs.size), n_seeds=data.n_seeds,
                            status=status)
    delta = seed_delta(data.seed_losses_at(opt.grid_log2), opt.best_loss)
    lo, hi = curvature_interval(opt, delta)
    if boot:
        b_lo, b_hi = np.quantile(boot, [ALPHA, 1 - ALPHA])
        lo, hi = min(lo, float(b_lo)), max(hi, float(b_hi))
    _warn_optimum(label, hp_words(hp), width, opt, int(xs.size), warn)
    return WidthOptimum(width=width, opt_log2=opt.opt_log2, ci_low=lo, ci_high=hi,
                        best_loss=opt.best_loss, grid_log2=opt.grid_log2, refined=opt.refined,
                        edge=opt.edge, n_points=int(xs.size), n_seeds=data.n_seeds,
                        seed_noise=seed_noise(data, opt), status="ok")


def _fit_line(result: DriftResult, boot_slopes: list[float]) -> None:
    """The drift line over the usable widths, its slope's interval and the optima's agreement.

    The slope's interval is the hull of the bootstrap's and the regression's: a t-interval
    from the least-squares standard error, or, with two widths, the slopes between the ends of
    the two widths' intervals.
    """
    usable = result.usable()
    x = np.array([math.log2(w.width) for w in usable])
    y = np.array([w.opt_log2 for w in usable], dtype=float)
    slope, intercept, se = _ols(x, y)
    if se is not None:
        t = float(stats.t.ppf(1 - ALPHA, x.size - 2))
        reg = (slope - t * se, slope + t * se)
        reg_method = f"t-interval ({x.size - 2} dof)"
    else:
        a, b = usable
        dx = math.log2(b.width) - math.log2(a.width)
        assert a.ci_low is not None and a.ci_high is not None
        assert b.ci_low is not None and b.ci_high is not None
        reg = ((b.ci_low - a.ci_high) / dx, (b.ci_high - a.ci_low) / dx)
        reg_method = "ends of the two widths' intervals"
    if boot_slopes:
        b_lo, b_hi = np.quantile(boot_slopes, [ALPHA, 1 - ALPHA])
        ci = [min(reg[0], float(b_lo)), max(reg[1], float(b_hi))]
        result.ci_method = (f"hull of a {len(boot_slopes)}-resample bootstrap over seeds "
                            f"and the regression {reg_method}")
    else:
        ci = [reg[0], reg[1]]
        result.ci_method = f"one seed: curvature intervals, regression {reg_method}"
    result.drift_slope, result.drift_intercept, result.drift_ci = slope, intercept, ci
    lows = [w.ci_low for w in usable if w.ci_low is not None]
    highs = [w.ci_high for w in usable if w.ci_high is not None]
    spread = max(lows) - min(highs)
    step = result.grid_step or 0.0
    result.optima_spread = float(spread)
    result.optima_agree = bool(spread <= step + 1e-9)


def _predict(result: DriftResult, target_width: int) -> None:
    """The optimum at `target_width`: µP's stable optimum, else the drift line (flagged when
    it extrapolates beyond the ladder's widths)."""
    usable = result.usable()
    result.target_width = target_width
    result.predicted_log2 = result.predict(target_width)
    stable = is_width_stable(result.parametrization) or result.drift_slope is None
    result.prediction = ("stable optimum: mean of the per-width optima" if stable
                         else "drift line")
    lo_w, hi_w = usable[0].width, usable[-1].width
    result.extrapolated = (not stable) and not (lo_w <= target_width <= hi_w)


def _warn_optimum(label: str, hp_text: str, width: int, opt: CurveOptimum, n_points: int,
                  warn: list[str]) -> None:
    """Warnings about one width's optimum: grid edge, or too few points around it."""
    if opt.edge is not None:
        neighbour = opt.upper_neighbour if opt.edge == "lower" else opt.lower_neighbour
        spacing = abs(opt.grid_log2 - neighbour) if neighbour is not None else 1.0
        nxt = opt.grid_log2 + spacing if opt.edge == "upper" else opt.grid_log2 - spacing
        grid = "grid" if hp_text == "LR" else f"{hp_text} grid"
        warn.append(f"{label}: optimum at the {opt.edge} edge of the {grid} for width {width}: "
                    f"extend the grid to {format_log2(nxt)}")
    elif n_points < 3 or opt.blocked is not None:
        why = {
            "diverged neighbour": "a neighbouring grid point diverged",
            "flat": "the loss is flat around it",
            "vertex outside span": "the local parabola is off-centre",
            "single point": "only one grid point has data",
        }.get(opt.blocked or "", f"only {n_points} grid points have data")
        warn.append(f"{label}: too few points around the optimum for width {width} ({why}): "
                    f"the optimum is the grid point {format_log2(opt.grid_log2)}; use a finer "
                    f"{hp_text} grid near it")


def warn_monotone(d: DriftResult, warn: list[str]) -> None:
    """µP: wider should be better (TP5, Section 4); warn when the best loss rises with width by
    more than seed noise explains.

    A rise counts when it exceeds both `MONOTONE_REL_TOL` of the narrower width's best loss and
    `MONOTONE_Z` standard errors of the difference of the two seed means (each width's pooled
    seed noise over sqrt(its seeds); with one seed there is no noise estimate and the relative
    slack alone applies). Why: a near-saturated train loss varies by tens of % with the seed
    (the quick preset at width 512: 56% of its best loss), so a 1% slack alone warned on noise:
    the quick preset's µP best train loss "rose" from 0.0175 (width 256) to 0.0276 (width 512)
    over 3 seeds, a rise of 0.8 standard errors (measured again with 10 seeds at widths 64, 256
    and 512: 0.019 to 0.029, 1.5 standard errors, while the validation loss falls, 0.086 to
    0.082).
    """
    usable = [w for w in d.usable() if w.best_loss is not None]
    for a, b in zip(usable, usable[1:], strict=False):
        assert a.best_loss is not None and b.best_loss is not None
        rise = b.best_loss - a.best_loss
        if rise <= MONOTONE_REL_TOL * abs(a.best_loss) or rise <= MONOTONE_Z * _diff_se(a, b):
            continue
        warn.append(f"{hp_label(d.parametrization, d.hp)}: best loss rises with width, from "
                    f"{a.best_loss:.4g} at width {a.width} to {b.best_loss:.4g} at width "
                    f"{b.width}, more than seed noise explains: under µP wider should be "
                    "better; check that the grid covers every width's optimum and that runs "
                    "train long enough")


def _diff_se(a: WidthOptimum, b: WidthOptimum) -> float:
    """Standard error of the difference of two widths' seed-mean best losses (0 when either
    has no seed-noise estimate: one seed)."""
    if a.seed_noise is None or b.seed_noise is None or a.n_seeds < 2 or b.n_seeds < 2:
        return 0.0
    return math.sqrt(a.seed_noise**2 / a.n_seeds + b.seed_noise**2 / b.n_seeds)
