"""The µTransfer verdict of one HP (step 5 of `experiments.analysis.report`, which states the rule).

Judged on µP's drift (`VERDICT_PARAMETRIZATION`); SP's drift is quoted beside it, as the
contrast TP5 Figure 1 draws.

Rule (a) counts every width of the ladder: a µP width with no optimum (every run diverged, or
none finished) fails the verdict, saying which width and what to change (`missing_widths_reason`);
it is never left out of the judgement.

Rule (d), the LR's transfer regret (`experiments.analysis.regret`): copying the LR tuned at the
proxy (the narrowest width) to the widest width (which has an optimum, by rule (a)) may cost at most
`regret_allowed` = max(regret_tolerance x its best loss, its seed noise), in loss units; the
seed noise is the seeds' standard deviation of the loss pooled over the best grid point and its
neighbours (`experiments.analysis.regret.seed_noise`). The rule fails when the regret's 95%
interval (bootstrap over seeds) lies wholly above that allowance, or, with one seed, when the
estimate does; an unknown regret fails too. Why the rule: the drift rules speak in log2 LR, but
a flat basin makes a large drift cheap and a sharp one makes a small drift costly; the regret
says what a user pays. Why the noise floor: a regret below what one run varies by with its seed
is a cost a user who trains the target once cannot see. Why the interval, as rule (c) judges
the optima by theirs: the regret reads the proxy's optimum, itself a noisy fit of 2-3 seeds,
and the target's curve; the point estimate alone fails healthy sweeps (the science sweep of
`tests/experiments/test_transfer_science.py`, µP drift -0.08: 76% at width 1024 against a
noise of 43%, interval [24%, 132%]). Why pooled, and not one point's standard deviation or
the standard error of the seed mean: with 2-3 seeds those false-alarm too. Measured (train
loss, widest width; regret vs noise, % of the best loss):

- quick preset (3 seeds, `tests/fixtures/quick_preset_final_losses.json`), width 512: µP 21%
  (0.0058 on a best loss of 0.028) vs pooled noise 56% (best point alone: std 33%, standard
  error 19%: µP would fail); SP 403% vs 46%.
- mlp-digits-transfer (2 seeds, 5 widths), width 1024: µP 121% (0.0026 on 0.0022) vs pooled
  noise 241% (best point alone: std 101%, standard error 71%: µP would fail); SP 0.021 loss vs
  noise 0.0053 (its fitted best loss is -0.0003, so no % applies).
"""

from __future__ import annotations

from experiments.analysis.regret_schema import RegretResult, WidthRegret
from experiments.analysis.schema import (
    VERDICT_PARAMETRIZATION,
    DriftResult,
    HPVerdict,
    WidthOptimum,
    hp_words,
)

DEFAULT_TOLERANCE = 0.25
# Rule (d): regret allowed at the widest width, as a fraction of its best loss (1%), unless the
# seed noise there is larger.
DEFAULT_REGRET_TOLERANCE = 0.01
# Its drift is quoted in every reason, beside µP's: the contrast the verdict is about.
COMPARED_PARAMETRIZATION = "sp"


def fmt_ci(ci: list[float] | None) -> str:
    """A 95% interval as words use it: "[-0.12, +0.30]", or "[n/a]"."""
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def hp_verdict(
    hp: str,
    by_param: dict[str, DriftResult],
    tol: float,
    strict_interval: bool = False,
    *,
    regret: dict[str, RegretResult] | None = None,
    regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
) -> HPVerdict:
    """Apply the rule of `experiments.analysis.report` (step 5) to one HP.

    Args:
        hp: the HP ("lr" or a global knob).
        by_param: its drift per parametrization.
        tol: |µP drift| allowed, log2 units per width doubling.
        strict_interval: also require the drift's whole 95% interval within `tol` (rule (e)).
        regret: the HP's transfer regret per parametrization (the LR's); None skips rule (d).
        regret_tolerance: rule (d)'s relative regret allowed at the widest width.
    """
    words = hp_words(hp)
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    sp = by_param.get(COMPARED_PARAMETRIZATION)
    sp_note = ""
    if sp is not None and sp.drift_slope is not None:
        sp_note = (f"; SP {words} drift {sp.drift_slope:+.2f} log2 per width doubling "
                   f"(95% CI {fmt_ci(sp.drift_ci)})")
    sp_regret = (regret or {}).get(COMPARED_PARAMETRIZATION)
    if sp is not None and sp_regret is not None and sp.usable():
        sp_note += _sp_regret_note(sp_regret, sp.usable()[-1].width)

    def no(reason: str) -> HPVerdict:
        return HPVerdict(hp=hp, verdict="not_confirmed", reason=reason + sp_note)

    if mup is None:
        return no(f"the sweep has no µP runs: {words} transfer is judged on µP; add mup to "
                  "parametrizations")
    missing = [w for w in mup.widths if w.opt_log2 is None]
    if missing:  # rule (a): every width of the ladder counts, the widest above all
        return no(missing_widths_reason(hp, missing))
    usable = mup.usable()
    if len(usable) < 2 or mup.drift_slope is None:
        return no(f"µP has an {words} optimum at {len(usable)} width(s): at least two are needed")
    edges = [w.width for w in usable if w.edge is not None]
    if edges:
        return no(f"µP {words} optimum at the edge of the grid for widths {edges}: the true "
                  "optimum may lie beyond it; extend the grid")
    drift = (f"µP {words} drift {mup.drift_slope:+.2f} log2 per width doubling "
             f"(95% CI {fmt_ci(mup.drift_ci)})")
    if abs(mup.drift_slope) > tol:
        return no(f"{drift} exceeds the tolerance ±{tol:g}")
    if strict_interval and not _ci_within(mup.drift_ci, tol):  # rule (e)
        return no(f"{drift}: the interval is not within the tolerance ±{tol:g} (strict rule); "
                  "add widths or seeds to narrow it")
    step = mup.grid_step or 0.0
    if not mup.optima_agree:
        return no(f"{drift} is within ±{tol:g}, but the per-width optima disagree: their "
                  f"intervals are {mup.optima_spread:.2f} log2 apart, more than one grid step "
                  f"({step:g})")
    agree = (f"{drift} is within ±{tol:g} and the per-width optima agree within their "
             f"intervals (within one grid step, {step:g})")
    if regret is not None:
        ok, words_regret = regret_rule(regret, usable[-1].width, regret_tolerance)
        if not ok:
            return no(f"{agree}, but {words_regret}")
        agree += f", and {words_regret}"
    return HPVerdict(hp=hp, verdict="confirmed", reason=agree + sp_note)


