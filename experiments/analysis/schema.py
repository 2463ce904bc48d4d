"""The µTransfer report as data: per-width optima, drift lines, verdicts (pydantic models).

`analyze` (`experiments.analysis.report`) fills them; `TransferReport.to_contract_json` is the
`python -m experiments analyze --json` document, and the dashboard and bundles read them.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from experiments.analysis.forecast_schema import Forecast
from experiments.analysis.ladder_schema import LadderReport
from experiments.analysis.loss_choice import loss_short
from experiments.analysis.outcome import Verdict
from experiments.analysis.regret_schema import RegretResult
from experiments.models.parametrizations import is_width_stable, parametrization_short_label

# The verdict is judged on this parametrization (TP5: µP is the one that should transfer).
VERDICT_PARAMETRIZATION = "mup"

WidthStatus = Literal["ok", "all_diverged", "no_data"]


def hp_words(hp: str) -> str:
    """How an HP is named in sentences: "LR" for the learning rate, else its knob name."""
    return "LR" if hp == "lr" else hp


def hp_label(parametrization: str, hp: str) -> str:
    """The prefix of a warning about one HP of one parametrization ("µP", "µP output_mult"):
    the table's short label (its registry trait), never its key."""
    label = parametrization_short_label(parametrization)
    return label if hp == "lr" else f"{label} {hp}"


class WidthOptimum(BaseModel):
    """One width's optimum of one HP in one parametrization.

    Attributes:
        width: the width.
        opt_log2: the optimum in log2 units of the HP (for the LR: log2 LR); None when every
            run diverged or none finished.
        ci_low: lower end of its 95% interval (log2 units).
        ci_high: upper end of its 95% interval.
        best_loss: seed-mean final loss at the optimum (None when there is none).
        grid_log2: the best grid point.
        refined: whether the quadratic refinement moved it off the grid point.
        edge: "lower"/"upper" when the best grid point is the first/last one with data.
        n_points: grid points with finished runs.
        n_seeds: seeds with at least one finished run.
        seed_noise: the seeds' standard deviation of the loss near the optimum, pooled over the
            best grid point and its neighbours (`experiments.analysis.drift.seed_noise`); None
            with fewer than two finished seeds there.
        status: "ok", "all_diverged" or "no_data".
    """

    width: int
    opt_log2: float | None
    ci_low: float | None
    ci_high: float | None
    best_loss: float | None
    grid_log2: float | None = None
    refined: bool = False
    edge: Literal["lower", "upper"] | None = None
    n_points: int = 0
    n_seeds: int = 0
    seed_noise: float | None = None
    status: WidthStatus = "ok"


class DriftResult(BaseModel):
    """How one HP's optimum moves with width, in one parametrization.

    Attributes:
        hp: "lr" or a global knob (`experiments.spec.run.GLOBAL_KNOBS`: "init_std", ...).
        parametrization: "mup", "sp", ...
        widths: per-width optima, ascending width.
        drift_slope: least-squares slope of opt_log2 against log2(width) (log2 units per width
            doubling); None with fewer than two usable widths.
        drift_intercept: the line's value at log2(width) = 0.
        drift_ci: 95% interval of the slope.
        ci_method: how the intervals were made ("bootstrap over N seeds + regression", ...).
        grid_step: the median spacing of the HP grid in log2 units.
        optima_agree: whether the per-width intervals, widened by one grid step, share a value.
        optima_spread: max lower end - min upper end of the per-width intervals (<= 0: overlap).
        target_width: the width the prediction is for (None: no prediction).
        predicted_log2: the predicted optimum at `target_width`.
        prediction: how it was predicted ("stable optimum" or "drift line").
        extrapolated: the prediction uses the drift line outside the ladder's widths.
    """

    hp: str
    parametrization: str
    widths: list[WidthOptimum]
    drift_slope: float | None = None
    drift_intercept: float | None = None
    drift_ci: list[float] | None = None
    ci_method: str = ""
    grid_step: float | None = None
    optima_agree: bool | None = None
    optima_spread: float | None = None
    target_width: int | None = None
    predicted_log2: float | None = None
    prediction: str | None = None
    extrapolated: bool = False

    def usable(self) -> list[WidthOptimum]:
        """Widths with an optimum (the ones the drift line is fitted on)."""
        return [w for w in self.widths if w.opt_log2 is not None]

    def predict(self, width: int) -> float | None:
        """The predicted optimum (log2) at `width`: the stable optimum for µP, else the line."""
        usable = self.usable()
        if not usable:
            return None
        # A width-stable table (its `width_stable` trait: µP and the tables built on its width
        # rules) predicts the stable optimum.
        if is_width_stable(self.parametrization) or self.drift_slope is None:
            return float(np.mean([w.opt_log2 for w in usable]))
        assert self.drift_intercept is not None
        return float(self.drift_intercept + self.drift_slope * math.log2(width))


