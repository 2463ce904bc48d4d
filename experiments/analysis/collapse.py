"""A curve-level transfer check: do the training curves of the widths collapse onto one?

Qiu et al. (2025), "Scaling collapse reveals universal dynamics in compute-optimally trained
neural networks": with a width-stable parametrization and each width at its optimum, the loss
curves, normalised by their own end point, fall on one curve; a broken setup shows in the
curves before the final losses do. Reported beside the verdict, never part of it. Per
parametrization, step by step:

1. Each width's runs at one grid point: its own best LR (lowest seed-mean final train loss;
   `lr="own"`), or the proxy's (the narrowest width's best LR copied; `lr="proxy"`: what a
   user of µTransfer trains).
2. Each run's logged train-loss curve, normalised: steps as a fraction of the run's horizon t,
   and (loss(t) - L_inf) / (loss(1) - L_inf), so every curve ends at 1; L_inf is the fitted
   asymptote of the best train losses (`experiments.analysis.forecast`; 0 when it refuses).
   Read on `COLLAPSE_GRID` (t from 0.2 to 1: the first fifth is the initial transient, where
   the ratio is dominated by the loss at initialisation).
3. Spread: at each t, the standard deviation across widths of the seed-mean normalised curves,
   averaged over t. Noise: at each t, the standard error of a width's seed mean, pooled over
   widths (root mean square), averaged over t. `ratio` = spread / noise: about 1 when the
   widths differ by no more than their seeds do; several when they do not collapse. Needs two
   widths and, for the noise, two seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel

from experiments.analysis.forecast import forecast_ladder
from experiments.analysis.summary import finished, log2_lr, param_order, prepare_runs, swept_hps

COLLAPSE_GRID = np.linspace(0.2, 1.0, 17)
TRAIN_CURVE = "train_loss"


class CollapseResult(BaseModel):
    """The collapse of one parametrization's curves (module docstring).

    Attributes:
        parametrization: "mup", "sp", ...
        lr: "own" (each width at its best LR) or "proxy" (the narrowest width's LR copied).
        l_inf: the asymptote subtracted.
        widths: the widths whose curves were read.
        spread: mean across-width standard deviation of the normalised curves.
        noise: mean pooled standard error of a width's seed mean (None with one seed).
        ratio: spread / noise (None without a noise).
        note: why a number is missing, when one is.
    """

    parametrization: str
    lr: str
    l_inf: float
    widths: list[int]
    spread: float | None = None
    noise: float | None = None
    ratio: float | None = None
    note: str | None = None


def _grid_points(runs: pd.DataFrame, lr: str) -> dict[int, float]:
    """Step 1: per width, the log2 LR whose curves are read."""
    done = runs[runs["state"].astype(str) == "done"].assign(x=lambda f: log2_lr(f))
    means = done.groupby(["width", "x"])["final_train_loss"].mean().reset_index()
    best = {int(w): float(g.loc[g["final_train_loss"].idxmin(), "x"])
            for w, g in means.groupby("width")}
    if lr == "own" or not best:
        return best
    x0 = best[min(best)]
    copied: dict[int, float] = {}
    for w, g in means.groupby("width"):
        copied[int(w)] = float(min(g["x"], key=lambda x: abs(x - x0)))  # the nearest LR trained
    return copied


def _normalised(curve: pd.DataFrame, l_inf: float) -> np.ndarray | None:
    """Step 2: one run's curve on `COLLAPSE_GRID` (None when too short or degenerate)."""
    c = curve.sort_values("step")
    steps, values = c["step"].to_numpy(float), c["value"].to_numpy(float)
    if steps.size < 2 or not np.isfinite(values).all() or steps[-1] <= 0:
        return None
    end = values[-1] - l_inf
    if end <= 0:
        return None
    return np.interp(COLLAPSE_GRID, steps / steps[-1], (values - l_inf) / end)


def collapse_check(
    runs: pd.DataFrame, metrics: pd.DataFrame, param: str, l_inf: float, lr: str = "own"
) -> CollapseResult:
    """The collapse of one parametrization's curves (module docstring).

    Args:
        runs: the sweep's runs frame (`Store.runs_frame`: run_id, width, lr, seed, state,
            final_train_loss).
        metrics: their logged metrics (run_id, step, name, value), `train_loss` read.
        param: the parametrization.
        l_inf: the asymptote to subtract (the train-loss forecast's L_inf, or 0).
        lr: "own" or "proxy" (step 1).
    """
    mine = finished(runs[runs["parametrization"] == param])
    points = _grid_points(mine, lr)
    train = metrics[metrics["name"] == TRAIN_CURVE]
    by_width: dict[int, list[np.ndarray]] = {}
    for w, x in points.items():
        at = mine[(mine["width"] == w) & (np.abs(log2_lr(mine) - x) < 1e-6)]
        for run_id in at["run_id"]:
            curve = _normalised(train[train["run_id"] == run_id], l_inf)
            if curve is not None:
                by_width.setdefault(w, []).append(curve)
    out = CollapseResult(parametrization=param, lr=lr, l_inf=l_inf, widths=sorted(by_width))
    if len(by_width) < 2:
        out.note = "fewer than two widths with a logged train-loss curve"
        return out
    means = np.array([np.mean(c, axis=0) for c in by_width.values()])
    out.spread = float(np.mean(np.std(means, axis=0, ddof=1)))
    ses = [np.std(c, axis=0, ddof=1) / math.sqrt(len(c)) for c in by_width.values() if len(c) >= 2]
    if not ses:
        out.note = "one seed per width: no noise to compare the spread with"
        return out
    out.noise = float(np.mean(np.sqrt(np.mean(np.square(ses), axis=0))))
    out.ratio = out.spread / out.noise if out.noise > 0 else None
    return out


def collapse_by_param(runs: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, dict[str, object]]:
    """`analyze --json`'s `collapse`: per parametrization, {"own": ..., "proxy": ...} (each a
    `CollapseResult` as JSON), with L_inf from the train-loss forecast (0 when it refuses)."""
    df = prepare_runs(runs, "final_train_loss")
    knobs = swept_hps(runs)
    out: dict[str, dict[str, object]] = {}
    for p in param_order(df["parametrization"].unique()):
        f = forecast_ladder(df[df["parametrization"] == p], p, knobs, n_bootstrap=0)
        l_inf = 0.0 if f.params is None else f.params["L_inf"]
        out[p] = {lr: collapse_check(runs, metrics, p, l_inf, lr).model_dump()
                  for lr in ("own", "proxy")}
    return out
