"""A ladder section of the transfer report as data: per-rung optima, drift, verdict, any axis.

`experiments.analysis.ladder` fills one `LadderReport` per ladder axis other than width
(`experiments.analysis.axes`); `LadderReport.to_contract_json` is that axis's object of
`analyze --json`, keyed by the axis's name (`depth` below; the lists under its `rows_key`,
`depths`; the base under its runs-frame base column, `base_depth`):

    depth: {verdict, reason, tolerance, width, base_depth, judged_on, warnings,
            parametrizations: {NAME: {parametrization, depths: [{depth, opt_log2_lr, ci_low,
                                      ci_high, best_loss, edge, status}], drift_slope,
                                      drift_intercept, drift_ci, ci_method, optima_agree,
                                      regret: [{depth, abs, rel, ci_low, ci_high, ...}]}}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from experiments.analysis.axes import get_axis
from experiments.analysis.exponent_schema import ExponentFit
from experiments.analysis.outcome import VERDICT_WORDS, Verdict


class LadderOptimum(BaseModel):
    """One rung's optimal LR in one parametrization (at the section's fixed width).

    Attributes:
        value: the rung (a depth on a depth ladder).
        opt_log2_lr: the optimal log2 LR (None when every run diverged or none finished).
        ci_low: lower end of its 95% interval (log2 units).
        ci_high: upper end of its 95% interval.
        best_loss: seed-mean final loss at the optimum.
        edge: "lower"/"upper" when the best grid point is the first/last one with data.
        status: "ok", "all_diverged" or "no_data".
    """

    value: int
    opt_log2_lr: float | None
    ci_low: float | None
    ci_high: float | None
    best_loss: float | None
    edge: Literal["lower", "upper"] | None = None
    status: str = "ok"

    @property
    def depth(self) -> int:
        """The rung of a depth ladder."""
        return self.value

    def contract(self, axis: str) -> dict[str, Any]:
        """The JSON row: the rung under the axis's name, then the optimum's fields."""
        data = self.model_dump(mode="json")
        return {axis: data.pop("value"), **data}


class LadderDrift(BaseModel):
    """How one parametrization's optimal LR moves along the ladder.

    Attributes:
        parametrization: the table's name.
        points: per-rung optima, ascending.
        drift_slope: least-squares slope of the optimum against log2(rung): log2 LR per
            doubling (None with fewer than two usable rungs).
        drift_intercept: the line's value at log2(rung) = 0.
        drift_ci: the slope's 95% interval.
        ci_method: how the intervals were made.
        optima_agree: the per-rung intervals, widened by one grid step, share a value.
        regret: what copying the base rung's optimal LR costs at each rung, rows like the width
            section's `regret` with `value` in place of `width` (abs, rel, ci_low, ci_high, ...;
            `experiments.analysis.regret`).
        exponent: on a batch or horizon ladder, the LR exponent the rungs measure and what each
            candidate rule costs at the largest rung (`experiments.analysis.exponent`); None on
            other axes.
    """

    parametrization: str
    points: list[LadderOptimum]
    drift_slope: float | None = None
    drift_intercept: float | None = None
    drift_ci: list[float] | None = None
    ci_method: str = ""
    optima_agree: bool | None = None
    regret: list[dict[str, Any]] = Field(default_factory=list)
    exponent: ExponentFit | None = None

    @property
    def depths(self) -> list[LadderOptimum]:
        """The rungs of a depth ladder."""
        return self.points

    def contract(self, axis: str) -> dict[str, Any]:
        """The JSON object of one parametrization, rungs and regret rows keyed by `axis`."""
        return {
            "parametrization": self.parametrization,
            get_axis(axis).rows_key: [p.contract(axis) for p in self.points],
            "drift_slope": self.drift_slope,
            "drift_intercept": self.drift_intercept,
            "drift_ci": self.drift_ci,
            "ci_method": self.ci_method,
            "optima_agree": self.optima_agree,
            "regret": [{axis: r["value"], **{k: v for k, v in r.items() if k != "value"}}
                       for r in self.regret],
            # Only the axes a scaling rule moves the LR along have these keys.
            **({} if self.exponent is None else {
                "exponent": self.exponent.exponent, "exponent_ci": self.exponent.exponent_ci,
                "candidates": [c.model_dump(mode="json") for c in self.exponent.candidates],
                "candidates_at": self.exponent.rung}),
        }


class LadderReport(BaseModel):
    """The transfer analysis along one ladder axis (depth, ...) at one fixed width.

    Attributes:
        axis: the axis's registered name (`experiments.analysis.axes`).
        verdict: the width rule (report step 5, (a)-(d)) applied along the axis, judged on
            `judged_on`: confirmed, not_confirmed or inconclusive (`outcome`).
        reason: why, with the numbers.
        next_step: the step that would decide (or fix, or use) it, in plain words.
        tolerance: |drift| allowed, log2 LR per doubling of the axis.
        width: the fixed width the rungs are compared at (the smallest of the sweep's).
        base: the ladder's base (proxy) value.
        judged_on: the parametrization the verdict is judged on (the axis entry's choice).
        warnings: plain-words warnings (grid edges, diverged rungs, ...).
        parametrizations: per parametrization, the drift along the axis.
        rule: on a batch or horizon ladder, the scaling rule it was swept under (`none`,
            `sqrt`, `power(0.5)`, ...); None on other axes.
        rule_exponent: that rule's LR exponent.
    """

    axis: str
    verdict: Verdict
    reason: str
    tolerance: float
    width: int
    next_step: str = ""
    base: int | None = None
    judged_on: str | None = None
    warnings: list[str] = Field(default_factory=list)
    parametrizations: dict[str, LadderDrift] = Field(default_factory=dict)
    rule: str | None = None
    rule_exponent: float | None = None

    @property
    def base_depth(self) -> int | None:
        """The base of a depth ladder."""
        return self.base

    def base_key(self) -> str:
        """The JSON key of the base: the axis's runs-frame base column (`base_depth`)."""
        return get_axis(self.axis).base_column or f"base_{self.axis}"

    def to_contract_json(self) -> dict[str, Any]:
        """The axis's object of `analyze --json` (module docstring)."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "next_step": self.next_step,
            "tolerance": self.tolerance,
            "width": self.width,
            self.base_key(): self.base,
            "judged_on": self.judged_on,
            "warnings": list(self.warnings),
            "parametrizations": {p: d.contract(self.axis)
                                 for p, d in self.parametrizations.items()},
            **({} if self.rule is None else {"rule": self.rule,
                                             "rule_exponent": self.rule_exponent}),
        }

    def summary_lines(self) -> list[str]:
        """Human lines for `analyze`: the verdict, then each table's drift and optima."""
        word = get_axis(self.axis).word
        lines = [f"{word} verdict (width {self.width}, base {word} {self.base}): "
                 f"{VERDICT_WORDS[self.verdict]}", f"{word} reason: {self.reason}",
                 f"{word} next step: {self.next_step}"]
        for param, d in self.parametrizations.items():
            slope = "n/a" if d.drift_slope is None else f"{d.drift_slope:+.3f}"
            lines.append(f"{param}: drift {slope} log2 LR per {word} doubling"
                         + ("" if self.rule is None else f" under rule {self.rule}"))
            lines += _exponent_lines(d.exponent, word)
            lines += [f"  {word} {o.value:>4}: " + ("no optimum" if o.opt_log2_lr is None else
                                                    f"opt 2^{o.opt_log2_lr:.3f}  best loss "
                                                    f"{o.best_loss:.4f}") for o in d.points]
        return lines + [f"{word} warning: {w}" for w in self.warnings]


def _exponent_lines(fit: ExponentFit | None, word: str) -> list[str]:
    """The measured exponent and each candidate's regret at the largest rung, for `analyze`."""
    if fit is None:
        return []
    ci = "" if fit.exponent_ci is None else (
        f" (95% interval [{fit.exponent_ci[0]:+.2f}, {fit.exponent_ci[1]:+.2f}])")
    head = "no fitted exponent" if fit.exponent is None else (
        f"fitted LR exponent {fit.exponent:+.2f}{ci}")
    lines = [f"  {head}; applying each rule from the base to {word} {fit.rung}:"]
    for c in fit.candidates:
        cost = (c.note or c.status) if c.abs is None else (
            f"regret {c.abs:.4f}" + ("" if c.rel is None else f" ({c.rel:.1%})")
            + ("" if c.abs_ci_low is None or c.abs_ci_high is None else
               f" [{c.abs_ci_low:.4f}, {c.abs_ci_high:.4f}]"))
        lines.append(f"    {c.rule:<12} exponent {c.exponent:+.2f}: {cost}")
    return lines
