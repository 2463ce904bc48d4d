"""The µTransfer verdict of one HP (step 5 of `experiments.analysis.report`, which states the rule).

Judged on µP's drift (`VERDICT_PARAMETRIZATION`); SP's drift is quoted beside it, as the
contrast TP5 Figure 1 draws. Three verdicts (`experiments.analysis.outcome`), each with the one
next step that would decide, fix or use it (`experiments.analysis.next_step`). In order, the
first rule that applies decides:

1. No µP runs: not_confirmed (nothing to judge transfer on; add mup).
2. Rule (a), every width counts: a µP width where every run diverged is the ladder's own
   evidence that the transferred HP breaks there: not_confirmed (lower the grid). A width with
   no finished run yet, or fewer than two widths with an optimum: inconclusive (wait, retry,
   add widths). A width is never left out of the judgement.
3. Rule (d), the LR's regret (`experiments.analysis.regret_rule`): its whole interval above the
   allowance, or the copied LR beside a diverged point: not_confirmed. (A cost measured is a
   cost, even when an optimum sits on the grid's edge: the edge's loss only overstates the best
   loss, so the regret is understated, never overstated.)
4. An optimum on the grid's edge: inconclusive (the true optimum may lie beyond; widen the grid).
5. Rule (b), the drift: its whole 95% interval outside ±tolerance: not_confirmed (the optimum
   moves). The estimate outside the tolerance with the interval reaching inside:
   inconclusive (more widths or seeds).
6. The estimate within the tolerance, but with fewer than `MIN_WIDTHS_FOR_ESTIMATE` widths the
   interval reaching beyond it: inconclusive. Why: the default rule trusts the estimate
   without its interval because with 4-5 widths the t-interval is often wider than any useful
   tolerance even when the optimum does not move (the quick preset: slope -0.09, interval
   [-1.45, +1.28]); with 3 widths the slope has one residual degree of freedom (t = 12.7) and a
   line through three noisy optima says nothing alone (a healthy MLP at widths 64-256, 2 seeds:
   slope +0.06, interval [-2.86, +2.98]). Rule (e) (`strict_interval`) asks this of every sweep.
7. Rule (c), the per-width optima: their intervals, each widened by one grid step, must share a
   value. When they do not while the drift's interval still reaches inside the tolerance, the
   optima scatter without lining up into a drift: inconclusive (more seeds).
8. Rule (d) undecided (estimate above the allowance, interval reaching below) or unknown (the
   proxy's LR outside the widest width's trained LRs): inconclusive (seeds, a wider grid).
9. Otherwise: confirmed (next: export).

Rule (d)'s allowance: max(regret_tolerance x the widest width's best loss, its seed noise), in
loss units; the seed noise is the seeds' standard deviation of the loss pooled over the best
grid point and its neighbours (`experiments.analysis.drift.seed_noise`). Why the noise floor:
a regret below what one run varies by with its seed is a cost a user who trains the target once
cannot see. Why the interval, as rule (b) judges the drift by its: the regret reads the proxy's
optimum, itself a noisy fit of 2-3 seeds, and the target's curve; the point estimate alone fails
healthy sweeps (the science sweep of `tests/experiments/test_transfer_science.py`, µP drift
-0.08: 76% at width 1024 against a noise of 43%, interval [24%, 132%]). Why pooled, and not one
point's standard deviation or the standard error of the seed mean: with 2-3 seeds those
false-alarm too. Measured (train loss, widest width; regret vs noise, % of the best loss):

- quick preset (3 seeds, `tests/fixtures/quick_preset_final_losses.json`), width 512: µP 21%
  (0.0058 on a best loss of 0.028) vs pooled noise 56% (best point alone: std 33%, standard
  error 19%: µP would fail); SP 403% vs 46%.
- mlp-digits-transfer (2 seeds, 5 widths), width 1024: µP 121% (0.0026 on 0.0022) vs pooled
  noise 241% (best point alone: std 101%, standard error 71%: µP would fail); SP 0.021 loss vs
  noise 0.0053 (its fitted best loss is -0.0003, so no % applies).
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.analysis.next_step import (
    MIN_WIDTHS_FOR_ESTIMATE,
    more_evidence,
    more_seeds,
    more_widths,
    wider_grid,
)
from experiments.analysis.outcome import Verdict
from experiments.analysis.regret_rule import (
    RegretJudgement,
    applied_tolerance,
    fmt_pct,
    judge_regret,
    regret_allowed,
    regret_exceeds,
    sp_regret_note,
)
from experiments.analysis.regret_schema import RegretResult
from experiments.analysis.schema import (
    VERDICT_PARAMETRIZATION,
    DriftResult,
    HPVerdict,
    WidthOptimum,
    hp_label,
    hp_words,
)

__all__ = ["COMPARED_PARAMETRIZATION", "DEFAULT_REGRET_TOLERANCE", "DEFAULT_TOLERANCE",
           "fmt_ci", "fmt_pct", "hp_verdict", "interval_warning", "missing_widths_reason",
           "regret_allowed", "regret_exceeds"]

DEFAULT_TOLERANCE = 0.25
# Rule (d): regret allowed at the widest width, as a fraction of its best loss (1%), unless the
# seed noise there is larger.
DEFAULT_REGRET_TOLERANCE = 0.01
# Its drift is quoted in every reason, beside µP's: the contrast the verdict is about.
COMPARED_PARAMETRIZATION = "sp"
EXPORT_STEP = ("export the HPs for your target width (`export SWEEP_ID --target-width N`, or "
               "the Export page)")
DOCTOR_STEP = ("run the doctor on the model (`doctor`, or the Doctor page): under µP the "
               "optimum should stay put, and a drift like SP's means its µP rules are not "
               "applied")


def fmt_ci(ci: list[float] | None) -> str:
    """A 95% interval as words use it: "[-0.12, +0.30]", or "[n/a]"."""
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


@dataclass(frozen=True)
class _Finding:
    """One rule's outcome: the verdict, why (with the numbers) and the next step."""

    verdict: Verdict
    reason: str
    next_step: str


