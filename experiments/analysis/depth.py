"""Depth transfer of a sweep with a depth ladder: the width analysis with depth as axis.

CompleteP (Dey et al., 2025, arXiv 2505.01618) and depth-µP (Yang et al., 2023, arXiv
2310.02244) claim that the optimal LR stays put as residual blocks are added, as µP claims it
for width (TP5). The rules are the width rules of `experiments.analysis.report`, run on a frame
where the run's depth plays the width's role:

1. The runs at one fixed width: the smallest of the ladder (the proxy width in every preset),
   or the one the caller picks (`analyze --depth-width`; the Transfer page's width picker).
2. Per (parametrization, depth): the seed-mean curve, its refined optimum and interval
   (`drift.fit_drift`, steps 1-3 of the report), then the least-squares drift of the optimum
   against log2(depth): log2 LR per depth doubling (step 4).
3. The verdict is step 5's rule (a)-(d) (`verdict.hp_verdict`: confirmed, not_confirmed or
   inconclusive, with its next step) judged on CompleteP (else depth-µP), with plain µP's
   drift quoted beside it: the contrast the depth rules are about.
   Rule (d), the transfer regret (`experiments.analysis.regret`), reads here what copying the
   shallowest depth's optimal LR costs at the deepest depth, in % of its best loss.

The width section of a ladder's report is computed on the runs at the base depth
(`split_depth_ladder`), so it reads as the width-only sweep at that depth would.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from experiments.analysis.depth_schema import DepthDrift, DepthOptimum, DepthReport
from experiments.analysis.drift import fit_drift
from experiments.analysis.regret import regret_by_param
from experiments.analysis.regret_schema import RegretResult
from experiments.analysis.schema import VERDICT_PARAMETRIZATION, DriftResult, HPVerdict
from experiments.analysis.summary import param_order, prepare_runs, swept_hps
from experiments.analysis.verdict import (
    COMPARED_PARAMETRIZATION,
    DEFAULT_REGRET_TOLERANCE,
    hp_verdict,
)
from experiments.models.parametrizations import (
    depth_rule_names,
    has_depth_rules,
    is_width_stable,
    parametrization_short_label,
)


def judged_parametrization(names: Iterable[str]) -> str | None:
    """The table the depth verdict is judged on: the first (A-Z) of the sweep's tables with
    depth rules (CompleteP, depth-µP), or None."""
    return next(iter(depth_rule_names(names)), None)


def compared_parametrization(names: Iterable[str]) -> str | None:
    """The table whose drift is quoted beside the judged one: one without depth rules, a
    width-stable one (µP) before the others (SP), A-Z within each."""
    plain = [n for n in sorted(names) if not has_depth_rules(n)]
    return next(iter(sorted(plain, key=lambda n: not is_width_stable(n))), None)


def split_depth_ladder(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the runs the width section reads, the ladder's runs or None without a ladder).

    A ladder is a frame with a `base_depth` (`Store.runs_frame` reads it from the payload) and
    more than one `depth`; its width section keeps the runs at the base depth.
    """
    if "depth" not in runs.columns or "base_depth" not in runs.columns:
        return runs, None
    base = runs["base_depth"].dropna()
    if base.empty or runs["depth"].dropna().nunique() < 2:
        return runs, None
    at_base = runs[runs["depth"] == int(base.iloc[0])].reset_index(drop=True)
    return at_base, runs


