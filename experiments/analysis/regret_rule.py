"""Rule (d) of the verdict, the LR's transfer regret, and the words that state it.

Copying the LR tuned at the proxy (the narrowest width) to the widest width may cost at most
`regret_allowed` = max(regret_tolerance x its best loss, its seed noise), in loss units: the
tolerance *applied* is the one asked for, unless the seed noise there is larger, and then it is
the seed-noise floor, and the words say so ("tolerance 56% = the seed-noise floor at width 512
(you asked 1.0%)"). Why the floor: a regret below what one run varies by with its seed is a
cost a user who trains the target once cannot see (numbers in `experiments.analysis.verdict`).

The regret's 95% interval (bootstrap over seeds, `experiments.analysis.regret`) decides:

- wholly above the allowance (its lower end above it; with one seed, the estimate): *exceeds*,
  the evidence says copying costs more than the tolerance;
- estimate within the allowance: *within*;
- estimate above it but the interval reaching below: *undecided*, the seeds cannot tell the
  cost from the tolerance (more seeds decide);
- no number: *diverged* when the copied LR sits beside a diverged grid point at that width
  (copying risks divergence: the evidence says it breaks), *unknown* otherwise (the proxy's LR
  lies outside the LRs trained there: a wider grid decides).

Every interval is printed as the report stores it (`WidthRegret.ci_low`/`ci_high`), the same
numbers the regret table shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from experiments.analysis.next_step import more_seeds
from experiments.analysis.regret_schema import RegretResult, WidthRegret
from experiments.analysis.schema import VERDICT_PARAMETRIZATION

RegretOutcome = Literal["within", "exceeds", "undecided", "diverged", "unknown"]


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


def applied_tolerance(row: WidthRegret, regret_tolerance: float) -> dict[str, object]:
    """The allowance rule (d) applies at `row`'s width, as `analyze --json`'s `regret_applied`:
    {"width", "abs" (loss units), "rel" (of the best loss; None when it is not positive),
    "asked" (the tolerance asked for), "source": "seed_noise" when the floor set it, else
    "asked"}."""
    allowed = regret_allowed(row, regret_tolerance)
    best = row.best_loss if row.best_loss is not None and row.best_loss > 0 else None
    # The floor sets it only when clearly larger (not by float round-off of an equal value).
    floor = (row.noise_abs or 0.0) > regret_tolerance * (best or 0.0) * (1 + 1e-9)
    return {"width": row.width, "abs": allowed, "rel": None if best is None else allowed / best,
            "asked": regret_tolerance, "source": "seed_noise" if floor else "asked"}


def tolerance_words(row: WidthRegret, regret_tolerance: float) -> str:
    """The allowance applied and why: "the tolerance 56% = the seed-noise floor at width 512
    (you asked 1.0%)", "the tolerance 1.0% (as asked; the seed noise there is 0.4%)"."""
    applied = applied_tolerance(row, regret_tolerance)
    asked = fmt_pct(regret_tolerance)
    rel = applied["rel"]
    if not isinstance(rel, float):  # the best loss is not positive: no % of it applies
        return (f"the tolerance {regret_allowed(row, regret_tolerance):.3g} loss = the seed-noise "
                f"floor at "
                f"width {row.width} (the best loss {row.best_loss:.3g} is not positive, so the "
                f"{asked} you asked has nothing to be a % of)")
    if applied["source"] == "seed_noise":
        return (f"the tolerance {fmt_pct(rel)} = the seed-noise floor at width {row.width}, the "
                f"seeds' own spread of the loss there (you asked {asked})")
    noise = ("one seed: no seed-noise floor" if row.noise_rel is None
             else f"the seed noise there is {fmt_pct(row.noise_rel)}")
    return f"the tolerance {asked} (as asked; {noise})"


def cost_words(row: WidthRegret, proxy_width: int | None, label: str) -> str:
    """"copying the LR tuned at width 64 costs 21% loss at width 512 under µP (95% CI [5.6%,
    99%])": the interval is the report's own (`ci_low`, `ci_high`), as the table prints it."""
    copying = f"copying the LR tuned at width {proxy_width} costs"
    if row.rel is None:
        ci = ("" if row.abs_ci_low is None or row.abs_ci_high is None
              else f" (95% CI [{row.abs_ci_low:.3g}, {row.abs_ci_high:.3g}])")
        return f"{copying} {row.abs or 0.0:.3g} loss at width {row.width} under {label}{ci}"
    ci = ("" if row.ci_low is None or row.ci_high is None
          else f" (95% CI [{fmt_pct(row.ci_low)}, {fmt_pct(row.ci_high)}])")
    return f"{copying} {fmt_pct(row.rel)} loss at width {row.width} under {label}{ci}"


@dataclass(frozen=True)
class RegretJudgement:
    """Rule (d)'s outcome at one width (module docstring): the outcome, the words with the
    numbers, and the step that would decide or fix it ("" when within)."""

    outcome: RegretOutcome
    words: str
    next_step: str = ""


def judge_regret(regret: dict[str, RegretResult], width: int, regret_tolerance: float,
                 n_seeds: int) -> RegretJudgement:
    """Rule (d) on µP's regret at `width` (its widest width with an optimum)."""
    mup = regret.get(VERDICT_PARAMETRIZATION)
    row = mup.at(width) if mup is not None else None
    if mup is None or row is None or row.abs is None:
        note = row.note if row is not None and row.note else "no regret could be computed"
        words = f"the µP LR regret at width {width} is unknown ({note})"
        if row is not None and row.status == "diverged":
            return RegretJudgement("diverged", words, "lower the LR grid at that width or check "
                                   "the model: the LR the proxy would transfer diverges there")
        return RegretJudgement("unknown", words, f"extend width {width}'s LR grid to cover the "
                               "proxy's optimum, so the regret is read, not extrapolated")
    cost = cost_words(row, mup.proxy_width, "µP")
    limit = tolerance_words(row, regret_tolerance)
    if regret_exceeds(row, regret_tolerance):
        whole = ", its whole interval above" if row.abs_ci_low is not None else ""
        return RegretJudgement("exceeds", f"{cost}, more than {limit}{whole}",
                               "run the doctor on the model (`doctor`, or the Doctor page): "
                               "under µP the copied LR should cost no more than the noise")
    if row.abs > regret_allowed(row, regret_tolerance):
        return RegretJudgement("undecided", f"{cost}: above {limit}, but its interval reaches "
                               "below it, so the seeds cannot tell the cost from the tolerance",
                               more_seeds(n_seeds))
    return RegretJudgement("within", f"{cost}, within {limit}")


def sp_regret_note(sp: RegretResult, width: int, label: str = "SP") -> str:
    """SP's regret at its widest width, quoted beside µP's ("" when it has no number)."""
    row = sp.at(width)
    if row is None or row.abs is None or sp.proxy_width == width:
        return ""
    cost = f"{row.abs:.3g} loss" if row.rel is None else fmt_pct(row.rel)
    return f"; under {label} the same copy costs {cost} at width {width}"
