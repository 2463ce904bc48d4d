"""Before launch: can this plan reach a transfer verdict? From its ladder, seeds and grid step.

    reach = verdict_reach(spec)      # also `estimate(spec).reach`, shown on Setup
    reach.level, reach.message, reach.next_step

The verdict (`experiments.analysis.verdict`) confirms when µP's drift estimate lies within the
tolerance (±0.25 log2 LR per width doubling) and, with fewer than 4 widths, when the drift's
whole 95% interval does. How far a *stable* optimum's estimate strays is predictable from the
plan alone, step by step:

1. Each width's fitted optimum varies with the seed by about `SEED_OPT_NOISE` log2 (measured:
   MLP on digits, Adam, 150 steps, grid step 1, one seed per fit: std 0.59-0.90 over 3 seeds in
   the quick preset, 0.45-0.55 over 10 seeds at widths 64, 256, 512; 0.06-0.56 over 2 seeds at
   100 steps), and the grid adds its own quantisation (step / sqrt(12)): per width,
   sigma^2 = SEED_OPT_NOISE^2 / seeds + step^2 / 12.
2. The drift's standard error is sigma / sqrt(sum (log2 w - mean)^2), the least-squares slope's
   over the ladder's log2 widths.
3. With 4 widths or more the estimate alone decides: the chance a stable optimum confirms is
   P(|slope| <= tol) = 2 Phi(tol / se) - 1. With 3 widths the interval must fit in the
   tolerance: its half-width is t(0.975, widths - 2) x se (t = 12.7 with one residual degree of
   freedom), and the chance is P(|slope| <= tol - half-width), 0 when the half-width alone
   exceeds the tolerance; with 2 widths, the two widths' intervals' ends bound the slope
   (half-width about 2 x 1.96 sigma / log2(ratio)).
4. `level`: "likely" at `LIKELY` or more, "unlikely" below `UNLIKELY`, else "uncertain"; and
   the next step that raises it most (`experiments.analysis.next_step`).

A prediction for planning (the noise varies with the model, the task and the steps), not a
promise: the verdict after the sweep is the judge. The regret rule (what copying the proxy's LR
costs) is not predicted: it depends on the loss curve's sharpness, which only training shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

from experiments.analysis.next_step import MIN_WIDTHS_FOR_ESTIMATE, more_seeds, more_widths

# Seed-to-seed standard deviation of one width's fitted optimum, log2 LR (module docstring).
SEED_OPT_NOISE = 0.6
# The default drift tolerance of the verdict (`experiments.analysis.verdict.DEFAULT_TOLERANCE`).
TOLERANCE = 0.25
LIKELY = 2 / 3
UNLIKELY = 1 / 3
# A ladder is planned to reach "likely" with at most this many seeds before widths are asked for.
MAX_SEEDS_ASKED = 8
Level = Literal["likely", "uncertain", "unlikely"]


class ReachPlan(Protocol):
    """What `verdict_reach` reads of a sweep (a `SweepSpec` is one)."""

    @property
    def widths(self) -> list[int]:
        """The width ladder, increasing."""
        ...

    @property
    def seeds(self) -> list[int]:
        """The seeds each grid point trains."""
        ...

    @property
    def parametrizations(self) -> list[str]:
        """The parametrizations trained."""
        ...

    def log2_lrs(self) -> list[float]:
        """The LR grid, log2."""
        ...


@dataclass(frozen=True)
class VerdictReach:
    """Whether a plan can reach a transfer verdict (module docstring).

    Attributes:
        level: "likely", "uncertain" or "unlikely" that a model whose optimum is stable reads
            confirmed.
        p_confirm: that chance (0-1).
        slope_se: the drift's predicted standard error, log2 LR per width doubling.
        half_width: the drift interval's predicted half-width (what the rule needs within the
            tolerance with fewer than 4 widths).
        message: the prediction in a sentence, with its numbers.
        next_step: the step that raises the chance most ("" when already likely).
    """

    level: Level
    p_confirm: float
    slope_se: float
    half_width: float
    message: str
    next_step: str = ""


def _phi(z: float) -> float:
    """The standard normal CDF."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def _slope_stats(widths: list[int], n_seeds: int, step: float) -> tuple[float, float, float]:
    """(per-width optimum sigma, slope standard error, interval half-width); steps 1-3."""
    from scipy import stats

    sigma = math.sqrt(SEED_OPT_NOISE**2 / max(n_seeds, 1) + step**2 / 12)
    x = [math.log2(w) for w in widths]
    mean = sum(x) / len(x)
    se = sigma / math.sqrt(sum((v - mean) ** 2 for v in x))
    if len(widths) == 2:
        return sigma, se, 2 * 1.96 * sigma / (x[1] - x[0])
    return sigma, se, float(stats.t.ppf(0.975, len(widths) - 2)) * se