class HPVerdict(BaseModel):
    """The µTransfer verdict of one HP.

    Attributes:
        hp: the HP ("lr", "output_mult", ...).
        verdict: "confirmed", "not_confirmed" or "inconclusive" (`Verdict`).
        reason: the rule's outcome in plain words, with the numbers.
        next_step: the one step that would decide it (inconclusive), fix it (not_confirmed),
            or use it (confirmed), in plain words.
    """

    hp: str
    verdict: Verdict
    reason: str
    next_step: str = ""


class TransferReport(BaseModel):
    """The analysis of one sweep (what `python -m experiments analyze` prints and writes).

    Attributes:
        verdict: `overall_verdict` of the swept HPs' verdicts: confirmed iff every one is;
            not_confirmed if any is; else inconclusive.
        reason: why, with the numbers (µP drift and interval, SP drift beside it).
        next_step: the step that would decide (or fix, or use) the verdict: the first
            undecided HP's, in plain words.
        tolerance: |drift| tolerance in log2 units per width doubling.
        loss: the loss column analysed ("final_train_loss" or "final_val_loss").
        warnings: plain-words warnings (grid edges, few points, diverged widths, ...).
        lr: per parametrization (in `PARAM_ORDER`), the LR drift.
        hparams: per swept global knob (any of `GLOBAL_KNOBS`, in that order), per
            parametrization, its drift; knobs held at one value are absent.
        verdicts: per HP, the verdict and its reason.
        n_runs: runs in the input frame.
        target_width: the width predictions are made for, if any.
        regret_tolerance: the relative regret allowed at the widest width (before the seed
            noise floor; `experiments.analysis.verdict`): the one asked for.
        regret_applied: the regret allowance the verdict actually applied at µP's widest width
            (`experiments.analysis.verdict.AppliedTolerance`: its value, the one asked for, and
            whether the seed-noise floor set it); None when no regret was judged.
        regret: per parametrization, the LR's transfer regret per width
            (`experiments.analysis.regret`).
        ladders: per ladder axis other than width found in the runs (`depth`, ...), its
            transfer section (`experiments.analysis.ladder`); the other fields then describe
            the runs where every ladder sits at its base. Empty for a width-only sweep.
        loss_reason: why `loss` was chosen (`experiments.analysis.loss_choice`).
        forecast: per parametrization, the power-law forecast of the best loss against width
            (`experiments.analysis.forecast`), at `target_width` when one is given.
        forecast_depth: with a depth ladder, the same law fitted against depth at the depth
            section's width, per parametrization; empty otherwise.
    """

    verdict: Verdict
    reason: str
    tolerance: float
    loss: str
    next_step: str = ""
    warnings: list[str] = Field(default_factory=list)
    lr: dict[str, DriftResult] = Field(default_factory=dict)
    hparams: dict[str, dict[str, DriftResult]] = Field(default_factory=dict)
    verdicts: list[HPVerdict] = Field(default_factory=list)
    n_runs: int = 0
    target_width: int | None = None
    regret_tolerance: float | None = None
    regret_applied: dict[str, Any] | None = None
    regret: dict[str, RegretResult] = Field(default_factory=dict)
    ladders: dict[str, LadderReport] = Field(default_factory=dict)
    loss_reason: str = ""
    forecast: dict[str, Forecast] = Field(default_factory=dict)
    forecast_depth: dict[str, Forecast] = Field(default_factory=dict)

    @property
    def depth(self) -> LadderReport | None:
        """The depth ladder's section (None without one)."""
        return self.ladders.get("depth")

    def predicted_hparams(self, parametrization: str = VERDICT_PARAMETRIZATION) -> dict[str, float]:
        """The transferred global HPs (linear units) of `parametrization` at the target width.

        Returns {"lr": ..., "output_mult": ...}: each swept HP's prediction (µP: its stable
        optimum); HPs without a prediction are left out.
        """
        out: dict[str, float] = {}
        lr = self.lr.get(parametrization)
        if lr is not None and lr.predicted_log2 is not None:
            out["lr"] = 2.0**lr.predicted_log2
        for hp, by_param in self.hparams.items():
            d = by_param.get(parametrization)
            if d is not None and d.predicted_log2 is not None:
                out[hp] = 2.0**d.predicted_log2
        return out

    def to_contract_json(self) -> dict[str, Any]:
        """The `analyze --json` document.

        Shape: {"verdict" (confirmed | not_confirmed | inconclusive), "reason", "next_step",
        "tolerance", "warnings", "reason", "loss", "target_width",
        "parametrizations": {name: {"drift_slope", "drift_ci", "ci_method", "optima_agree",
        "predicted_log2_lr", "extrapolated", "widths": [{"width", "opt_log2_lr", "ci_low",
        "ci_high", "best_loss", ...}], "regret": [{"width", "abs", "rel", "ci_low", "ci_high",
        ...}], "regret_proxy_width"}}, "regret_tolerance", "hparams": {hp: {name: {...
        "opt_log2" ...}}}, "verdicts": [...], "loss_used": "train" | "val", "loss_reason",
        "forecast": {name: {"form", "params", "at": [{"width", "loss", "ci_low", "ci_high"}],
        "fit_quality", ...} or {"refused": reason, ...}}}.
        """
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "next_step": self.next_step,
            "tolerance": self.tolerance,
            "loss": self.loss,
            "loss_used": loss_short(self.loss),
            "loss_reason": self.loss_reason,
            "target_width": self.target_width,
            "n_runs": self.n_runs,
            "warnings": list(self.warnings),
            "regret_tolerance": self.regret_tolerance,
            "regret_applied": self.regret_applied,
            "parametrizations": {
                p: {**_drift_json(d, "opt_log2_lr", "predicted_log2_lr"),
                    **_regret_json(self.regret.get(p))}
                for p, d in self.lr.items()
            },
            "hparams": {
                hp: {p: _drift_json(d, "opt_log2", "predicted_log2") for p, d in by_param.items()}
                for hp, by_param in self.hparams.items()
            },
            "verdicts": [v.model_dump() for v in self.verdicts],
            "forecast": {p: f.contract_json() for p, f in self.forecast.items()},
            # Only a sweep with a ladder on an axis has that axis's section (`depth`, ...).
            **{axis: ladder.to_contract_json() for axis, ladder in self.ladders.items()},
            **({"forecast_depth": {p: f.contract_json() for p, f in self.forecast_depth.items()}}
               if self.forecast_depth else {}),
        }