def hp_verdict(
    hp: str,
    by_param: dict[str, DriftResult],
    tol: float,
    strict_interval: bool = False,
    *,
    regret: dict[str, RegretResult] | None = None,
    regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
) -> HPVerdict:
    """Apply the rules of the module docstring to one HP, in their order.

    Args:
        hp: the HP ("lr" or a global knob).
        by_param: its drift per parametrization.
        tol: |µP drift| allowed, log2 units per width doubling.
        strict_interval: also require the drift's whole 95% interval within `tol` (rule (e)).
        regret: the HP's transfer regret per parametrization (the LR's); None skips rule (d).
        regret_tolerance: rule (d)'s relative regret allowed at the widest width.
    """
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    note = _sp_note(hp, by_param.get(COMPARED_PARAMETRIZATION), regret)
    if mup is None:
        found = _Finding("not_confirmed", f"the sweep has no µP runs: {hp_words(hp)} transfer "
                         "is judged on µP", "add mup to the spec's parametrizations and run "
                         "the sweep again")
    else:
        found = _judge(hp, mup, tol, strict_interval, regret, regret_tolerance)
    return HPVerdict(hp=hp, verdict=found.verdict, reason=found.reason + note,
                     next_step=found.next_step)


def _judge(hp: str, mup: DriftResult, tol: float, strict: bool,
           regret: dict[str, RegretResult] | None, regret_tolerance: float) -> _Finding:
    """Rules 2-9 of the module docstring on µP's drift (and regret), first match wins."""
    found = _missing(hp, mup)
    if found is not None:
        return found
    usable = mup.usable()
    n_seeds = max((w.n_seeds for w in usable), default=0)
    judged = (None if regret is None
              else judge_regret(regret, usable[-1].width, regret_tolerance, n_seeds))
    found = _decisive(hp, mup, tol, judged)
    if found is not None:
        return found
    found = _edges(hp, mup) or _drift(hp, mup, tol, strict, n_seeds)
    if found is not None:  # inconclusive: the regret's words complete the picture
        extra = "" if judged is None else f"; {judged.words}"
        return _Finding(found.verdict, found.reason + extra, found.next_step)
    agree = (f"{_drift_words(hp, mup)} is within ±{tol:g} and the per-width optima agree "
             f"(their intervals, each widened by one grid step of {_step_words(mup)}, overlap)")
    return _with_regret(agree, judged)


def _with_regret(agree: str, judged: RegretJudgement | None) -> _Finding:
    """The drift passed: rule (d) decides between confirmed and inconclusive."""
    if judged is None:
        return _Finding("confirmed", agree, EXPORT_STEP)
    if judged.outcome == "within":
        return _Finding("confirmed", f"{agree}, and {judged.words}", EXPORT_STEP)
    return _Finding("inconclusive", f"{agree}, but {judged.words}", judged.next_step)