def p_confirm(widths: list[int], n_seeds: int, step: float, tol: float = TOLERANCE) -> float:
    """The chance a stable optimum's sweep confirms on the drift rule (step 3)."""
    if len(widths) < 2:
        return 0.0
    _, se, half = _slope_stats(widths, n_seeds, step)
    room = tol if len(widths) >= MIN_WIDTHS_FOR_ESTIMATE else tol - half
    return max(0.0, 2 * _phi(room / se) - 1) if room > 0 else 0.0


def _level(p: float) -> Level:
    return "likely" if p >= LIKELY else "unlikely" if p < UNLIKELY else "uncertain"


def _next_step(widths: list[int], n_seeds: int, step: float, axis: str = "width") -> str:
    """More rungs below 4; else the fewest extra seeds that reach "likely"; else more rungs."""
    if len(widths) < MIN_WIDTHS_FOR_ESTIMATE:
        return more_widths(widths, axis, then="")
    for seeds in range(n_seeds + 1, MAX_SEEDS_ASKED + 1):
        if p_confirm(widths, seeds, step) >= LIKELY:
            return more_seeds(n_seeds, to=seeds)
    return more_widths(widths, axis, then="")


# A sweep at one width measures along its other ladder (the same statistics, rungs for widths):
# (spec field, the word a sentence names a rung by), in the order the analysis reads them.
_OTHER_LADDERS = (("depths", "depth"), ("batch_sizes", "batch size"), ("horizons", "horizon"))


def _ladder(spec: ReachPlan) -> tuple[str, list[int]]:
    """(axis word, rungs) the prediction is made for: the widths, or at one width the first
    other ladder of two rungs or more."""
    widths = list(spec.widths)
    if len(widths) < 2:
        for field, word in _OTHER_LADDERS:
            rungs = list(getattr(spec, field, None) or [])
            if len(rungs) >= 2:
                return word, rungs
    return "width", widths


def verdict_reach(spec: ReachPlan) -> VerdictReach:
    """Whether `spec` can reach a transfer verdict (module docstring), in numbers and words;
    a sweep at one width is predicted along its depth, batch or horizon ladder."""
    axis, widths = _ladder(spec)
    n_seeds = len(spec.seeds)
    xs = sorted(set(spec.log2_lrs()))
    step = (sorted(b - a for a, b in zip(xs, xs[1:], strict=False))[(len(xs) - 1) // 2]
            if len(xs) > 1 else 1.0)
    # The depth verdict is judged on a table with depth rules; the others on µP.
    if axis != "depth" and "mup" not in spec.parametrizations:
        return VerdictReach("unlikely", 0.0, math.inf, math.inf, "The transfer verdict is "
                            "judged on µP, which this plan does not train.",
                            "add mup to the parametrizations")
    if len(widths) < 2:
        return VerdictReach("unlikely", 0.0, math.inf, math.inf, "One width has no drift to "
                            "measure.", more_widths(widths, then=""))
    _, se, half = _slope_stats(widths, n_seeds, step)
    p = p_confirm(widths, n_seeds, step)
    plural = f"{axis}s" if axis != "batch size" else "batch sizes"
    plan = f"{len(widths)} {plural}, {n_seeds} seed(s) and a grid step of {step:g} log2"
    if len(widths) >= MIN_WIDTHS_FOR_ESTIMATE:
        how = (f"a stable optimum's drift estimate lands within ±{TOLERANCE:g} about "
               f"{100 * p:.0f}% of the time (predicted standard error {se:.2f} log2 LR per "
               f"{axis} doubling)")
    else:
        how = (f"the verdict needs the drift's whole interval within ±{TOLERANCE:g}, and it is "
               f"predicted at about ±{half:.2g} (fewer than {MIN_WIDTHS_FOR_ESTIMATE} {plural} "
               f"leave the slope {max(len(widths) - 2, 0)} residual degree(s) of freedom)")
    level = _level(p)
    subject = "a verdict" if axis == "width" else f"a {axis} verdict (at one width)"
    message = f"Reaching {subject} is {level}: with {plan}, {how}."
    step_words = "" if level == "likely" else _next_step(widths, n_seeds, step, axis)
    return VerdictReach(level, p, se, half, message, step_words)