def _regret_json(r: RegretResult | None) -> dict[str, Any]:
    """A parametrization's regret fields in the contract JSON ("regret": [] without one)."""
    if r is None:
        return {"regret": [], "regret_proxy_width": None}
    return {"regret": r.contract_rows(), "regret_proxy_width": r.proxy_width}


def _drift_json(d: DriftResult, key: str, predicted_key: str) -> dict[str, Any]:
    """One DriftResult in the contract JSON; `key` names the optimum ("opt_log2_lr", ...)."""
    return {
        "drift_slope": d.drift_slope,
        "drift_intercept": d.drift_intercept,
        "drift_ci": d.drift_ci,
        "ci_method": d.ci_method,
        "grid_step": d.grid_step,
        "optima_agree": d.optima_agree,
        "optima_spread": d.optima_spread,
        predicted_key: d.predicted_log2,
        "prediction": d.prediction,
        "extrapolated": d.extrapolated,
        "widths": [
            {
                "width": w.width,
                key: w.opt_log2,
                "ci_low": w.ci_low,
                "ci_high": w.ci_high,
                "best_loss": w.best_loss,
                "grid_log2": w.grid_log2,
                "refined": w.refined,
                "edge": w.edge,
                "n_points": w.n_points,
                "n_seeds": w.n_seeds,
                "seed_noise": w.seed_noise,
                "status": w.status,
            }
            for w in d.widths
        ],
    }
