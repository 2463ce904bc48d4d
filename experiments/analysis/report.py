"""µTransfer analysis of a sweep: per-width optima, drift against width, and a verdict.

Tensor Programs V (Yang et al., 2022), Section 4 and Figure 1: under µP the optimal learning
rate (and the other global HPs, `experiments.spec.run.GLOBAL_KNOBS`: init scale, output, attention
and input multipliers) stays put as width grows, while under SP with Adam it drifts down. This
module turns the stored runs of a sweep into that picture, as data (`schema`), step by step:

1. Per (parametrization, width): the seed-mean final loss on the log2 grid (diverged runs are
   +inf, so a mean over seeds with one divergence is +inf and is never an optimum; unfinished
   runs are missing; `summary`). Every knob that takes more than one value is swept and gets
   its own optimum per width, like the LR. When several HPs are swept, the curve of one HP is
   profiled: at each of its values, the best seed-mean loss over the other HPs' values.
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
   width doubling. (Steps 2-4: `drift`.)
5. Verdict (per swept HP, judged on µP; `verdict`, which states the rule in its order): one of
   three (`outcome`), each with the one next step that would decide, fix or use it:
   - not_confirmed, the evidence says transfer fails: every run diverged at a width of the
     ladder (rule (a): a width is never left out), the drift's whole 95% interval lies
     outside ±tolerance (the optimum moves; rule (b)), or the LR's regret at the widest
     width has its whole interval above max(regret_tolerance x the best loss, the seed noise
     there) (copying costs more than the tolerance; rule (d), `regret_rule`);
   - inconclusive, the evidence cannot tell: a width has no finished run yet, an optimum sits
     on the grid's edge, the drift estimate is outside the tolerance but its interval reaches
     inside, fewer than 4 widths leave the slope an interval wider than the tolerance, the
     per-width optima (intervals widened by one grid step; rule (c)) disagree without lining
     up into a drift, or the regret's interval straddles the allowance;
   - confirmed otherwise: the drift estimate within ±tolerance (default 0.25 log2 per
     doubling), the optima agreeing and the regret within its allowance.
   With 4 widths or more the drift's interval is reported beside the estimate, and a warning
   says when it is wider than the tolerance; it is not part of the default rule there because
   with 4-5 widths a t-interval is often wider than any useful tolerance even when the optimum
   does not move at all (the quick preset: slope -0.09, interval [-1.45, +1.28]); with 3
   widths it is (one residual degree of freedom). `strict_interval=True` (CLI
   `analyze --strict-interval`) asks for (e) the whole interval within the tolerance always,
   for sweeps with enough widths and seeds to afford it.
6. Transfer regret per width and parametrization (`regret`): the loss at the proxy's optimal LR
   read off each width's fitted curve, minus that width's best loss, with a bootstrap interval.

The input is a runs DataFrame like `Store.runs_frame`; everything is pure (no store, no torch).
Parametrizations are listed in `summary.PARAM_ORDER` (SP, then µP), in the report as on the
dashboard.
"""

from __future__ import annotations

import math

import pandas as pd

from experiments.analysis.drift import BOOTSTRAP_SEED, N_BOOTSTRAP, fit_drift, warn_monotone
from experiments.analysis.forecast import depth_forecast, forecast_by_param
from experiments.analysis.ladder import ladder_report, split_ladders
from experiments.analysis.ladder_schema import LadderReport
from experiments.analysis.loss_choice import resolve_loss
from experiments.analysis.outcome import overall_verdict
from experiments.analysis.regret import regret_by_param
from experiments.analysis.schema import (
    DriftResult,
    TransferReport,
)
from experiments.analysis.summary import param_order, prepare_runs, swept_hps
from experiments.analysis.verdict import (
    DEFAULT_REGRET_TOLERANCE,
    DEFAULT_TOLERANCE,
    applied_regret,
    hp_verdict,
    interval_warning,
)
from experiments.models.parametrizations import is_width_stable


