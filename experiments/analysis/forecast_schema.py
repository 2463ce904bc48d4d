"""The loss forecast as data: the fitted power law of best loss against width (pydantic).

`experiments.analysis.forecast` fills these; `TransferReport.forecast` holds one `Forecast` per
parametrization, and `analyze --json` writes them as `forecast.<name>` (`contract_json`). Kept
apart from `schema` so the fit and the report models import it without a cycle.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, Field

# The fitted form, as the JSON and the pages write it.
FORM = "L(w) = L_inf + A * w^-alpha"

Axis = Literal["width", "depth"]


class LadderPoint(BaseModel):
    """One rung of the ladder the law is fitted on.

    Attributes:
        width: the width (or the depth, on a depth axis).
        loss: the rung's best seed-mean loss (the optimum the transfer analysis found).
        seed_sd: the seeds' standard deviation of the loss at its best grid point (None with
            fewer than two finite seeds).
        n_seeds: seeds with a finite loss there.
    """

    width: int
    loss: float
    seed_sd: float | None = None
    n_seeds: int = 0


class ForecastPoint(BaseModel):
    """The forecast best loss at one width, with its 95% interval.

    Attributes:
        width: where (a target width, or a rung of the ladder).
        loss: the fitted law's value there.
        ci_low: lower end of the 95% interval (bootstrap; see `Forecast.ci_method`).
        ci_high: upper end of the interval.
        extrapolated: the width lies beyond the widest rung.
    """

    width: int
    loss: float
    ci_low: float | None = None
    ci_high: float | None = None
    extrapolated: bool = False


class Forecast(BaseModel):
    """The power-law forecast of one parametrization's best loss, or why there is none.

    Attributes:
        parametrization: "mup", "sp", ...
        axis: "width" (the width ladder) or "depth" (a depth ladder at one width).
        form: the fitted form (`FORM`).
        params: {"L_inf", "A", "alpha"} of the fit (None when refused).
        at: the forecast at each requested width (the target), with its interval.
        fit_quality: {"r2", "rmse", "rmse_rel", "noise_se", "n_points", "dof", "n_bootstrap"}.
        points: the rungs the fit read (also given when refused, for the chart).
        ci_method: how the interval was made.
        refused: why no forecast is given (None when there is one).
    """

    parametrization: str
    axis: Axis = "width"
    form: str = FORM
    params: dict[str, float] | None = None
    at: list[ForecastPoint] = Field(default_factory=list)
    fit_quality: dict[str, float | int | None] = Field(default_factory=dict)
    points: list[LadderPoint] = Field(default_factory=list)
    ci_method: str = ""
    refused: str | None = None

    def predict(self, width: float) -> float | None:
        """The fitted law at `width` (None when refused)."""
        if self.params is None:
            return None
        p = self.params
        return float(p["L_inf"] + p["A"] * math.pow(width, -p["alpha"]))

    def point_at(self, width: int) -> ForecastPoint | None:
        """The forecast row for `width`, if it was requested."""
        return next((a for a in self.at if a.width == width), None)

    def contract_json(self) -> dict[str, Any]:
        """`{form, params, at: [{width, loss, ci_low, ci_high}], fit_quality, ...}`, or
        `{refused: REASON, ...}` (with the rungs, so a reader still sees the data)."""
        points = [p.model_dump() for p in self.points]
        if self.refused is not None:
            return {"refused": self.refused, "axis": self.axis, "points": points}
        return {"form": self.form, "axis": self.axis, "params": self.params,
                "at": [a.model_dump() for a in self.at], "fit_quality": dict(self.fit_quality),
                "ci_method": self.ci_method, "points": points}
