"""The LR exponent a batch or horizon ladder measures, beside the published rules' exponents.

A scaling rule moves the LR as lr x k^e along its axis (k = rung / base: batch / base batch, or
T / T0; `mucore.scaling`). The ladder is swept under one rule e_rule (default `none`, e_rule =
0), so the drift slope s the ladder section reads (`experiments.analysis.ladder`: the optimal
log2 LR per doubling of the rung, in the sweep's LR coordinates) is what that rule leaves over,
and the exponent the data prefer is

    e_fit = e_rule + s,   with interval e_rule + drift_ci.

Under `none` that is the raw slope the SDE rule predicts to be 0.5 for Adam along batch at fixed
samples (Malladi et al., 2022, arXiv 2205.10287), SGD's linear rule 1.0, and the Power scheduler
(Shen et al., 2024, arXiv 2408.13359) and Complete^(d)P (Mlodozeniec et al., 2025) -1/2 along
the horizon. Each candidate c (`mucore.candidate_exponents`, plus `fitted`) is then priced at the
largest rung K (k_max = K / base), in loss, as the width section prices copying the proxy's LR
(`experiments.analysis.regret`):

1. x0 = the base rung's refined optimal log2 LR (sweep coordinates; `curves.curve_optimum`).
2. Applying c puts the LR at x_c = x0 + (e_c - e_rule) x log2(k_max) in sweep coordinates.
3. Regret = K's fitted loss at x_c (`regret.fitted_loss`: its parabola near the optimum, straight
   lines between grid points elsewhere) - K's best loss; null with a note when x_c lies outside
   the LRs trained at K or beside a diverged point (no extrapolation).
4. Interval: a bootstrap over seeds (base and K resampled independently, fixed RNG), the
   2.5%-97.5% quantiles widened to the point estimate; seed noise as the regret's (`seed_noise`).

Only the LR's exponent is priced: a rule that also moves betas and eps (`sqrt`) is priced on its
LR move alone, since one sweep trains one setting of the betas per rung.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from experiments.analysis.drift import ALPHA, _WidthData, seed_noise
from experiments.analysis.exponent_schema import FITTED, CandidateRegret, ExponentFit
from experiments.analysis.regret import REGRET_HP, _curve_fit, _note, _regret
from experiments.spec.scaling import ScalingConfig
from mucore.optimizers import get_optimizer, optimizer_names
from mucore.parametrizations import OptimizerFamily
from mucore.scaling import candidate_exponents


class SweptRule(NamedTuple):
    """The rule a ladder was swept under: its label, LR exponent, and the optimizer family."""

    label: str
    exponent: float
    family: OptimizerFamily | None


def swept_rule(runs: pd.DataFrame, axis: str) -> SweptRule:
    """The rule (label, LR exponent, optimizer family) the runs were swept under along `axis`
    ("batch" or "horizon"), read from the runs frame's `scaling` and `optimizer` columns (NULL:
    `none`).

    Raises:
        ValueError: the runs were swept under different rules.
    """
    texts = set(runs["scaling"].dropna()) if "scaling" in runs.columns else set()
    configs = {ScalingConfig.model_validate_json(t).rule(axis).label: t for t in texts}
    if len(configs) > 1 or (configs and runs["scaling"].isna().any()):
        raise ValueError(f"the {axis} ladder's runs were swept under different scaling rules "
                         f"({sorted(configs)}): analyse one sweep per rule")
    config = ScalingConfig.model_validate_json(next(iter(configs.values()))) if configs \
        else ScalingConfig()
    rule = config.rule(axis)
    family = _family(runs)
    row = rule.rows.get(family) if family is not None else None
    exp = row.lr_exp if row is not None else max((r.lr_exp for r in rule.rows.values()), key=abs)
    return SweptRule(rule.label, float(exp), family)


def exponent_fit(
    frame: pd.DataFrame, axis: str, base: int, drift_slope: float | None,
    drift_ci: list[float] | None, rule: SweptRule, other_hps: list[str], *,
    n_bootstrap: int, seed: int,
) -> ExponentFit | None:
    """The measured exponent and the candidates' regrets of one parametrization (module
    docstring); None when the base is not a rung or there is only one rung.

    Args:
        frame: the prepared runs of one parametrization, the rung in the `width` column
            (`experiments.analysis.ladder` prepares it so).
        axis: "batch" or "horizon" (`mucore.ScalingAxis`).
        base: the base rung.
        drift_slope: the ladder's drift slope (log2 LR per doubling of the rung).
        drift_ci: its 95% interval.
        rule: the rule the ladder was swept under (`swept_rule`).
        other_hps: the other swept HPs, profiled out.
        n_bootstrap: seed resamples (0: no interval).
        seed: the bootstrap RNG's seed.
    """
    rungs = sorted(int(w) for w in frame["width"].unique())
    if base not in rungs or len(rungs) < 2:
        return None
    top = rungs[-1]
    label, e_rule = rule.label, rule.exponent
    exponent = None if drift_slope is None else e_rule + drift_slope
    ci = None if drift_ci is None else [e_rule + drift_ci[0], e_rule + drift_ci[1]]
    data = {r: _WidthData(frame[frame["width"] == r], REGRET_HP, other_hps) for r in (base, top)}
    cands = dict(candidate_exponents(axis, rule.family))
    if exponent is not None:
        cands[FITTED] = exponent
    shift = math.log2(top / base)
    rows = [_candidate(name, e, e_rule, shift, data, base, top) for name, e in cands.items()]
    _bootstrap_into(rows, data, base, top, n_bootstrap, seed, e_rule, shift)
    return ExponentFit(exponent=exponent, exponent_ci=ci, rule=label, rule_exponent=e_rule,
                       rung=top, candidates=rows)


def _family(frame: pd.DataFrame) -> OptimizerFamily | None:
    """The optimizer family the runs trained with (None: unknown, e.g. an old store)."""
    names = set(frame["optimizer"].dropna()) if "optimizer" in frame.columns else set()
    name = next(iter(sorted(names)), "")
    return get_optimizer(name).family if name in optimizer_names() else None


def _candidate(name: str, e: float, e_rule: float, shift: float,
               data: dict[int, _WidthData], base: int, top: int) -> CandidateRegret:
    """One candidate's row, without its interval (rules 1-3)."""
    base_opt = _curve_fit(data[base])[2]
    fit = _curve_fit(data[top])
    if base_opt is None:
        return CandidateRegret(rule=name, exponent=e, status="no_optimum",
                               note=_note("no_optimum", top, base, None))
    x = base_opt.opt_log2 + (e - e_rule) * shift
    loss, best, status = _regret(x, fit)
    if status != "ok" or loss is None or best is None or fit[2] is None:
        return CandidateRegret(rule=name, exponent=e, log2_lr=x, status=status,
                               note=_note(status, top, base, x))
    abs_regret = max(loss - best, 0.0)
    return CandidateRegret(rule=name, exponent=e, log2_lr=x, abs=abs_regret,
                           rel=abs_regret / best if best > 0 else None,
                           noise_abs=seed_noise(data[top], fit[2]))