def missing_widths_reason(hp: str, missing: list[WidthOptimum]) -> str:
    """Why widths without an optimum fail the verdict, and what to change.

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


def fmt_pct(rel: float) -> str:
    """A relative regret as words use it: 0.0021 -> "0.21%", 0.052 -> "5.2%", 4.03 -> "403%"."""
    pct = 100 * rel
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def regret_allowed(row: WidthRegret, regret_tolerance: float) -> float:
    """Rule (d)'s allowance at one width, in loss units: max(regret_tolerance x best loss, the
    seed noise there); a best loss <= 0 (a vertex fitted below a saturated loss) counts as 0."""
    return max(regret_tolerance * max(row.best_loss or 0.0, 0.0), row.noise_abs or 0.0)


def regret_exceeds(row: WidthRegret, regret_tolerance: float) -> bool:
    """Whether rule (d) fails at one width: the regret's 95% interval lies wholly above
    `regret_allowed` (its lower end exceeds it; with one seed, the estimate itself does)."""
    lower = row.abs if row.abs_ci_low is None else row.abs_ci_low
    return lower is not None and lower > regret_allowed(row, regret_tolerance)


def regret_rule(
    regret: dict[str, RegretResult], width: int, regret_tolerance: float
) -> tuple[bool, str]:
    """Rule (d) at `width` (µP's widest with an optimum): fails when µP's regret there is
    unknown or `regret_exceeds`. Returns (passes, the words with the numbers)."""
    mup = regret.get(VERDICT_PARAMETRIZATION)
    row = mup.at(width) if mup is not None else None
    if mup is None or row is None or row.abs is None:
        note = row.note if row is not None and row.note else "no regret could be computed"
        return False, f"the µP LR regret at width {width} is unknown ({note})"
    allowed = regret_allowed(row, regret_tolerance)
    has_ci = row.abs_ci_low is not None and row.abs_ci_high is not None
    copying = f"copying the LR tuned at width {mup.proxy_width} costs"
    if row.rel is not None and row.best_loss is not None:  # best loss > 0: in % of it
        best = row.best_loss
        noise = "n/a, one seed" if row.noise_rel is None else fmt_pct(row.noise_rel)
        ci = "" if not has_ci else (f" (95% CI [{fmt_pct((row.abs_ci_low or 0.0) / best)}, "
                                    f"{fmt_pct((row.abs_ci_high or 0.0) / best)}])")
        words = f"{copying} {fmt_pct(row.rel)} loss at width {width} under µP{ci}"
        limit = (f"the regret tolerance {fmt_pct(allowed / best)} (the larger of "
                 f"{fmt_pct(regret_tolerance)} and the seed noise {noise})")
    else:
        words = f"{copying} {row.abs:.3g} loss at width {width} under µP"
        limit = (f"the seed noise {allowed:.3g} (the best loss {row.best_loss:.3g} is not "
                 "positive, so no % of it applies)")
    if regret_exceeds(row, regret_tolerance):
        return False, f"{words}, more than {limit}" + (", its whole interval above" if has_ci else "")
    if row.abs > allowed:
        return True, (f"{words}: above {limit}, but its interval reaches below it, so the "
                      "seeds cannot tell the cost from the tolerance")
    return True, f"{words}, within {limit}"


def _sp_regret_note(sp: RegretResult, width: int) -> str:
    """SP's regret at its widest width, quoted beside µP's ("" when it has no number)."""
    row = sp.at(width)
    if row is None or row.abs is None or sp.proxy_width == width:
        return ""
    cost = f"{row.abs:.3g} loss" if row.rel is None else fmt_pct(row.rel)
    return f"; under SP the same copy costs {cost} at width {width}"


def interval_warning(hp: str, by_param: dict[str, DriftResult], tol: float) -> str | None:
    """The warning when µP's drift interval pokes out of the tolerance (not part of the default
    rule, so the reader is told what the verdict rests on); None when it fits or is absent."""
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    if mup is None or mup.drift_ci is None or _ci_within(mup.drift_ci, tol):
        return None
    return (f"mup: the {hp_words(hp)} drift's 95% interval {fmt_ci(mup.drift_ci)} is "
            f"wider than the tolerance ±{tol:g}, so the verdict rests on the "
            "drift estimate and the agreement of the per-width optima; add widths "
            "or seeds to narrow the interval")


def _ci_within(ci: list[float] | None, tol: float) -> bool:
    """Whether a whole interval lies in [-tol, +tol]."""
    return ci is not None and -tol <= ci[0] and ci[1] <= tol
