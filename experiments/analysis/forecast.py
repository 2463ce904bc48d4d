"""Forecast the target's best loss from the ladder: L(w) = L_inf + A * w^-alpha.

With µP's transferred HPs the best loss falls smoothly with width (Cerebras-GPT, Dey et al.,
2023, Figure 1: µP's points sit on the power-law fit where SP's scatter; the GPT-4 technical
report, OpenAI 2023, Section 3.1, predicted the final loss from runs 1,000x smaller). Per
parametrization, step by step:

1. The rungs: each width's best loss, the optimum the transfer analysis finds (the profiled
   seed-mean loss-vs-LR curve refined by a parabola, `experiments.analysis.curves`), with the
   seeds' standard deviation at its best grid point.
2. Refusals, checked in order (a number is never printed where one of them holds):
   (a) fewer than `MIN_WIDTHS` (4) rungs with a finite best loss: three points fix a
       three-parameter law exactly, leaving no check that it is one;
   (b) the losses do not fall with width: the widest rung is not below the narrowest, or one
       rung rises above the previous by more than max(2 x the standard error of that
       difference, `MONOTONE_REL_TOL` x the loss);
   (c) a poor fit: R^2 of the fitted law over the rungs below `MIN_R2`, or a fitted A <= 0.
3. The fit, by variable projection: for a fixed alpha the law is linear in (L_inf, A), solved
   by least squares in closed form with L_inf bounded to [0, the smallest rung's loss] (a
   cross-entropy cannot fall below 0, and the asymptote must lie below every rung; when the
   unconstrained L_inf leaves the box the optimum lies on the violated bound, because the
   squared error profiled over A is convex in L_inf); alpha by a 1-D search of the profiled
   squared error: a log-spaced grid over `ALPHA_RANGE`, refined by golden section between the
   best grid point's neighbours. Widths enter as w / (narrowest width) for conditioning; A is
   reported in raw width units.
4. The 95% interval, the union of two bootstraps' 2.5%-97.5% quantile ranges of the forecast
   (`N_BOOTSTRAP` resamples each, one fixed RNG), widened to include the point estimate:
   (i) over seeds (seeds resampled independently per rung, as the drift's bootstrap does;
   each resample recomputes every rung's best loss and refits the law), and (ii) over the
   residuals (the fitted values plus resampled residuals, inflated by sqrt(n / (n - 3)) for
   the three fitted parameters). Why both: with 2-3 seeds (i) sees only a handful of distinct
   resamples and misses the rung-to-rung scatter a small validation set adds beyond the
   seeds at the best point (the digits MLP's leave-one-out, bench/RESULTS.md: the seed
   bootstrap alone put µP's measured loss outside its interval); (ii) measures exactly that
   lack of fit. With one seed, (ii) alone.

The same law is fitted along depth at one width where the sweep has a depth ladder
(`axis="depth"`). Pure numpy over a prepared runs frame (`summary.prepare_runs`); no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.curves import curve_optimum
from experiments.analysis.drift import ALPHA, BOOTSTRAP_SEED, N_BOOTSTRAP, _WidthData
from experiments.analysis.forecast_schema import Axis, Forecast, ForecastPoint, LadderPoint
from experiments.analysis.summary import param_order, prepare_runs, swept_hps

MIN_WIDTHS = 4
MIN_R2 = 0.8
MONOTONE_REL_TOL = 0.01
ALPHA_RANGE = (0.01, 4.0)
_ALPHA_GRID = np.geomspace(*ALPHA_RANGE, 120)
_GOLDEN = (math.sqrt(5) - 1) / 2
# The forecast reads the LR's curves: the HP every rung's best loss is optimised over.
FORECAST_HP = "lr"


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted L(w) = l_inf + a * w^-alpha (a in raw width units) and its squared error."""

    l_inf: float
    a: float
    alpha: float
    sse: float
    r2: float

    def predict(self, width: float | np.ndarray) -> np.ndarray:
        """The law at `width` (array in, array out)."""
        return self.l_inf + self.a * np.power(np.asarray(width, dtype=float), -self.alpha)


