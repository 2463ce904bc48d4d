"""µTransfer analysis of a sweep: per-width optima, drift against width, and a verdict.

Tensor Programs V (Yang et al., 2022), Section 4 and Figure 1: under µP the optimal learning
rate (and the other global HPs: init scale, output multiplier) stays put as width grows, while
under SP with Adam it drifts down. This module turns the stored runs of a sweep into that
picture, as data:

1. Per (parametrization, width): the seed-mean final loss on the log2 grid (diverged runs are
   +inf, so a mean over seeds with one divergence is +inf and is never an optimum; unfinished
   runs are missing). When other HPs are swept too, the curve of one HP is profiled: at each of
   its values, the best seed-mean loss over the other HPs' values.
2. The optimum: the best grid point refined by a parabola through it and its neighbours
   (`experiments.analysis.curves`).
3. Intervals. Several seeds: a bootstrap over seeds (N_BOOTSTRAP resamples with a fixed RNG,
   seeds resampled independently per width; each resample recomputes every width's optimum and
   the drift slope). Because 2-3 seeds give only a handful of distinct resamples, each
   per-width interval is also widened to the curvature interval (where the fitted parabola is
   within the seed-mean's standard error of its minimum), and the slope interval to the
   regression interval below. One seed: the curvature interval (fitted loss within 1% of its
   minimum) per width, and the slope's t-interval from the least-squares standard error (with
   two widths, the slopes between the ends of the two widths' intervals).
4. Drift: least-squares slope of the optimum (log2) against log2(width): log2-units of HP per
   width doubling.
5. Verdict (per swept HP, judged on µP), explicit rule: confirmed iff
   (a) at least two widths have an optimum and none of µP's optima sits on a grid edge,
   (b) |drift slope| <= tolerance (default 0.25 log2 per doubling), and
   (c) the per-width optima agree within their intervals: the intervals, widened by one grid
       step, share a common value (max lower end - min upper end <= one grid step).
   The slope's interval is reported beside it, and a warning says when it is wider than the
   tolerance; it is not part of the default rule because with 3-5 widths a t-interval is often
   wider than any useful tolerance even when the optimum does not move at all (the quick
   preset: slope -0.09, interval [-1.47, +1.30]). `strict_interval=True` (CLI
   `analyze --strict-interval`) adds (d) the whole interval lies within the tolerance, for
   sweeps with enough widths and seeds to afford it.

The input is a runs DataFrame like `Store.runs_frame`; everything is pure (no store, no torch).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from experiments.analysis.curves import (
    CurveOptimum,
    curvature_interval,
    curve_optimum,
    format_log2,
    seed_delta,
)

N_BOOTSTRAP = 200
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
DEFAULT_TOLERANCE = 0.25
# Relative slack for "wider is better": a best loss may rise by this fraction before we warn.
MONOTONE_REL_TOL = 0.01
# Global HPs besides the LR that a spec's hparam_grid can sweep (columns of the runs frame).
OTHER_HPS = ("init_std", "output_mult", "attn_mult", "input_mult")
# Parametrizations whose optimum should not drift (their prediction is the stable optimum).
STABLE_PARAMETRIZATIONS = ("mup",)
VERDICT_PARAMETRIZATION = "mup"

WidthStatus = Literal["ok", "all_diverged", "no_data"]


class WidthOptimum(BaseModel):
    """One width's optimum of one HP in one parametrization.

    Attributes:
        width: the width.
        opt_log2: the optimum in log2 units of the HP (for the LR: log2 LR); None when every
            run diverged or none finished.
        ci_low: lower end of its 95% interval (log2 units).
        ci_high: upper end of its 95% interval.
        best_loss: seed-mean final loss at the optimum (None when there is none).
        grid_log2: the best grid point.
        refined: whether the quadratic refinement moved it off the grid point.
        edge: "lower"/"upper" when the best grid point is the first/last one with data.
        n_points: grid points with finished runs.
        n_seeds: seeds with at least one finished run.
        status: "ok", "all_diverged" or "no_data".
    """

    width: int
    opt_log2: float | None
    ci_low: float | None
    ci_high: float | None
    best_loss: float | None
    grid_log2: float | None = None
    refined: bool = False
    edge: Literal["lower", "upper"] | None = None
    n_points: int = 0
    n_seeds: int = 0
    status: WidthStatus = "ok"


class DriftResult(BaseModel):
    """How one HP's optimum moves with width, in one parametrization.

    Attributes:
        hp: "lr", "init_std", "output_mult", ...
        parametrization: "mup", "sp", ...
        widths: per-width optima, ascending width.
        drift_slope: least-squares slope of opt_log2 against log2(width) (log2 units per width
            doubling); None with fewer than two usable widths.
        drift_intercept: the line's value at log2(width) = 0.
        drift_ci: 95% interval of the slope.
        ci_method: how the intervals were made ("bootstrap over N seeds + regression", ...).
        grid_step: the median spacing of the HP grid in log2 units.
        optima_agree: whether the per-width intervals, widened by one grid step, share a value.
        optima_spread: max lower end - min upper end of the per-width intervals (<= 0: overlap).
        target_width: the width the prediction is for (None: no prediction).
        predicted_log2: the predicted optimum at `target_width`.
        prediction: how it was predicted ("stable optimum" or "drift line").
        extrapolated: the prediction uses the drift line outside the ladder's widths.
    """

    hp: str
    parametrization: str
    widths: list[WidthOptimum]
    drift_slope: float | None = None
    drift_intercept: float | None = None
    drift_ci: list[float] | None = None
    ci_method: str = ""
    grid_step: float | None = None
    optima_agree: bool | None = None
    optima_spread: float | None = None
    target_width: int | None = None
    predicted_log2: float | None = None
    prediction: str | None = None
    extrapolated: bool = False

    def usable(self) -> list[WidthOptimum]:
        """Widths with an optimum (the ones the drift line is fitted on)."""
        return [w for w in self.widths if w.opt_log2 is not None]

    def predict(self, width: int) -> float | None:
        """The predicted optimum (log2) at `width`: the stable optimum for µP, else the line."""
        usable = self.usable()
        if not usable:
            return None
        if self.parametrization in STABLE_PARAMETRIZATIONS or self.drift_slope is None:
            return float(np.mean([w.opt_log2 for w in usable]))
        assert self.drift_intercept is not None
        return float(self.drift_intercept + self.drift_slope * math.log2(width))


class HPVerdict(BaseModel):
    """The µTransfer verdict of one HP.

    Attributes:
        hp: the HP ("lr", "output_mult", ...).
        verdict: "confirmed" or "not_confirmed".
        reason: the rule's outcome in plain words, with the numbers.
    """

    hp: str
    verdict: Literal["confirmed", "not_confirmed"]
    reason: str


class TransferReport(BaseModel):
    """The analysis of one sweep (what `python -m experiments analyze` prints and writes).

    Attributes:
        verdict: "confirmed" iff every swept HP's verdict is confirmed.
        reason: why, with the numbers (µP drift and interval, SP drift beside it).
        tolerance: |drift| tolerance in log2 units per width doubling.
        loss: the loss column analysed ("final_train_loss" or "final_val_loss").
        warnings: plain-words warnings (grid edges, few points, diverged widths, ...).
        lr: per parametrization, the LR drift.
        hparams: per other swept HP, per parametrization, its drift.
        verdicts: per HP, the verdict and its reason.
        n_runs: runs in the input frame.
        target_width: the width predictions are made for, if any.
    """

    verdict: Literal["confirmed", "not_confirmed"]
    reason: str
    tolerance: float
    loss: str
    warnings: list[str] = Field(default_factory=list)
    lr: dict[str, DriftResult] = Field(default_factory=dict)
    hparams: dict[str, dict[str, DriftResult]] = Field(default_factory=dict)
    verdicts: list[HPVerdict] = Field(default_factory=list)
    n_runs: int = 0
    target_width: int | None = None

    def predicted_hparams(self, parametrization: str = VERDICT_PARAMETRIZATION) -> dict[str, float]:
        """The transferred global HPs (linear units) of `parametrization` at the target width.

        Returns {"lr": ..., "output_mult": ...}: each swept HP's prediction (µP: its stable
        optimum); HPs without a prediction are left out.
        """
        out: dict[str, float] = {}
        lr = self.lr.get(parametrization)
        if lr is not None and lr.predicted_log2 is not None:
            out["lr"] = 2.0**lr.predicted_log2
        for hp, by_param in self.hparams.items():
            d = by_param.get(parametrization)
            if d is not None and d.predicted_log2 is not None:
                out[hp] = 2.0**d.predicted_log2
        return out

    def to_contract_json(self) -> dict[str, Any]:
        """The `analyze --json` document.

        Shape: {"verdict", "tolerance", "warnings", "reason", "loss", "target_width",
        "parametrizations": {name: {"drift_slope", "drift_ci", "ci_method", "optima_agree",
        "predicted_log2_lr", "extrapolated", "widths": [{"width", "opt_log2_lr", "ci_low",
        "ci_high", "best_loss", ...}]}}, "hparams": {hp: {name: {... "opt_log2" ...}}},
        "verdicts": [...]}.
        """

        def drift_json(d: DriftResult, key: str, predicted_key: str) -> dict[str, Any]:
            return {
                "drift_slope": d.drift_slope,
                "drift_intercept": d.drift_intercept,
                "drift_ci": d.drift_ci,
                "ci_method": d.ci_method,
                "grid_step": d.grid_step,
                "optima_agree": d.optima_agree,
                "optima_spread": d.optima_spread,
                predicted_key: d.predicted_log2,
                "prediction": d.prediction,
                "extrapolated": d.extrapolated,
                "widths": [
                    {
                        "width": w.width,
                        key: w.opt_log2,
                        "ci_low": w.ci_low,
                        "ci_high": w.ci_high,
                        "best_loss": w.best_loss,
                        "grid_log2": w.grid_log2,
                        "refined": w.refined,
                        "edge": w.edge,
                        "n_points": w.n_points,
                        "n_seeds": w.n_seeds,
                        "status": w.status,
                    }
                    for w in d.widths
                ],
            }

        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "tolerance": self.tolerance,
            "loss": self.loss,
            "target_width": self.target_width,
            "n_runs": self.n_runs,
            "warnings": list(self.warnings),
            "parametrizations": {p: drift_json(d, "opt_log2_lr", "predicted_log2_lr") for p, d in self.lr.items()},
            "hparams": {
                hp: {p: drift_json(d, "opt_log2", "predicted_log2") for p, d in by_param.items()}
                for hp, by_param in self.hparams.items()
            },
            "verdicts": [v.model_dump() for v in self.verdicts],
        }


# --- Preparing the frame ---------------------------------------------------------------------

REQUIRED_COLUMNS = ("parametrization", "width", "seed", "state")


def _prepare(runs: pd.DataFrame, loss: str) -> pd.DataFrame:
    """Normalise the runs frame: log2 columns, and `value` = loss, +inf diverged, NaN missing."""
    missing = [c for c in (*REQUIRED_COLUMNS, loss) if c not in runs.columns]
    if "lr" not in runs.columns and "log2_lr" not in runs.columns:
        missing.append("lr")
    if missing:
        raise ValueError(
            f"runs frame lacks columns {missing}: pass Store.runs_frame(sweep_id) (columns "
            "parametrization, width, lr, seed, state, final_train_loss, ...)"
        )
    df = pd.DataFrame(
        {
            "parametrization": runs["parametrization"].astype(str).to_numpy(),
            "width": runs["width"].astype(int).to_numpy(),
            "seed": runs["seed"].astype(int).to_numpy(),
        }
    )
    if "log2_lr" in runs.columns and runs["log2_lr"].notna().all():
        df["lr"] = np.round(runs["log2_lr"].astype(float).to_numpy(), 9)
    else:
        df["lr"] = np.round(np.log2(runs["lr"].astype(float).to_numpy()), 9)
    for hp in OTHER_HPS:
        if hp in runs.columns:
            values = pd.to_numeric(runs[hp], errors="coerce").astype(float).fillna(1.0)
            df[hp] = np.round(np.log2(values.to_numpy()), 9)
    state = runs["state"].astype(str).to_numpy()
    raw = pd.to_numeric(runs[loss], errors="coerce").astype(float).to_numpy()
    value = np.full(len(df), np.nan)
    done = state == "done"
    value[done] = np.where(np.isfinite(raw[done]), raw[done], np.inf)
    value[state == "diverged"] = np.inf
    df["value"] = value
    return df


def swept_hps(runs: pd.DataFrame) -> list[str]:
    """The global HPs besides the LR that take more than one value in the runs."""
    out = []
    for hp in OTHER_HPS:
        if hp in runs.columns and runs[hp].dropna().nunique() > 1:
            out.append(hp)
    return out


# --- One HP, one parametrization -------------------------------------------------------------


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
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(a, axis=0)  # [x, other]; inf propagates, NaN is skipped
            ys = np.nanmin(mean, axis=1)  # best over the other HPs' settings
        keep = ~np.isnan(ys)
        return self.xs[keep], ys[keep]

    def seed_losses_at(self, x: float) -> np.ndarray:
        """Per-seed losses at grid point x, at the best other setting there."""
        i = int(np.searchsorted(self.xs, x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(self.array[:, i, :], axis=0)
        j = int(np.nanargmin(np.where(np.isnan(mean), np.inf, mean))) if mean.size else 0
        return self.array[:, i, j]


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
    values = np.array(sorted(set(xs)), dtype=float)
    if values.size < 2:
        return None
    return float(np.median(np.diff(values)))


def _drift(
    hp: str,
    param: str,
    frame: pd.DataFrame,
    x_col: str,
    other_cols: list[str],
    n_boot: int,
    rng_seed: int,
    target_width: int | None,
    warn: list[str],
) -> DriftResult:
    """Per-width optima, their intervals, and the drift line of one HP in one parametrization."""
    label = param if hp == "lr" else f"{param} {hp}"
    hp_words = "LR" if hp == "lr" else hp
    widths = sorted(int(w) for w in frame["width"].unique())
    data = {w: _WidthData(frame[frame["width"] == w], x_col, other_cols) for w in widths}
    point: dict[int, CurveOptimum | None] = {}
    for w in widths:
        xs, ys = data[w].curve()
        point[w] = curve_optimum(xs, ys)

    # Bootstrap over seeds, per width, shared by the per-width intervals and the slope.
    multi_seed = any(len(d.seeds) >= 2 for d in data.values())
    boot_opt: dict[int, list[float]] = {w: [] for w in widths}
    boot_slopes: list[float] = []
    if multi_seed and n_boot > 0:
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

    alpha = (1 - CI_LEVEL) / 2
    out: list[WidthOptimum] = []
    for w in widths:
        d, opt = data[w], point[w]
        xs, ys = d.curve()
        if opt is None:
            status: WidthStatus = "all_diverged" if xs.size else "no_data"
            out.append(WidthOptimum(width=w, opt_log2=None, ci_low=None, ci_high=None,
                                    best_loss=None, n_points=int(xs.size), n_seeds=d.n_seeds,
                                    status=status))
            if status == "all_diverged":
                warn.append(f"{label}: every run at width {w} diverged: the width is left out of "
                            f"the drift fit; lower the {hp_words} grid")
            else:
                warn.append(f"{label}: no finished runs at width {w}: the width is left out of "
                            "the drift fit; run or retry the sweep")
            continue
        delta = seed_delta(d.seed_losses_at(opt.grid_log2), opt.best_loss)
        lo, hi = curvature_interval(opt, delta)
        if boot_opt[w]:
            b_lo, b_hi = np.quantile(boot_opt[w], [alpha, 1 - alpha])
            lo, hi = min(lo, float(b_lo)), max(hi, float(b_hi))
        out.append(WidthOptimum(width=w, opt_log2=opt.opt_log2, ci_low=lo, ci_high=hi,
                                best_loss=opt.best_loss, grid_log2=opt.grid_log2,
                                refined=opt.refined, edge=opt.edge, n_points=int(xs.size),
                                n_seeds=d.n_seeds, status="ok"))
        _warn_optimum(label, hp_words, w, opt, int(xs.size), warn)

    result = DriftResult(hp=hp, parametrization=param, widths=out,
                         grid_step=_grid_step(list(frame[x_col].unique())))
    usable = result.usable()
    if len(usable) < 2:
        result.ci_method = "none: fewer than two widths with an optimum"
        warn.append(f"{label}: only {len(usable)} width(s) with an optimum: no drift can be "
                    "measured; add widths or fix the diverged ones")
    else:
        x = np.array([math.log2(w.width) for w in usable])
        y = np.array([w.opt_log2 for w in usable], dtype=float)
        slope, intercept, se = _ols(x, y)
        if se is not None:
            t = float(stats.t.ppf(1 - alpha, x.size - 2))
            reg = (slope - t * se, slope + t * se)
            reg_method = f"t-interval ({x.size - 2} dof)"
        else:
            a, b = usable
            dx = math.log2(b.width) - math.log2(a.width)
            assert None not in (a.ci_low, a.ci_high, b.ci_low, b.ci_high)
            reg = ((b.ci_low - a.ci_high) / dx, (b.ci_high - a.ci_low) / dx)  # type: ignore[operator]
            reg_method = "ends of the two widths' intervals"
        if boot_slopes:
            b_lo, b_hi = np.quantile(boot_slopes, [alpha, 1 - alpha])
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
    if target_width is not None and usable:
        result.target_width = target_width
        result.predicted_log2 = result.predict(target_width)
        stable = param in STABLE_PARAMETRIZATIONS or result.drift_slope is None
        result.prediction = ("stable optimum: mean of the per-width optima" if stable
                             else "drift line")
        lo_w, hi_w = usable[0].width, usable[-1].width
        result.extrapolated = (not stable) and not (lo_w <= target_width <= hi_w)
    return result


def _warn_optimum(label: str, hp_words: str, width: int, opt: CurveOptimum, n_points: int,
                  warn: list[str]) -> None:
    """Warnings about one width's optimum: grid edge, or too few points around it."""
    if opt.edge is not None:
        neighbour = opt.upper_neighbour if opt.edge == "lower" else opt.lower_neighbour
        spacing = abs(opt.grid_log2 - neighbour) if neighbour is not None else 1.0
        nxt = opt.grid_log2 + spacing if opt.edge == "upper" else opt.grid_log2 - spacing
        grid = "grid" if hp_words == "LR" else f"{hp_words} grid"
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
                    f"{hp_words} grid near it")


