"""Did the target reach the loss the ladder forecast? (the verify run's forecast check)

The bundle records the best-loss forecast at its target width (`experiments.analysis.forecast`:
L(w) = L_inf + A * w^-alpha fitted on the ladder, 95% interval by a bootstrap over seeds). The
verify run trains the target with the bundle's HPs; its *measured* loss is the seed-mean loss at
the transferred LR, the loss a user who trusts the bundle gets (not the bracket's best point,
which a wrong LR would still find two grid steps away). Rule:

- slack = max(2 x the standard error of the measured seed mean, `REL_SLACK` x the forecast):
  the forecast's interval covers the ladder's seed noise, not the target's own, which a mean
  of a few seeds adds; and 1% of the loss is below what a user decides on;
- status "inside" when ci_low - slack <= measured <= ci_high + slack, "worse" above (the target
  fell short of what its ladder promised: a wrong LR, a broken transfer, too few steps at
  width), "better" below; a diverged target is "worse";
- `excess`: how far outside the interval (loss units; 0 inside, positive worse, negative
  better), and `excess_noise`: the same in the measured seeds' standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

# The part of the forecast loss that counts as agreement whatever the seed noise (1%).
REL_SLACK = 0.01

ForecastStatus = Literal["inside", "better", "worse"]


class ForecastCheck(BaseModel):
    """The target's measured loss against the bundle's forecast (module docstring).

    Attributes:
        width: the target width the forecast is for.
        loss: the forecast best loss.
        ci_low: lower end of its 95% interval.
        ci_high: upper end.
        measured: the seed-mean loss at the transferred LR (None: it diverged).
        status: "inside", "better" or "worse".
        excess: measured minus the nearest end of the interval (0 inside the interval).
        excess_noise: `excess` in the measured seeds' standard deviations (None with one seed).
        seed_sd: the measured seeds' standard deviation (None with fewer than two).
        slack: the agreement allowance beyond the interval, in loss units.
        gap: measured minus the forecast loss.
    """

    width: int
    loss: float
    ci_low: float
    ci_high: float
    measured: float | None
    status: ForecastStatus
    excess: float | None
    excess_noise: float | None = None
    seed_sd: float | None = None
    slack: float
    gap: float | None = None

    def sentence(self) -> str:
        """One line: the forecast, the measurement and the outcome, with numbers."""
        ci = f"[{self.ci_low:.4g}, {self.ci_high:.4g}]"
        if self.measured is None:
            return f"forecast {self.loss:.4g} {ci} at width {self.width}; the target diverged: worse"
        noise = "" if self.excess_noise is None else f", {self.excess_noise:+.1f} seed sd"
        how = "inside the interval" if self.status == "inside" else (
            f"{self.status} than forecast by {abs(self.excess or 0.0):.3g}{noise}")
        return (f"forecast {self.loss:.4g} {ci} at width {self.width}; measured "
                f"{self.measured:.4g}: {how}")


def check_forecast(
    row: Mapping[str, Any], seed_losses: Sequence[float | None], measured: float | None
) -> ForecastCheck | None:
    """Compare the measured target loss with a recorded forecast row (module docstring).

    Args:
        row: the bundle's forecast at the target (`{width, loss, ci_low, ci_high}`).
        seed_losses: the target's per-seed losses at the transferred LR (None: diverged).
        measured: their mean (None when any seed diverged).

    Returns:
        The check, or None when the row has no interval.
    """
    loss, lo, hi = row.get("loss"), row.get("ci_low"), row.get("ci_high")
    if loss is None or lo is None or hi is None:
        return None
    finite = [float(x) for x in seed_losses if x is not None and math.isfinite(x)]
    sd = float(np.std(finite, ddof=1)) if len(finite) >= 2 else None
    se = 0.0 if sd is None else sd / math.sqrt(len(finite))
    slack = max(2 * se, REL_SLACK * abs(float(loss)))
    check = ForecastCheck(width=int(row["width"]), loss=float(loss), ci_low=float(lo),
                          ci_high=float(hi), seed_sd=sd, slack=slack, measured=None,
                          status="worse", excess=None)
    if measured is None or not math.isfinite(measured):
        return check  # a diverged target fell short of any forecast
    lo, hi = check.ci_low, check.ci_high
    excess = measured - hi if measured > hi else (measured - lo if measured < lo else 0.0)
    status: ForecastStatus = "inside"
    if measured > hi + slack:
        status = "worse"
    elif measured < lo - slack:
        status = "better"
    return check.model_copy(update={
        "measured": measured, "status": status, "excess": excess,
        "excess_noise": None if not sd else excess / sd, "gap": measured - check.loss})