def _missing(hp: str, mup: DriftResult) -> _Finding | None:
    """Rule 2: widths without an optimum, or fewer than two with one."""
    missing = [w for w in mup.widths if w.opt_log2 is None]
    widths = [w.width for w in mup.widths]
    if missing:
        reason = missing_widths_reason(hp, missing)
        if any(w.status == "all_diverged" for w in missing):
            grid = "LR grid" if hp == "lr" else f"LR and {hp_words(hp)} grids"
            return _Finding("not_confirmed", reason, f"lower the {grid} (add smaller values) "
                            "until every width has an optimum, then run the new points")
        return _Finding("inconclusive", reason, "wait for the sweep to finish, or retry its "
                        "failed runs (`sweep retry`, or Runs), then analyse again")
    usable = mup.usable()
    if len(usable) < 2 or mup.drift_slope is None:
        return _Finding("inconclusive", f"µP has an {hp_words(hp)} optimum at {len(usable)} "
                        "width(s): a drift needs at least two", more_widths(widths))
    return None


def _decisive(hp: str, mup: DriftResult, tol: float,
              judged: RegretJudgement | None) -> _Finding | None:
    """Rules 3 and 5's evidence against transfer, both said when both hold: the drift's whole
    interval outside ±tol (read only without an optimum on the grid's edge, which truncates it)
    and the regret's whole interval above its allowance (or the copied LR diverging)."""
    reasons, steps = [], []
    edges = any(w.edge is not None for w in mup.usable())
    ci = mup.drift_ci
    if not edges and ci is not None and (ci[1] < -tol or ci[0] > tol):
        reasons.append(f"the optimum moves: {_drift_words(hp, mup)} lies wholly outside "
                       f"±{tol:g}")
        steps.append(DOCTOR_STEP)
    if judged is not None and judged.outcome in ("exceeds", "diverged"):
        reasons.append(judged.words)
        steps.append(judged.next_step)
    return _Finding("not_confirmed", "; and ".join(reasons), steps[0]) if reasons else None


def _edges(hp: str, mup: DriftResult) -> _Finding | None:
    """Rule 4: an optimum on the grid's edge leaves the true one unknown."""
    edges = [w for w in mup.usable() if w.edge is not None]
    if not edges:
        return None
    first = edges[0]
    step = mup.grid_step or 1.0
    grid = first.grid_log2 if first.grid_log2 is not None else first.opt_log2 or 0.0
    to = grid - step if first.edge == "lower" else grid + step
    where = ", ".join(f"{w.width} ({w.edge})" for w in edges)
    return _Finding("inconclusive", f"µP {hp_words(hp)} optimum on the edge of the grid at "
                    f"width(s) {where}: the true optimum may lie beyond it, so neither its "
                    "drift nor its agreement can be read",
                    wider_grid(first.edge or "lower", to, hp_words(hp)))


def _drift(hp: str, mup: DriftResult, tol: float, strict: bool, n_seeds: int) -> _Finding | None:
    """Rules 5-7, once `_decisive` found no evidence against: the drift's estimate and
    interval against ±tol, then the optima's agreement."""
    assert mup.drift_slope is not None
    widths = [w.width for w in mup.usable()]
    drift = _drift_words(hp, mup)
    if abs(mup.drift_slope) > tol:  # its interval reaches inside (else `_decisive` decided)
        return _Finding("inconclusive", f"{drift} is outside ±{tol:g}, but its interval "
                        "reaches inside it: the sweep cannot tell a stable optimum from a "
                        "drifting one", more_evidence(widths, n_seeds))
    within = _ci_within(mup.drift_ci, tol)
    if not within and len(widths) < MIN_WIDTHS_FOR_ESTIMATE:
        return _Finding("inconclusive", f"{drift} is within ±{tol:g}, but {_few(len(widths))} "
                        "and its interval reaches beyond the tolerance: the estimate alone "
                        "cannot confirm", more_widths(widths))
    if strict and not within:  # rule (e)
        return _Finding("inconclusive", f"{drift}: the interval is not within ±{tol:g} (strict "
                        "rule)", more_evidence(widths, n_seeds))
    if not mup.optima_agree:
        return _Finding("inconclusive", f"{drift} is within ±{tol:g}, but the per-width optima "
                        f"disagree: their intervals are {mup.optima_spread or 0.0:.2f} log2 "
                        f"apart, more than one grid step ({_step_words(mup)}), without lining "
                        "up into a drift", more_seeds(n_seeds))
    return None