def _warn_monotone(d: DriftResult, warn: list[str]) -> None:
    """µP: wider should be better (TP5, Section 4); warn when the best loss rises with width."""
    usable = [w for w in d.usable() if w.best_loss is not None]
    for a, b in zip(usable, usable[1:], strict=False):
        assert a.best_loss is not None and b.best_loss is not None
        if b.best_loss > a.best_loss + MONOTONE_REL_TOL * abs(a.best_loss):
            label = d.parametrization if d.hp == "lr" else f"{d.parametrization} {d.hp}"
            warn.append(f"{label}: best loss rises with width, from {a.best_loss:.4g} at width "
                        f"{a.width} to {b.best_loss:.4g} at width {b.width}: under µP wider "
                        "should be better; check that the grid covers every width's optimum "
                        "and that runs train long enough")


# --- Verdict ---------------------------------------------------------------------------------


def _fmt_ci(ci: list[float] | None) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _verdict(
    hp: str, by_param: dict[str, DriftResult], tol: float, strict_interval: bool = False
) -> HPVerdict:
    """Apply the rule of the module docstring to one HP."""
    words = "LR" if hp == "lr" else hp
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    sp = by_param.get("sp")
    sp_note = ""
    if sp is not None and sp.drift_slope is not None:
        sp_note = (f"; SP {words} drift {sp.drift_slope:+.2f} log2 per width doubling "
                   f"(95% CI {_fmt_ci(sp.drift_ci)})")

    def no(reason: str) -> HPVerdict:
        return HPVerdict(hp=hp, verdict="not_confirmed", reason=reason + sp_note)

    if mup is None:
        return no(f"the sweep has no µP runs: {words} transfer is judged on µP; add mup to "
                  "parametrizations")
    usable = mup.usable()
    if len(usable) < 2 or mup.drift_slope is None:
        return no(f"µP has an {words} optimum at {len(usable)} width(s): at least two are needed")
    edges = [w.width for w in usable if w.edge is not None]
    if edges:
        return no(f"µP {words} optimum at the edge of the grid for widths {edges}: the true "
                  "optimum may lie beyond it; extend the grid")
    drift = (f"µP {words} drift {mup.drift_slope:+.2f} log2 per width doubling "
             f"(95% CI {_fmt_ci(mup.drift_ci)})")
    if abs(mup.drift_slope) > tol:
        return no(f"{drift} exceeds the tolerance ±{tol:g}")
    if strict_interval and not (
        mup.drift_ci is not None and -tol <= mup.drift_ci[0] and mup.drift_ci[1] <= tol
    ):
        return no(f"{drift}: the interval is not within the tolerance ±{tol:g} (strict rule); "
                  "add widths or seeds to narrow it")
    step = mup.grid_step or 0.0
    if not mup.optima_agree:
        return no(f"{drift} is within ±{tol:g}, but the per-width optima disagree: their "
                  f"intervals are {mup.optima_spread:.2f} log2 apart, more than one grid step "
                  f"({step:g})")
    return HPVerdict(hp=hp, verdict="confirmed",
                     reason=f"{drift} is within ±{tol:g} and the per-width optima agree within "
                            f"their intervals (within one grid step, {step:g}){sp_note}")