def _bootstrap_into(rows: list[CandidateRegret], data: dict[int, _WidthData], base: int,
                    top: int, n_boot: int, rng_seed: int, e_rule: float, shift: float) -> None:
    """Rule 4: fill each priced row's interval from seed resamples of the base and top rungs."""
    if n_boot <= 0 or not all(len(d.seeds) >= 2 for d in data.values()):
        return
    rng = np.random.default_rng(rng_seed)
    draws: dict[str, list[float]] = {r.rule: [] for r in rows}
    for _ in range(n_boot):
        fits = {r: _curve_fit(d, rng.integers(0, len(d.seeds), size=len(d.seeds)))
                for r, d in data.items()}
        base_opt = fits[base][2]
        if base_opt is None:
            continue
        for row in rows:
            loss, best, status = _regret(base_opt.opt_log2 + (row.exponent - e_rule) * shift,
                                         fits[top])
            if status == "ok" and loss is not None and best is not None:
                draws[row.rule].append(max(loss - best, 0.0))
    for row in rows:
        if row.abs is not None and draws[row.rule]:
            lo, hi = np.quantile(draws[row.rule], [ALPHA, 1 - ALPHA])
            row.abs_ci_low, row.abs_ci_high = min(float(lo), row.abs), max(float(hi), row.abs)
