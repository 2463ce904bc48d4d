"""Transfer regret as data: what copying the proxy's optimal LR costs at each width (pydantic).

`experiments.analysis.regret` fills these; `TransferReport.regret` holds one `RegretResult` per
parametrization, and `analyze --json` writes its rows as `parametrizations.<name>.regret`.
Kept apart from `schema` so the fit (`regret`) and the report models import it without a cycle.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

# ok: a number; outside_grid: the proxy's optimum lies outside the LRs trained at this width (no
# extrapolation); diverged: it lies next to a diverged grid point (the loss there is unbounded
# as far as the data say); no_optimum: this width or the proxy has no optimum.
RegretStatus = Literal["ok", "outside_grid", "diverged", "no_optimum"]


class WidthRegret(BaseModel):
    """The regret of one width: its fitted loss at the proxy's optimal LR minus its best loss.

    Attributes:
        width: the width.
        abs: regret in loss units (>= 0); None unless status is "ok".
        rel: abs / best_loss (0.01 = 1% more loss than the width's own optimum); None when
            best_loss <= 0.
        ci_low: lower end of the 95% interval of `rel`: `abs_ci_low` / best_loss (the one
            interval of the regret, in % of the best loss); None with one seed.
        ci_high: upper end of the interval of `rel` (`abs_ci_high` / best_loss).
        abs_ci_low: lower end of the interval of `abs`.
        abs_ci_high: upper end of the interval of `abs`.
        loss_at_transfer: the width's fitted loss at the proxy's optimum.
        best_loss: the width's own best (fitted) loss, as in `WidthOptimum.best_loss`.
        noise_abs: the seed noise in loss units: the seeds' standard deviation of the loss,
            pooled over the best grid point and its neighbours; None with fewer than two
            finished seeds there.
        noise_rel: noise_abs / best_loss (None when either is missing or best_loss <= 0).
        status: see `RegretStatus`.
        note: why there is no number, in plain words (None when status is "ok" and the
            relative regret is defined).
    """

    width: int
    abs: float | None = None
    rel: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    abs_ci_low: float | None = None
    abs_ci_high: float | None = None
    loss_at_transfer: float | None = None
    best_loss: float | None = None
    noise_abs: float | None = None
    noise_rel: float | None = None
    status: RegretStatus = "ok"
    note: str | None = None


class RegretResult(BaseModel):
    """The transfer regret of the LR in one parametrization, per width.

    Attributes:
        parametrization: "mup", "sp", ...
        proxy_width: the width whose optimum is copied (the narrowest with an optimum); None
            when no width has one.
        proxy_log2_lr: that optimum (log2 LR), the LR the proxy would transfer.
        widths: one row per width of the ladder, ascending (the proxy's own row is 0).
        ci_method: how the intervals were made.
    """

    parametrization: str
    proxy_width: int | None = None
    proxy_log2_lr: float | None = None
    widths: list[WidthRegret]
    ci_method: str = ""

    def at(self, width: int) -> WidthRegret | None:
        """The row of `width`, or None when the ladder lacks it."""
        return next((r for r in self.widths if r.width == width), None)

    def contract_rows(self) -> list[dict[str, Any]]:
        """The rows of `analyze --json` (`parametrizations.<name>.regret`)."""
        return [r.model_dump() for r in self.widths]