def analyze(
    runs: pd.DataFrame,
    tolerance: float = DEFAULT_TOLERANCE,
    loss: str = "final_train_loss",
    *,
    target_width: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    strict_interval: bool = False,
) -> TransferReport:
    """Analyse a sweep's runs for µTransfer (TP5, Yang et al., 2022): optima, drift, verdict.

    Args:
        runs: one row per run, like `Store.runs_frame`: parametrization, width, lr (or
            log2_lr), seed, state ("done", "diverged", others count as missing), the loss
            column, and the swept HP columns (init_std, output_mult, ...).
        tolerance: |µP drift| allowed, in log2 units per width doubling.
        loss: which loss column to optimise ("final_train_loss" or "final_val_loss").
        target_width: also predict every optimum at this width (µP: the stable optimum; SP: the
            drift line, flagged as extrapolation outside the ladder).
        n_bootstrap: bootstrap resamples over seeds (0 disables the bootstrap).
        seed: the bootstrap's RNG seed (the analysis is deterministic for a fixed seed).
        strict_interval: also require the µP drift's whole 95% interval within the tolerance
            (rule (d) of the module docstring).

    Returns:
        The `TransferReport`; its `to_contract_json()` is the `analyze --json` document.

    Raises:
        ValueError: a required column is missing, or the tolerance is not positive.
    """
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number of log2 units per width "
                         f"doubling, got {tolerance!r}: use e.g. 0.25")
    warn: list[str] = []
    if len(runs) == 0:
        return TransferReport(verdict="not_confirmed", reason="the sweep has no runs",
                              tolerance=tolerance, loss=loss, n_runs=0)
    df = _prepare(runs, loss)
    others = swept_hps(runs)
    hps = ["lr", *others]
    results: dict[str, dict[str, DriftResult]] = {hp: {} for hp in hps}
    for hp in hps:
        x_col = hp
        other_cols = [c for c in hps if c != hp]
        for param in sorted(df["parametrization"].unique(), key=_param_order):
            frame = df[df["parametrization"] == param]
            d = _drift(hp, param, frame, x_col, other_cols, n_bootstrap, seed, target_width, warn)
            if param in STABLE_PARAMETRIZATIONS:
                _warn_monotone(d, warn)
            results[hp][param] = d
    verdicts = [_verdict(hp, results[hp], tolerance, strict_interval) for hp in hps]
    for hp in hps:
        mup = results[hp].get(VERDICT_PARAMETRIZATION)
        if mup is not None and mup.drift_ci is not None and not (
            -tolerance <= mup.drift_ci[0] and mup.drift_ci[1] <= tolerance
        ):
            words = "LR" if hp == "lr" else hp
            warn.append(f"mup: the {words} drift's 95% interval {_fmt_ci(mup.drift_ci)} is "
                        f"wider than the tolerance ±{tolerance:g}, so the verdict rests on the "
                        "drift estimate and the agreement of the per-width optima; add widths "
                        "or seeds to narrow the interval")
    confirmed = all(v.verdict == "confirmed" for v in verdicts)
    reason = "; ".join(v.reason for v in verdicts) if len(verdicts) > 1 else verdicts[0].reason
    return TransferReport(
        verdict="confirmed" if confirmed else "not_confirmed",
        reason=reason,
        tolerance=tolerance,
        loss=loss,
        warnings=warn,
        lr=results["lr"],
        hparams={hp: results[hp] for hp in others},
        verdicts=verdicts,
        n_runs=len(runs),
        target_width=target_width,
    )


def _param_order(name: str) -> tuple[int, str]:
    return (0 if name == VERDICT_PARAMETRIZATION else 1, name)