def _few(n_widths: int) -> str:
    """Why a line through so few widths says little: "3 widths leave the slope one residual
    degree of freedom", "2 widths fit the line exactly, with no residual to test it"."""
    if n_widths <= 2:
        return f"{n_widths} widths fit the line exactly, with no residual to test it"
    return f"{n_widths} widths leave the slope {n_widths - 2} residual degree(s) of freedom"


def _drift_words(hp: str, d: DriftResult) -> str:
    """"µP LR drift -0.09 log2 per width doubling (95% CI [-1.45, +1.28])"."""
    return (f"µP {hp_words(hp)} drift {d.drift_slope or 0.0:+.2f} log2 per width doubling "
            f"(95% CI {fmt_ci(d.drift_ci)})")


def _step_words(d: DriftResult) -> str:
    """One grid step in words: "1 log2, a factor of 2" / "0.5 log2, a factor of 1.41"."""
    step = d.grid_step or 0.0
    return f"{step:g} log2, a factor of {2.0 ** step:.3g}"


def _sp_note(hp: str, sp: DriftResult | None, regret: dict[str, RegretResult] | None) -> str:
    """SP's drift (and regret) quoted beside µP's ("" without SP)."""
    if sp is None or sp.drift_slope is None:
        return ""
    note = (f"; SP {hp_words(hp)} drift {sp.drift_slope:+.2f} log2 per width doubling "
            f"(95% CI {fmt_ci(sp.drift_ci)})")
    sp_regret = (regret or {}).get(COMPARED_PARAMETRIZATION)
    if sp_regret is not None and sp.usable():
        note += sp_regret_note(sp_regret, sp.usable()[-1].width)
    return note


def missing_widths_reason(hp: str, missing: list[WidthOptimum]) -> str:
    """Why widths without an optimum decide the verdict, and what to change.

    A width with no finite loss at any value of the grid is not a width to leave out: it is
    the ladder's own evidence that the transferred HP fails there (at the widest width, the
    target's nearest proxy, most of all), so judging the others alone would confirm a transfer
    that breaks where it matters.
    """
    diverged = [w.width for w in missing if w.status == "all_diverged"]
    unfinished = [w.width for w in missing if w.status != "all_diverged"]
    grid = "the LR grid" if hp == "lr" else f"the LR and {hp_words(hp)} grids"
    parts = []
    if diverged:
        parts.append(f"every µP run at width(s) {diverged} diverged (no finite loss at any "
                     f"{hp_words(hp)}): the verdict counts every width of the ladder; lower "
                     f"{grid} (add smaller values) until those widths have an optimum")
    if unfinished:
        parts.append(f"µP has no finished run at width(s) {unfinished}: the verdict counts "
                     "every width of the ladder; wait for the sweep, or retry its failed runs "
                     "(`sweep retry`)")
    return "; ".join(parts)


def applied_regret(regret: dict[str, RegretResult], lr: DriftResult | None,
                   regret_tolerance: float) -> dict[str, object] | None:
    """The regret allowance rule (d) applied at µP's widest width with an optimum (the
    report's `regret_applied`); None without a µP regret number there."""
    mup = regret.get(VERDICT_PARAMETRIZATION)
    usable = lr.usable() if lr is not None else []
    row = mup.at(usable[-1].width) if mup is not None and usable else None
    return None if row is None or row.abs is None else applied_tolerance(row, regret_tolerance)


def interval_warning(hp: str, by_param: dict[str, DriftResult], tol: float) -> str | None:
    """The warning when µP's drift interval pokes out of the tolerance while the verdict rests
    on the estimate (4 widths or more, rule 6); None when it fits, is absent, or when too few
    widths make the verdict itself say so."""
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    if mup is None or mup.drift_ci is None or _ci_within(mup.drift_ci, tol):
        return None
    if len(mup.usable()) < MIN_WIDTHS_FOR_ESTIMATE:
        return None
    return (f"{hp_label(VERDICT_PARAMETRIZATION, hp)}: the {hp_words(hp)} drift's 95% interval "
            f"{fmt_ci(mup.drift_ci)} is wider than the tolerance ±{tol:g}, so the verdict "
            "rests on the drift estimate and the agreement of the per-width optima; add widths "
            "or seeds to narrow the interval")


def _ci_within(ci: list[float] | None, tol: float) -> bool:
    """Whether a whole interval lies in [-tol, +tol]."""
    return ci is not None and -tol <= ci[0] and ci[1] <= tol
