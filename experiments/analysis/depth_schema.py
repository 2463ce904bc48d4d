"""The depth section of the transfer report as data: per-depth optima, drift, verdict.

`experiments.analysis.depth` fills it; `DepthReport.to_contract_json` is the `depth` object of
`analyze --json`:

    depth: {verdict, reason, tolerance, width, base_depth, judged_on, warnings,
            parametrizations: {NAME: {drift_slope, drift_intercept, drift_ci, ci_method,
                                      optima_agree, depths: [{depth, opt_log2_lr, ci_low,
                                                              ci_high, best_loss, ...}]}}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from experiments.analysis.outcome import VERDICT_WORDS, Verdict


class DepthOptimum(BaseModel):
    """One depth's optimal LR in one parametrization (at the section's fixed width).

    Attributes:
        depth: the depth (residual blocks).
        opt_log2_lr: the optimal log2 LR (None when every run diverged or none finished).
        ci_low: lower end of its 95% interval (log2 units).
        ci_high: upper end of its 95% interval.
        best_loss: seed-mean final loss at the optimum.
        edge: "lower"/"upper" when the best grid point is the first/last one with data.
        status: "ok", "all_diverged" or "no_data".
    """

    depth: int
    opt_log2_lr: float | None
    ci_low: float | None
    ci_high: float | None
    best_loss: float | None
    edge: Literal["lower", "upper"] | None = None
    status: str = "ok"


class DepthDrift(BaseModel):
    """How one parametrization's optimal LR moves with depth.

    Attributes:
        parametrization: the table's name ("mup", or one with depth rules, e.g. CompleteP's).
        depths: per-depth optima, ascending depth.
        drift_slope: least-squares slope of the optimum against log2(depth): log2 LR per depth
            doubling (None with fewer than two usable depths).
        drift_intercept: the line's value at log2(depth) = 0.
        drift_ci: the slope's 95% interval.
        ci_method: how the intervals were made.
        optima_agree: the per-depth intervals, widened by one grid step, share a value.
        regret: what copying the shallowest depth's optimal LR costs at each depth, rows like
            the width section's `regret` with `depth` in place of `width` (abs, rel, ci_low,
            ci_high, ...; `experiments.analysis.regret`).
    """

    parametrization: str
    depths: list[DepthOptimum]
    drift_slope: float | None = None
    drift_intercept: float | None = None
    drift_ci: list[float] | None = None
    ci_method: str = ""
    optima_agree: bool | None = None
    regret: list[dict[str, Any]] = Field(default_factory=list)


class DepthReport(BaseModel):
    """The depth-transfer analysis of a sweep with a depth ladder.

    Attributes:
        verdict: the width rule (report step 5, (a)-(d)) applied with depth as the axis, judged
            on `judged_on`: confirmed, not_confirmed or inconclusive (`outcome`).
        reason: why, with the numbers.
        next_step: the step that would decide (or fix, or use) it, in plain words.
        tolerance: |drift| allowed, log2 LR per depth doubling.
        width: the fixed width the depths are compared at (the smallest of the ladder).
        base_depth: the proxy depth of the ladder.
        judged_on: the parametrization the verdict is judged on (CompleteP, else depth-µP).
        warnings: plain-words warnings (grid edges, diverged depths, ...).
        parametrizations: per parametrization, the drift with depth.
    """

    verdict: Verdict
    reason: str
    tolerance: float
    width: int
    next_step: str = ""
    base_depth: int | None = None
    judged_on: str | None = None
    warnings: list[str] = Field(default_factory=list)
    parametrizations: dict[str, DepthDrift] = Field(default_factory=dict)

    def to_contract_json(self) -> dict[str, Any]:
        """The `depth` object of `analyze --json` (module docstring)."""
        return self.model_dump(mode="json")

    def summary_lines(self) -> list[str]:
        """Human lines for `analyze`: the depth verdict, then each table's drift and optima."""
        lines = [f"depth verdict (width {self.width}, base depth {self.base_depth}): "
                 f"{VERDICT_WORDS[self.verdict]}", f"depth reason: {self.reason}",
                 f"depth next step: {self.next_step}"]
        for param, d in self.parametrizations.items():
            slope = "n/a" if d.drift_slope is None else f"{d.drift_slope:+.3f}"
            lines.append(f"{param}: drift {slope} log2 LR per depth doubling")
            lines += [f"  depth {o.depth:>4}: " + ("no optimum" if o.opt_log2_lr is None else
                                                   f"opt 2^{o.opt_log2_lr:.3f}  best loss "
                                                   f"{o.best_loss:.4f}") for o in d.depths]
        return lines + [f"depth warning: {w}" for w in self.warnings]