def analyze(
    runs: pd.DataFrame,
    tolerance: float = DEFAULT_TOLERANCE,
    loss: str = "final_train_loss",
    *,
    target_width: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    strict_interval: bool = False,
    regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
    depth_width: int | None = None,
) -> TransferReport:
    """Analyse a sweep's runs for µTransfer (TP5, Yang et al., 2022): optima, drift, verdict.

    Args:
        runs: one row per run, like `Store.runs_frame`: parametrization, width, lr (or
            log2_lr), seed, state ("done", "diverged", others count as missing), the loss
            column, and a column per global knob (`GLOBAL_KNOBS`; a knob with one value, or
            no column, is not swept).
        tolerance: |µP drift| allowed, in log2 units per width doubling.
        loss: which loss to optimise: "final_train_loss" / "train", "final_val_loss" / "val",
            or "auto" (validation where the task has a validation split;
            `experiments.analysis.loss_choice`). The report's `loss` is the column used.
        target_width: also predict every optimum at this width (µP: the stable optimum; SP: the
            drift line, flagged as extrapolation outside the ladder), and forecast each
            parametrization's best loss there (`experiments.analysis.forecast`).
        n_bootstrap: bootstrap resamples over seeds (0 disables the bootstrap).
        seed: the bootstrap's RNG seed (the analysis is deterministic for a fixed seed).
        strict_interval: also require the µP drift's whole 95% interval within the tolerance
            (rule (e) of the module docstring).
        regret_tolerance: rule (d)'s relative LR regret allowed at the widest width (0.01: 1%
            of its best loss), unless its seed noise is larger.
        depth_width: the width every ladder section (depth, ...) reads (default: the smallest).

    Returns:
        The `TransferReport`; its `to_contract_json()` is the `analyze --json` document.

    Raises:
        ValueError: a required column is missing, a tolerance is not positive, or
            `depth_width` is not a width of the ladder.
    """
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number of log2 units per width "
                         f"doubling, got {tolerance!r}: use e.g. 0.25")
    if not (math.isfinite(regret_tolerance) and regret_tolerance > 0):
        raise ValueError(f"regret_tolerance must be a positive fraction of the best loss, got "
                         f"{regret_tolerance!r}: use e.g. 0.01 for 1%")
    loss, loss_reason = resolve_loss(runs, loss)
    if len(runs) == 0:
        return TransferReport(verdict="inconclusive", reason="the sweep has no runs",
                              next_step="run the sweep (`sweep run`, or Launch on Setup)",
                              tolerance=tolerance, loss=loss, n_runs=0,
                              regret_tolerance=regret_tolerance)
    runs, ladders = split_ladders(runs)  # ladders (depth, ...): widths at their bases
    df = prepare_runs(runs, loss)
    knobs = swept_hps(runs)
    hps = ["lr", *knobs]
    warn: list[str] = []
    # A one-width sweep with ladders measures along them on purpose: no "add widths" warning.
    one_width_ladder = bool(ladders) and df["width"].nunique() == 1
    results = {
        hp: _drift_by_param(df, hp, [c for c in hps if c != hp], n_bootstrap=n_bootstrap,
                            seed=seed, target_width=target_width, warn=warn,
                            warn_few=not one_width_ladder)
        for hp in hps
    }
    regret = regret_by_param(df, knobs, n_bootstrap=n_bootstrap, seed=seed)
    verdicts = [hp_verdict(hp, results[hp], tolerance, strict_interval,
                           regret=regret if hp == "lr" else None,
                           regret_tolerance=regret_tolerance) for hp in hps]
    for hp in hps:
        message = interval_warning(hp, results[hp], tolerance)
        if message is not None:
            warn.append(message)
    overall = overall_verdict([v.verdict for v in verdicts])
    return TransferReport(
        verdict=overall,
        reason="; ".join(v.reason for v in verdicts),
        # The step of the first HP whose verdict is the overall one: what decides it.
        next_step=next(v.next_step for v in verdicts if v.verdict == overall),
        tolerance=tolerance,
        loss=loss,
        warnings=warn,
        lr=results["lr"],
        hparams={hp: results[hp] for hp in knobs},
        verdicts=verdicts,
        n_runs=len(runs),
        target_width=target_width,
        regret_tolerance=regret_tolerance,
        regret_applied=applied_regret(regret, results["lr"].get("mup"), regret_tolerance),
        regret=regret,
        ladders=_ladder_sections(ladders, tolerance, loss, n_bootstrap=n_bootstrap, seed=seed,
                                 strict_interval=strict_interval, width=depth_width,
                                 regret_tolerance=regret_tolerance),
        loss_reason=loss_reason,
        forecast=forecast_by_param(df, knobs, target_width, n_bootstrap=n_bootstrap, seed=seed),
        forecast_depth=depth_forecast(ladders.get("depth"), loss, depth_width,
                                      n_bootstrap=n_bootstrap, seed=seed),
    )


def _ladder_sections(ladders: dict[str, pd.DataFrame], tolerance: float, loss: str, *,
                     n_bootstrap: int, seed: int, strict_interval: bool, width: int | None,
                     regret_tolerance: float) -> dict[str, LadderReport]:
    """One section per ladder axis in the runs (`experiments.analysis.ladder`), read at
    `width` (default: the smallest)."""
    out: dict[str, LadderReport] = {}
    for axis, runs in ladders.items():
        section = ladder_report(runs, axis, tolerance, loss, n_bootstrap=n_bootstrap, seed=seed,
                                strict_interval=strict_interval, width=width,
                                regret_tolerance=regret_tolerance)
        if section is not None:
            out[axis] = section
    return out


def _drift_by_param(
    df: pd.DataFrame,
    hp: str,
    other_hps: list[str],
    *,
    n_bootstrap: int,
    seed: int,
    target_width: int | None,
    warn: list[str],
    warn_few: bool = True,
) -> dict[str, DriftResult]:
    """One HP's drift in every parametrization (in `PARAM_ORDER`), with µP's monotone check."""
    out: dict[str, DriftResult] = {}
    for param in param_order(df["parametrization"].unique()):
        d = fit_drift(hp, param, df[df["parametrization"] == param], other_hps,
                      n_bootstrap=n_bootstrap, seed=seed, target_width=target_width, warn=warn,
                      warn_few=warn_few)
        if is_width_stable(param):
            warn_monotone(d, warn)
        out[param] = d
    return out