def depth_report(
    runs: pd.DataFrame | None,
    tolerance: float,
    loss: str,
    *,
    n_bootstrap: int,
    seed: int,
    strict_interval: bool = False,
    width: int | None = None,
    regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
) -> DepthReport | None:
    """The depth section (module docstring) of a ladder's runs; None without a ladder.

    Args:
        runs: the ladder's runs (`split_depth_ladder`'s second value), like `Store.runs_frame`.
        tolerance: |drift| allowed, log2 LR per depth doubling.
        loss: the loss column analysed.
        n_bootstrap: bootstrap resamples over seeds.
        seed: the bootstrap's RNG seed.
        strict_interval: also require the drift's whole interval within the tolerance.
        width: the width whose runs are read (default: the smallest).
        regret_tolerance: rule (d)'s relative LR regret allowed at the deepest depth.

    Raises:
        ValueError: `width` is not a width of the ladder.
    """
    if runs is None:
        return None
    widths = sorted(int(w) for w in runs["width"].unique())
    if width is None:
        width = widths[0]
    elif width not in widths:
        raise ValueError(f"depth width {width} is not a width of the sweep: use one of {widths}")
    frame = runs[runs["width"] == width].copy()
    frame["width"] = frame["depth"].astype(int)  # depth plays the width's role
    df = prepare_runs(frame, loss)
    knobs = swept_hps(frame)
    warn: list[str] = []
    drifts = {p: fit_drift("lr", p, df[df["parametrization"] == p], knobs,
                           n_bootstrap=n_bootstrap, seed=seed, target_width=None, warn=warn)
              for p in param_order(df["parametrization"].unique())}
    regret = regret_by_param(df, knobs, n_bootstrap=n_bootstrap, seed=seed)
    judged = judged_parametrization(drifts)
    verdict = _verdict(drifts, regret, judged, tolerance, strict_interval, regret_tolerance)
    return DepthReport(
        verdict=verdict.verdict, reason=verdict.reason, next_step=verdict.next_step,
        tolerance=tolerance, width=width,
        base_depth=int(runs["base_depth"].dropna().iloc[0]), judged_on=judged,
        warnings=[_in_depth_words(w) for w in warn],
        parametrizations={p: _depth_drift(d, regret.get(p)) for p, d in drifts.items()},
    )


def _verdict(drifts: dict[str, DriftResult], regret: dict[str, RegretResult],
             judged: str | None, tolerance: float, strict_interval: bool,
             regret_tolerance: float) -> HPVerdict:
    """The width rule on the judged parametrization, its reason and next step in depth's
    words."""
    if judged is None:
        tables = depth_rule_names()
        return HPVerdict(hp="lr", verdict="not_confirmed",
                         reason=f"the sweep has no {' or '.join(tables)} runs: depth transfer "
                                "is judged on a parametrization with depth rules",
                         next_step=f"add {tables[0]} to the spec's parametrizations and run "
                                   "the sweep again")
    compared = compared_parametrization(drifts)
    by_param = {VERDICT_PARAMETRIZATION: drifts[judged]}
    by_regret = {VERDICT_PARAMETRIZATION: regret[judged]} if judged in regret else {}
    if compared is not None:
        by_param[COMPARED_PARAMETRIZATION] = drifts[compared]
        if compared in regret:
            by_regret[COMPARED_PARAMETRIZATION] = regret[compared]
    v = hp_verdict("lr", by_param, tolerance, strict_interval, regret=by_regret,
                   regret_tolerance=regret_tolerance)
    return HPVerdict(hp="lr", verdict=v.verdict, reason=_in_depth_words(v.reason, judged, compared),
                     next_step=_in_depth_words(v.next_step, judged, compared))


def _in_depth_words(text: str, judged: str | None = None, compared: str | None = None) -> str:
    """A width-rule sentence said of depth: widths are depths, µP/SP the compared tables."""
    text = text.replace("SP ", "\0 ")  # before µP's label, which may itself contain "µP"
    if judged is not None:
        text = text.replace("µP", parametrization_short_label(judged))
    if compared is not None:
        text = text.replace("\0", parametrization_short_label(compared))
    return text.replace("\0", "SP").replace("width", "depth")


def _depth_drift(d: DriftResult, regret: RegretResult | None) -> DepthDrift:
    """A width drift (fitted on depths) and its regret rows as the depth section's model."""
    rows = [] if regret is None else [
        {"depth": r["width"], **{k: v for k, v in r.items() if k != "width"}}
        for r in regret.contract_rows()]
    return DepthDrift(
        regret=rows,
        parametrization=d.parametrization,
        depths=[DepthOptimum(depth=w.width, opt_log2_lr=w.opt_log2, ci_low=w.ci_low,
                             ci_high=w.ci_high, best_loss=w.best_loss, edge=w.edge,
                             status=w.status) for w in d.widths],
        drift_slope=d.drift_slope, drift_intercept=d.drift_intercept, drift_ci=d.drift_ci,
        ci_method=d.ci_method.replace("width", "depth"), optima_agree=d.optima_agree,
    )