def _solve_linear(
    x: np.ndarray, y: np.ndarray, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of x (one per alpha) against y: (L_inf, A, squared error), L_inf in [0, hi]."""
    xm = x.mean(axis=1, keepdims=True)
    ym = float(y.mean())
    sxx = ((x - xm) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > 0, ((x - xm) * (y - ym)).sum(axis=1) / sxx, 0.0)
    intercept = ym - slope * xm[:, 0]
    bound = np.clip(intercept, 0.0, hi)
    clipped = bound != intercept
    sx2 = (x * x).sum(axis=1)
    # On the bound: A is the least-squares slope through the origin of (y - bound) on x.
    slope = np.where(clipped, ((y - bound[:, None]) * x).sum(axis=1) / sx2, slope)
    sse = ((y - bound[:, None] - slope[:, None] * x) ** 2).sum(axis=1)
    return bound, slope, sse


def fit_power_law(widths: Sequence[float], losses: Sequence[float]) -> PowerLawFit | None:
    """Least-squares L(w) = L_inf + A * w^-alpha by variable projection (step 3).

    Returns None with fewer than three finite points (the law has three parameters).
    """
    w = np.asarray(widths, dtype=float)
    y = np.asarray(losses, dtype=float)
    keep = np.isfinite(y) & (w > 0)
    w, y = w[keep], y[keep]
    if w.size < 3:
        return None
    u = w / w.min()
    hi = float(y.min())

    def profile(alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _solve_linear(np.power(u[None, :], -alphas[:, None]), y, hi)

    sse = profile(_ALPHA_GRID)[2]
    i = int(np.argmin(sse))
    lo_a = _ALPHA_GRID[max(i - 1, 0)]
    hi_a = _ALPHA_GRID[min(i + 1, _ALPHA_GRID.size - 1)]
    alpha = _golden(lambda a: float(profile(np.array([a]))[2][0]), lo_a, hi_a)
    l_inf, a_scaled, best = (float(v[0]) for v in profile(np.array([alpha])))
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - best / total if total > 0 else 1.0
    return PowerLawFit(l_inf=l_inf, a=a_scaled * float(w.min()) ** alpha, alpha=alpha,
                       sse=best, r2=r2)


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int = 40) -> float:
    """Golden-section minimum of a unimodal f on [lo, hi] (searched in log alpha)."""
    a, b = math.log(lo), math.log(hi)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    for _ in range(iters):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(math.exp(d))
    return math.exp((a + b) / 2)


def _rungs(data: dict[int, _WidthData]) -> list[LadderPoint]:
    """Step 1: each rung's best loss and seed spread (rungs without an optimum left out)."""
    out = []
    for w, d in data.items():
        opt = curve_optimum(*d.curve())
        if opt is None or not math.isfinite(opt.best_loss):
            continue
        seeds = d.seed_losses_at(opt.grid_log2)
        finite = seeds[np.isfinite(seeds)]
        sd = float(np.std(finite, ddof=1)) if finite.size >= 2 else None
        out.append(LadderPoint(width=w, loss=opt.best_loss, seed_sd=sd, n_seeds=int(finite.size)))
    return out


def _se(p: LadderPoint) -> float:
    """The standard error of a rung's seed mean (0 with one seed)."""
    return 0.0 if p.seed_sd is None or p.n_seeds < 2 else p.seed_sd / math.sqrt(p.n_seeds)


def refusal(points: list[LadderPoint], axis: Axis = "width") -> str | None:
    """Rules 2(a) and 2(b): why these rungs cannot be forecast from, or None."""
    if len(points) < MIN_WIDTHS:
        have = ", ".join(str(p.width) for p in points) or "none"
        return (f"too few {axis}s: {len(points)} with a best loss ({have}); the forecast "
                f"needs at least {MIN_WIDTHS}: add {axis}s to the ladder")
    first, last = points[0], points[-1]
    if last.loss >= first.loss:
        return (f"non-monotone losses: the best loss does not fall with {axis} ({first.loss:.4g} "
                f"at {first.width}, {last.loss:.4g} at {last.width})")
    for prev, cur in zip(points, points[1:], strict=False):
        allowed = max(2 * math.hypot(_se(prev), _se(cur)), MONOTONE_REL_TOL * prev.loss)
        if cur.loss - prev.loss > allowed:
            return (f"non-monotone losses: the best loss rises from {prev.loss:.4g} at "
                    f"{axis} {prev.width} to {cur.loss:.4g} at {cur.width}, more than the "
                    f"seed noise allows ({allowed:.2g})")
    return None


def _quality(fit: PowerLawFit, points: list[LadderPoint]) -> dict[str, float | int | None]:
    """The fit's quality numbers (`Forecast.fit_quality`)."""
    n = len(points)
    rmse = math.sqrt(fit.sse / n)
    ses = [_se(p) for p in points if p.n_seeds >= 2]
    mean_loss = float(np.mean([p.loss for p in points]))
    return {"r2": fit.r2, "rmse": rmse, "rmse_rel": rmse / mean_loss if mean_loss > 0 else None,
            "noise_se": float(np.mean(ses)) if ses else None, "n_points": n, "dof": n - 3}


def _seed_fits(
    data: dict[int, _WidthData], widths: list[int], n_boot: int, rng: np.random.Generator
) -> list[PowerLawFit]:
    """Step 4, several seeds: the law refitted to each resample of the seeds."""
    fits = []
    for _ in range(n_boot):
        ys = []
        for w in widths:
            n = len(data[w].seeds)
            opt = curve_optimum(*data[w].curve(rng.integers(0, n, size=n)))
            ys.append(math.inf if opt is None else opt.best_loss)
        f = fit_power_law(widths, ys) if all(map(math.isfinite, ys)) else None
        if f is not None:
            fits.append(f)
    return fits


def _residual_fits(
    fit: PowerLawFit, points: list[LadderPoint], n_boot: int, rng: np.random.Generator
) -> list[PowerLawFit]:
    """Step 4, the lack of fit: the law refitted to its fitted values plus resampled
    residuals, inflated by sqrt(n / (n - 3)) for the three fitted parameters."""
    widths = [p.width for p in points]
    fitted = fit.predict(np.array(widths, dtype=float))
    n = len(widths)
    resid = (np.array([p.loss for p in points]) - fitted) * math.sqrt(n / max(n - 3, 1))
    fits = []
    for _ in range(n_boot):
        f = fit_power_law(widths, fitted + rng.choice(resid, size=resid.size))
        if f is not None:
            fits.append(f)
    return fits


def _bootstrap_fits(
    data: dict[int, _WidthData], fit: PowerLawFit, points: list[LadderPoint], n_boot: int,
    rng_seed: int,
) -> tuple[list[list[PowerLawFit]], str]:
    """Step 4: the refitted laws, one group per source of error, and how they were made."""
    if n_boot <= 0:
        return [], "none: no bootstrap (n_bootstrap 0)"
    rng = np.random.default_rng(rng_seed)
    widths = [p.width for p in points]
    groups = []
    if any(len(data[w].seeds) >= 2 for w in widths):
        groups.append(_seed_fits(data, widths, n_boot, rng))
    groups.append(_residual_fits(fit, points, n_boot, rng))
    seeds = ("one seed: " if len(groups) == 1
             else f"bootstrap over seeds ({len(groups[0])} resamples) widened to the ")
    return groups, (f"{seeds}residual bootstrap "
                    f"({len(groups[-1])} resamples; the lack of fit), 95% quantiles, widened "
                    "to the point estimate")


def _at(
    width: int, fit: PowerLawFit, groups: list[list[PowerLawFit]], widest: int
) -> ForecastPoint:
    """The forecast at one width with its interval: the union of each group's 95% range."""
    loss = float(fit.predict(width))
    lo = hi = None
    for boot in groups:
        values = [v for v in (float(b.predict(width)) for b in boot) if math.isfinite(v)]
        if not values:
            continue
        q_lo, q_hi = (float(q) for q in np.quantile(values, [ALPHA, 1 - ALPHA]))
        lo = min(q_lo, loss) if lo is None else min(lo, q_lo)
        hi = max(q_hi, loss) if hi is None else max(hi, q_hi)
    return ForecastPoint(width=width, loss=loss, ci_low=lo, ci_high=hi,
                         extrapolated=width > widest)


def forecast_ladder(
    frame: pd.DataFrame,
    param: str,
    other_hps: list[str],
    targets: Sequence[int] = (),
    *,
    axis: Axis = "width",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> Forecast:
    """The forecast of one parametrization's best loss along `axis` (module docstring).

    Args:
        frame: the prepared runs of `param` (`summary.prepare_runs`); on the depth axis, the
            depth stands in the `width` column (as the depth section prepares its runs).
        param: the parametrization.
        other_hps: the other swept HPs, profiled out of each rung's LR curve.
        targets: where to forecast (e.g. the target width); each gets a row of `at`.
        axis: "width", or "depth" for a depth ladder's runs at one width (names the rungs
            in the refusals and the JSON).
        n_bootstrap: resamples of the interval (0: no interval).
        seed: the bootstrap RNG's seed (deterministic for a fixed seed).
    """
    rungs = sorted(int(v) for v in frame["width"].unique())
    data = {r: _WidthData(frame[frame["width"] == r], FORECAST_HP, other_hps) for r in rungs}
    points = _rungs(data)
    why = refusal(points, axis)
    fit = None if why else fit_power_law([p.width for p in points], [p.loss for p in points])
    if why is None and fit is not None and (fit.a <= 0 or fit.r2 < MIN_R2):
        why = (f"poor fit: R^2 {fit.r2:.2f} of the law over the {len(points)} {axis}s (needs "
               f">= {MIN_R2}), A {fit.a:.3g}: the best losses do not follow a power law")
    if why is not None or fit is None:
        return Forecast(parametrization=param, axis=axis, points=points,
                        refused=why or "no fit")
    boot, method = _bootstrap_fits(data, fit, points, n_bootstrap, seed)
    quality = {**_quality(fit, points), "n_bootstrap": max((len(g) for g in boot), default=0)}
    return Forecast(parametrization=param, axis=axis, points=points, ci_method=method,
                    params={"L_inf": fit.l_inf, "A": fit.a, "alpha": fit.alpha},
                    fit_quality=quality,
                    at=[_at(int(t), fit, boot, points[-1].width) for t in targets])


def depth_forecast(
    ladder: pd.DataFrame | None,
    loss: str,
    width: int | None,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Forecast]:
    """A depth ladder's forecast of the best loss against depth at one width (default: its
    smallest, as the depth section reads), per parametrization; {} without a ladder."""
    if ladder is None:
        return {}
    widths = sorted(int(w) for w in ladder["width"].unique())
    frame = ladder[ladder["width"] == (width if width in widths else widths[0])].copy()
    frame["width"] = frame["depth"].astype(int)  # depth plays the width's role
    df = prepare_runs(frame, loss)
    knobs = swept_hps(frame)
    return {p: forecast_ladder(df[df["parametrization"] == p], p, knobs, axis="depth",
                               n_bootstrap=n_bootstrap, seed=seed)
            for p in param_order(df["parametrization"].unique())}


def forecast_by_param(
    df: pd.DataFrame,
    other_hps: list[str],
    target_width: int | None,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Forecast]:
    """The width forecast of every parametrization of a prepared runs frame (`PARAM_ORDER`)."""
    targets = [] if target_width is None else [target_width]
    return {
        p: forecast_ladder(df[df["parametrization"] == p], p, other_hps, targets,
                           n_bootstrap=n_bootstrap, seed=seed)
        for p in param_order(df["parametrization"].unique())
    }
