"""The measured LR exponent of a batch or horizon ladder, and its candidates' regrets, as data.

`experiments.analysis.exponent` fills these; `LadderDrift.exponent` holds one per
parametrization of a batch or horizon section, and `analyze --json` writes it as that
parametrization's `exponent`, `exponent_ci`, `candidates` and `candidates_at`. Kept apart from
the fit so the report models import it without a cycle (as `regret_schema`).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from experiments.analysis.regret_schema import RegretStatus

FITTED = "fitted"  # the candidate that applies the measured exponent itself


class CandidateRegret(BaseModel):
    """What applying one candidate exponent from the base rung costs at the largest rung.

    Attributes:
        rule: the candidate's label (`none`, `sqrt`, `linear`, `power(-0.5)`, `fitted`).
        exponent: its LR exponent.
        log2_lr: the log2 LR it trains the largest rung at (sweep coordinates).
        abs: regret in loss units (>= 0); None unless status is "ok".
        rel: abs / the rung's best loss (None when that is not positive).
        abs_ci_low: lower end of abs's 95% interval (None with one seed).
        abs_ci_high: upper end.
        noise_abs: the seed noise near the largest rung's optimum, loss units.
        status: as the width regret's (`RegretStatus`).
        note: why there is no number.
    """

    rule: str
    exponent: float
    log2_lr: float | None = None
    abs: float | None = None
    rel: float | None = None
    abs_ci_low: float | None = None
    abs_ci_high: float | None = None
    noise_abs: float | None = None
    status: RegretStatus = "ok"
    note: str | None = None


class ExponentFit(BaseModel):
    """The measured LR exponent of one parametrization along a batch or horizon ladder.

    Attributes:
        exponent: e_rule + drift slope (None without a slope).
        exponent_ci: its 95% interval (None without the slope's).
        rule: the rule the ladder was swept under (its label).
        rule_exponent: that rule's LR exponent.
        rung: the largest rung, where the candidates are priced.
        candidates: one row per candidate, ascending exponent, `fitted` last.
    """

    exponent: float | None
    exponent_ci: list[float] | None
    rule: str
    rule_exponent: float
    rung: int
    candidates: list[CandidateRegret] = Field(default_factory=list)

    def best(self) -> CandidateRegret | None:
        """The named candidate (not `fitted`) with the smallest regret, or None."""
        priced = [c for c in self.candidates if c.rule != FITTED and c.abs is not None]
        return min(priced, key=lambda c: c.abs or 0.0) if priced else None
