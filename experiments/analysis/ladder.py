"""Transfer along a ladder axis other than width: the width analysis with the axis as x.

CompleteP (Dey et al., 2025, arXiv 2505.01618) and depth-µP (Yang et al., 2023, arXiv
2310.02244) claim that the optimal LR stays put as residual blocks are added, as µP claims it
for width (TP5); any other registered axis (`experiments.analysis.axes`) makes its own claim
the same way. The rules are the width rules of `experiments.analysis.report`, run on a frame
where the run's value on the axis plays the width's role:

1. The runs at one fixed width: the smallest of the sweep (the proxy width in every preset),
   or the one the caller picks (`analyze --depth-width`; the Transfer page's width picker),
   with every other ladder axis at its base.
2. Per (parametrization, rung): the seed-mean curve, its refined optimum and interval
   (`drift.fit_drift`, steps 1-3 of the report), then the least-squares drift of the optimum
   against log2(rung): log2 LR per doubling (step 4).
3. The verdict is step 5's rule (a)-(d) (`verdict.hp_verdict`) judged on the axis entry's
   parametrization (depth: CompleteP, else depth-µP), with the compared one's drift quoted
   beside it (depth: plain µP, the contrast the depth rules are about). Rule (d), the transfer
   regret (`experiments.analysis.regret`), reads what copying the base rung's optimal LR costs
   at the last rung, in % of its best loss.

The width section of a sweep with ladders is computed on the runs where every ladder sits at
its base (`split_ladders`), so it reads as the width-only sweep at those values would.
"""

from __future__ import annotations

import pandas as pd

from experiments.analysis.axes import PRIMARY, Axis, at_bases, base_of, get_axis, ladder_bases
from experiments.analysis.drift import fit_drift
from experiments.analysis.exponent import ExponentFit, exponent_fit, swept_rule
from experiments.analysis.ladder_schema import LadderDrift, LadderOptimum, LadderReport
from experiments.analysis.regret import regret_by_param
from experiments.analysis.regret_schema import RegretResult
from experiments.analysis.schema import VERDICT_PARAMETRIZATION, DriftResult, HPVerdict
from experiments.analysis.summary import param_order, prepare_runs, swept_hps
from experiments.analysis.verdict import (
    COMPARED_PARAMETRIZATION,
    DEFAULT_REGRET_TOLERANCE,
    hp_verdict,
)
from experiments.models.parametrizations import parametrization_short_label


