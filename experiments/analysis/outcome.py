"""The three verdicts a transfer analysis reaches, and how several combine.

- confirmed: the evidence says the optimum stays put and copying it costs no more than the
  tolerance (`experiments.analysis.verdict` states the rule);
- not_confirmed: the evidence says the optimum moves (the drift's whole interval lies outside
  the tolerance), copying it costs more than the tolerance (the regret's whole interval lies
  above it), or the transferred HP breaks at a width of the ladder (every run diverged);
- inconclusive: the evidence cannot tell (an interval reaches both sides, an optimum sits on
  the grid's edge, widths have no finished run yet), with the one step that would decide it
  (more widths, seeds or steps, a wider grid).

Kept apart from `schema` so the ladder sections' models (`ladder_schema`, which `schema` imports)
use the same words without a cycle.
"""

from __future__ import annotations

from typing import Literal

Verdict = Literal["confirmed", "not_confirmed", "inconclusive"]
# The worst first: a combined verdict is the first of these that any part has.
VERDICT_ORDER: tuple[Verdict, ...] = ("not_confirmed", "inconclusive", "confirmed")
# How pages and sentences say each one.
VERDICT_WORDS: dict[str, str] = {"confirmed": "confirmed", "not_confirmed": "not confirmed",
                                 "inconclusive": "inconclusive"}


def overall_verdict(verdicts: list[Verdict]) -> Verdict:
    """The verdict of several parts (the swept HPs): not_confirmed if any part is, else
    inconclusive if any is, else confirmed."""
    return next((v for v in VERDICT_ORDER if v in verdicts), "confirmed")
