"""The one next step that would decide an undecided verdict, in plain words.

One wording for the verdict (`experiments.analysis.verdict`, after a sweep) and for the Setup
estimate (`experiments.spec.reach`, before it), so the page that plans a sweep and the page
that judges it ask for the same thing. Which evidence narrows which interval:

- the drift's interval: more widths. Its regression t-interval has (widths - 2) degrees of
  freedom, and the t quantile falls fast with them (12.7 with one, 4.3 with two, 3.2 with
  three), while each added doubling of width also spreads the points the slope is fitted on;
- an optimum's or a regret's interval: more seeds (a bootstrap over 2 seeds has 3 distinct
  resamples per width; the seed mean's noise falls as 1/sqrt(seeds));
- an optimum on the grid's edge, or a proxy's LR outside a width's trained LRs: a wider grid;
- a curve too flat to rank its LRs, or a wide model that has not caught up with a narrow one:
  more steps.
"""

from __future__ import annotations

# Two residual degrees of freedom: below this many widths the drift's point estimate is a line
# through 2-3 points that tells nothing on its own (the default rule then asks for its whole
# interval within the tolerance; `experiments.analysis.verdict`).
MIN_WIDTHS_FOR_ESTIMATE = 4
# Seeds below which more seeds come before more widths when an interval of the optima or of
# the regret is what is undecided.
MIN_SEEDS = 3


def _widths_text(widths: list[int]) -> str:
    return ", ".join(str(w) for w in widths)


def more_widths(widths: list[int], axis: str = "width", then: str = ", then analyse again") -> str:
    """Ask for wider rungs: enough doublings above the widest to reach `MIN_WIDTHS_FOR_ESTIMATE`
    (at least one), e.g. "add width(s) 512 (4 widths give the drift's interval 2 degrees of
    freedom)"."""
    n_add = max(1, MIN_WIDTHS_FOR_ESTIMATE - len(widths))
    top = max(widths) if widths else 0
    new = [top * 2 ** (i + 1) for i in range(n_add)] if top else []
    dof = len(widths) + n_add - 2
    target = _widths_text(new) if new else "wider ones"
    return (f"add {axis}(s) {target} to the ladder ({len(widths) + n_add} {axis}s give the "
            f"drift's interval {dof} degree(s) of freedom){then}")


def more_seeds(n_seeds: int, to: int | None = None) -> str:
    """Ask for more seeds, up to `to` (default: `MIN_SEEDS`, at least one more): "add seed(s)
    2 (2 now): ..."."""
    total = max(to or MIN_SEEDS, n_seeds + 1)
    new = list(range(n_seeds, total))  # seeds are numbered from 0
    return (f"add seed(s) {_widths_text(new)} ({n_seeds} now): each interval of the optima and "
            "of the regret is a bootstrap over seeds, and narrows with more of them")


def more_evidence(widths: list[int], n_seeds: int, axis: str = "width") -> str:
    """The step that narrows the drift's interval most: more widths while there are fewer than
    `MIN_WIDTHS_FOR_ESTIMATE`, else more seeds while there are fewer than `MIN_SEEDS`, else
    more widths."""
    if len(widths) < MIN_WIDTHS_FOR_ESTIMATE or n_seeds >= MIN_SEEDS:
        return more_widths(widths, axis)
    return more_seeds(n_seeds)


def wider_grid(edge: str, to_log2: float, hp_text: str = "LR") -> str:
    """Ask for the grid to reach past an edge: "extend the LR grid down to 2^-13 ..."."""
    way = "down" if edge == "lower" else "up"
    return (f"extend the {hp_text} grid {way} to 2^{to_log2:g} (or beyond) so the optimum has "
            "a grid point on each side, then run the new points")


def more_steps(steps_hint: str = "") -> str:
    """Ask for longer training (a hint says why)."""
    return ("train longer (raise steps) so every width reaches its own best loss"
            + (f": {steps_hint}" if steps_hint else ""))