def split_depth_ladder(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the runs the width section reads, the depth ladder's runs or None): `split_ladders`
    for the depth axis alone."""
    width_runs, ladders = split_ladders(runs)
    return width_runs, ladders.get("depth")


def split_ladders(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """(the runs the width section reads, {axis name: that ladder's runs}).

    The width section keeps the runs where every ladder sits at its base; the runs of the
    ladder on one axis are those where every other ladder sits at its base (all widths).
    """
    bases = ladder_bases(runs)
    if not bases:
        return runs, {}
    return (at_bases(runs, bases).reset_index(drop=True),
            {name: at_bases(runs, bases, skip=name).reset_index(drop=True) for name in bases})


def ladder_report(
    runs: pd.DataFrame | None,
    axis: str | Axis,
    tolerance: float,
    loss: str,
    *,
    n_bootstrap: int,
    seed: int,
    strict_interval: bool = False,
    width: int | None = None,
    regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
) -> LadderReport | None:
    """The section of one ladder axis (module docstring); None without a ladder.

    Args:
        runs: the ladder's runs (`split_ladders`), like `Store.runs_frame`.
        axis: the registered axis (or its name).
        tolerance: |drift| allowed, log2 LR per doubling of the axis.
        loss: the loss column analysed.
        n_bootstrap: bootstrap resamples over seeds.
        seed: the bootstrap's RNG seed.
        strict_interval: also require the drift's whole interval within the tolerance.
        width: the width whose runs are read (default: the smallest).
        regret_tolerance: rule (d)'s relative LR regret allowed at the last rung.

    Raises:
        ValueError: `width` is not a width of the sweep.
    """
    ax = get_axis(axis) if isinstance(axis, str) else axis
    base = None if runs is None else base_of(runs, ax)
    if runs is None or base is None:
        return None
    widths = sorted(int(w) for w in runs[PRIMARY].unique())
    if width is None:
        width = widths[0]
    elif width not in widths:
        raise ValueError(f"{ax.name} width {width} is not a width of the sweep: use one of "
                         f"{widths}")
    frame = runs[runs[PRIMARY] == width].copy()
    frame[PRIMARY] = frame[ax.column].astype(int)  # the axis plays the width's role
    df = prepare_runs(frame, loss)
    knobs = swept_hps(frame)
    warn: list[str] = []
    drifts = {p: fit_drift("lr", p, df[df["parametrization"] == p], knobs,
                           n_bootstrap=n_bootstrap, seed=seed, target_width=None, warn=warn)
              for p in param_order(df["parametrization"].unique())}
    regret = regret_by_param(df, knobs, n_bootstrap=n_bootstrap, seed=seed)
    judged = ax.judged(drifts)
    verdict = _verdict(ax, drifts, regret, judged, tolerance, strict_interval, regret_tolerance)
    exponents: dict[str, ExponentFit | None] = {}
    rule = swept_rule(frame, ax.scaling) if ax.scaling else None
    if rule is not None:
        exponents = {p: exponent_fit(df[df["parametrization"] == p], ax.scaling, base,
                                     d.drift_slope, d.drift_ci, rule, knobs,
                                     n_bootstrap=n_bootstrap, seed=seed)
                     for p, d in drifts.items()}
        if verdict.verdict == "not_confirmed" and judged is not None:
            verdict = verdict.model_copy(update={"next_step": _scaling_step(
                ax, exponents.get(judged))})
    return LadderReport(
        axis=ax.name, verdict=verdict.verdict, reason=verdict.reason,
        next_step=verdict.next_step, tolerance=tolerance, width=width,
        base=base, judged_on=judged, warnings=[_in_axis_words(w, ax) for w in warn],
        parametrizations={p: _ladder_drift(d, regret.get(p), ax, exponents.get(p))
                          for p, d in drifts.items()},
        rule=None if rule is None else rule.label,
        rule_exponent=None if rule is None else rule.exponent,
    )


def _verdict(ax: Axis, drifts: dict[str, DriftResult], regret: dict[str, RegretResult],
             judged: str | None, tolerance: float, strict_interval: bool,
             regret_tolerance: float) -> HPVerdict:
    """The width rule on the judged parametrization (confirmed, not_confirmed or
    inconclusive), its reason and next step in the axis's words."""
    if judged is None:
        reason, _, fix = ax.no_judged_reason().partition("; ")
        return HPVerdict(hp="lr", verdict="not_confirmed", reason=reason,
                         next_step=(fix or "add a parametrization the axis is judged on")
                         + " and run the sweep again")
    compared = ax.compared(p for p in drifts if p != judged)
    by_param = {VERDICT_PARAMETRIZATION: drifts[judged]}
    by_regret = {VERDICT_PARAMETRIZATION: regret[judged]} if judged in regret else {}
    if compared is not None:
        by_param[COMPARED_PARAMETRIZATION] = drifts[compared]
        if compared in regret:
            by_regret[COMPARED_PARAMETRIZATION] = regret[compared]
    v = hp_verdict("lr", by_param, tolerance, strict_interval, regret=by_regret,
                   regret_tolerance=regret_tolerance)
    return HPVerdict(hp="lr", verdict=v.verdict, reason=_in_axis_words(v.reason, ax, judged,
                                                                       compared),
                     next_step=_in_axis_words(v.next_step, ax, judged, compared))


def _scaling_step(ax: Axis, fit: ExponentFit | None) -> str:
    """The next step when the LR moves along a batch or horizon ladder: the model's µP rules
    are not at fault (they say nothing about batch or length), a scaling rule is."""
    flag = f"--{ax.scaling}-rule"
    rule = f"`scaling: {{{ax.scaling}: ...}}`"
    if fit is None or fit.exponent is None:
        return (f"the optimum moves with {ax.word}: sweep again under a {ax.scaling} rule that "
                f"moves the LR with it ({rule})")
    best = fit.best()
    cheapest = "" if best is None else f"; of the published rules {best.rule} costs least"
    return (f"the optimum moves with {ax.word} as {ax.word}^{fit.exponent:+.2f}{cheapest}: "
            f"export with `{flag} fitted` (or a named rule), or sweep again under that rule "
            f"({rule}) to confirm it")


def _in_axis_words(text: str, ax: Axis, judged: str | None = None,
                   compared: str | None = None) -> str:
    """A width-rule sentence said of the axis: widths are rungs, µP/SP the judged/compared
    tables."""
    # The export flag first: "--target-width" said of batch is --target-batch, not
    # "--target-batch size".
    text = text.replace("--target-width N", "\1")
    text = text.replace("SP ", "\0 ")  # before µP's label, which may itself contain "µP"
    if judged is not None:
        text = text.replace("µP", parametrization_short_label(judged))
    if compared is not None:
        text = text.replace("\0", parametrization_short_label(compared))
    text = text.replace("\0", "SP").replace("width", ax.word)
    return text.replace("\1", f"{ax.target_flag or '--target-' + ax.name} N")


def _ladder_drift(d: DriftResult, regret: RegretResult | None, ax: Axis,
                  exponent: ExponentFit | None = None) -> LadderDrift:
    """A width drift (fitted on the rungs), its regret rows and (batch, horizon) its measured
    exponent as the ladder section's model."""
    rows = [] if regret is None else [
        {"value": r["width"], **{k: v for k, v in r.items() if k != "width"}}
        for r in regret.contract_rows()]
    if exponent is not None:
        for c in exponent.candidates:
            c.note = None if c.note is None else _in_axis_words(c.note, ax)
    return LadderDrift(
        regret=rows, exponent=exponent,
        parametrization=d.parametrization,
        points=[LadderOptimum(value=w.width, opt_log2_lr=w.opt_log2, ci_low=w.ci_low,
                              ci_high=w.ci_high, best_loss=w.best_loss, edge=w.edge,
                              status=w.status) for w in d.widths],
        drift_slope=d.drift_slope, drift_intercept=d.drift_intercept, drift_ci=d.drift_ci,
        ci_method=d.ci_method.replace("width", ax.word), optima_agree=d.optima_agree,
    )
