"""Batch-size and training-horizon scaling rules, as data beside the width and depth tables.

µP (TP5) moves the optimum across width, CompleteP across depth; these tables say how the
optimizer settings should move when the batch size or the training length changes. Each rule
is a row of exponents of the ratio k (k = batch / base batch, or T / T0 for the horizon), one
row per optimizer family:

    lr         -> lr * k ** lr_exp
    1 - beta_i -> (1 - beta_i) * k ** one_minus_beta_exp       (beta1 and beta2)
    eps        -> eps * k ** eps_exp

Batch rules:
- `none`: nothing moves (the raw drift a user should see first).
- `sqrt`, the SDE square-root rule for Adam/AdamW (Malladi et al., 2022, "On the SDEs and
  scaling rules for adaptive gradient algorithms", arXiv 2205.10287): batch x k
  at fixed samples -> LR x sqrt(k), 1 - beta1 and 1 - beta2 x k, eps / sqrt(k). It has no SGD row.
- `linear`, SGD's linear scaling rule (Goyal et al., 2017; the SGD SDE in Malladi et al.,
  2022): LR x k. It has no Adam row (write `{power: 1}` to scale Adam's LR linearly).
- `{power: X}`: LR x k^X for every family, betas and eps unchanged; the Power scheduler's fit
  (Shen et al., 2024, arXiv 2408.13359: optimal LR linear in batch, X = 1) or a fitted exponent.

Horizon rules (T / T0 in the unit the caller chooses, steps or tokens):
- `none`.
- `{power: X}`: LR x (T / T0)^X; Shen et al. (2024) fit X ~ -0.51 in tokens, and
  Complete^(d)P (Mlodozeniec et al., 2025) derives LR ~ sqrt(B / T),
  i.e. X = -1/2 at fixed batch.

Torch-free (stdlib only): the spec validates rule names and optimizer families without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from mucore.optimizers import get_optimizer, optimizer_names
from mucore.parametrizations import OptimizerFamily


class ScalingAxis(StrEnum):
    """The ladder axis a rule scales along."""

    BATCH = "batch"
    HORIZON = "horizon"


# The name of the parametrised rule family (written `{power: X}` in a spec).
POWER = "power"


@dataclass(frozen=True)
class RuleRow:
    """One optimizer family's rule, as exponents of the ratio k (see the module docstring)."""

    lr_exp: float
    one_minus_beta_exp: float = 0.0
    eps_exp: float = 0.0


@dataclass(frozen=True)
class ScalingRule:
    """A named rule for one axis.

    Attributes:
        name: the spec's spelling ("none", "sqrt", "linear", "power").
        axis: the axis it scales along.
        rows: one `RuleRow` per optimizer family it has an entry for; a family not listed is
            refused by `scale_settings`.
        summary: one line for pages and messages.
        citation: where the rule comes from.
        exponent: the user's exponent X of a `power` rule (None for the named rules).
    """

    name: str
    axis: ScalingAxis
    rows: dict[OptimizerFamily, RuleRow]
    summary: str = ""
    citation: str = ""
    exponent: float | None = field(default=None)

    @property
    def label(self) -> str:
        """`sqrt`, or `power(-0.5)` for a power rule."""
        return self.name if self.exponent is None else f"{self.name}({self.exponent:g})"

    def row(self, family: OptimizerFamily, optimizer: str = "") -> RuleRow:
        """The row of `family`.

        Raises:
            ValueError: the rule has no entry for the family (names the rule, the optimizer and
                the rules that do have one).
        """
        if family in self.rows:
            return self.rows[family]
        who = f"optimizer {optimizer} ({family.value} family)" if optimizer else (
            f"the {family.value} optimizer family")
        usable = [r for r in rule_names(self.axis) if family in _TABLES[self.axis][r].rows]
        raise ValueError(f"{self.axis.value} scaling rule '{self.label}' has no entry for {who}: "
                         f"use one of {usable + [POWER]} (power as {{power: X}})")


_A, _S = OptimizerFamily.ADAM, OptimizerFamily.SGD
_NONE = {f: RuleRow(0.0) for f in OptimizerFamily}

BATCH_NONE = ScalingRule("none", ScalingAxis.BATCH, _NONE, "settings do not move with batch")
BATCH_SQRT = ScalingRule(
    "sqrt", ScalingAxis.BATCH, {_A: RuleRow(0.5, 1.0, -0.5)},
    "SDE rule: LR x sqrt(k), 1 - beta1 and 1 - beta2 x k, eps / sqrt(k)",
    "Malladi et al., On the SDEs and scaling rules for adaptive gradient algorithms "
    "(NeurIPS 2022, arXiv 2205.10287)",
)
BATCH_LINEAR = ScalingRule(
    "linear", ScalingAxis.BATCH, {_S: RuleRow(1.0)},
    "linear rule for SGD: LR x k",
    "Goyal et al. (2017, arXiv 1706.02677); Malladi et al. (2022), the SGD SDE",
)
HORIZON_NONE = ScalingRule("none", ScalingAxis.HORIZON, _NONE,
                           "settings do not move with the training horizon")

_TABLES: dict[ScalingAxis, dict[str, ScalingRule]] = {
    ScalingAxis.BATCH: {r.name: r for r in (BATCH_NONE, BATCH_SQRT, BATCH_LINEAR)},
    ScalingAxis.HORIZON: {HORIZON_NONE.name: HORIZON_NONE},
}


def rule_names(axis: ScalingAxis | str) -> list[str]:
    """The named rules of an axis (the `power` family is spelled `{power: X}` besides them)."""
    return list(_TABLES[ScalingAxis(axis)])


def power_rule(axis: ScalingAxis | str, exponent: float) -> ScalingRule:
    """LR x k^exponent for every optimizer family; betas and eps unchanged.

    The Power scheduler's form (Shen et al., 2024, arXiv 2408.13359) and the form of a fitted
    exponent; Complete^(d)P's horizon rule is exponent -1/2 (Mlodozeniec et al., 2025).

    Raises:
        ValueError: a non-finite exponent.
    """
    if not math.isfinite(exponent):
        raise ValueError(f"{ScalingAxis(axis).value} scaling power must be a finite number, "
                         f"got {exponent!r}: e.g. {{power: 0.5}}")
    rows = {f: RuleRow(float(exponent)) for f in OptimizerFamily}
    return ScalingRule(POWER, ScalingAxis(axis), rows, f"LR x k^{exponent:g}",
                       "Shen et al., Power scheduler (2024, arXiv 2408.13359)", float(exponent))


def get_scaling_rule(axis: ScalingAxis | str, name: str) -> ScalingRule:
    """The named rule of an axis ("none", "sqrt", "linear"; use `power_rule` for a power).

    Raises:
        ValueError: unknown axis or rule name (lists the axis's rules).
    """
    ax = ScalingAxis(axis)
    try:
        return _TABLES[ax][name]
    except KeyError:
        raise ValueError(f"unknown {ax.value} scaling rule '{name}': choose one of "
                         f"{rule_names(ax)} or {{power: X}}") from None


def register_scaling_rule(rule: ScalingRule) -> ScalingRule:
    """Add (or replace) a named rule on its axis; returns it."""
    _TABLES[rule.axis][rule.name] = rule
    return rule


@dataclass(frozen=True)
class OptimizerSettings:
    """The settings a scaling rule moves: the global LR, Adam's betas and epsilon."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


def _family(optimizer: OptimizerFamily | str) -> tuple[OptimizerFamily, str]:
    """(family, optimizer name for messages) of a registered optimizer name or a family."""
    if isinstance(optimizer, str) and optimizer in optimizer_names():
        return get_optimizer(optimizer).family, optimizer
    return OptimizerFamily(optimizer), ""


def scale_settings(rule: ScalingRule, optimizer: OptimizerFamily | str,
                   settings: OptimizerSettings, k: float) -> OptimizerSettings:
    """The settings at ratio k = new / base along the rule's axis (see the module docstring).

    Args:
        rule: from `get_scaling_rule` or `power_rule`.
        optimizer: a registered optimizer name (named in errors) or an `OptimizerFamily`.
        settings: the base settings (tuned at k = 1).
        k: batch / base batch, or T / T0; k = 1 returns `settings` unchanged.

    Raises:
        ValueError: k is not a finite number > 0; the rule has no entry for the optimizer
            (e.g. `sqrt` for SGD); or a scaled beta would fall below 0 (the SDE rule needs
            k x (1 - beta) <= 1).
    """
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"scaling ratio k must be a finite number > 0, got {k!r}")
    family, name = _family(optimizer)
    row = rule.row(family, name)
    if k == 1.0:
        return settings
    beta_factor = k**row.one_minus_beta_exp
    betas = tuple(1.0 - (1.0 - b) * beta_factor for b in settings.betas)
    for i, (b0, b) in enumerate(zip(settings.betas, betas, strict=True)):
        if b < 0.0:
            raise ValueError(
                f"{rule.axis.value} scaling rule '{rule.label}' at k = {k:g} gives beta{i + 1} = "
                f"1 - {beta_factor:g} x (1 - {b0:g}) = {b:.3g} < 0: the rule holds only while "
                f"k x (1 - beta) <= 1; use a smaller ratio or a power rule")
    return replace(settings, lr=settings.lr * k**row.lr_exp,
                   betas=(betas[0], betas[1]), eps=settings.eps * k**row.eps_exp)


# Literature exponents a measured one is compared with beside the named rules' LR exponents:
# the horizon has no named rule but `none`, and two published fits say LR ~ T^-1/2 (Shen et
# al., 2024: ~ tokens^-0.51; Mlodozeniec et al., 2025: Complete^(d)P's sqrt(B / T)).
_LITERATURE_POWERS: dict[ScalingAxis, tuple[float, ...]] = {
    ScalingAxis.BATCH: (),
    ScalingAxis.HORIZON: (-0.5,),
}


def candidate_exponents(axis: ScalingAxis | str,
                        family: OptimizerFamily | None = None) -> dict[str, float]:
    """{rule label: its LR exponent} that a fitted exponent is compared with on `axis`.

    Every named rule of the axis (its row for `family` when it has one, else the exponent it
    prescribes for the family it was written for: `sqrt` 0.5, `linear` 1.0, so a user sees
    where the measured exponent sits between them), then the literature's power rules.
    Ordered by exponent, ascending.
    """
    ax = ScalingAxis(axis)
    out: dict[str, float] = {}
    for name, rule in _TABLES[ax].items():
        row = rule.rows.get(family) if family is not None else None
        if row is None:  # a rule written for another family: its (one) prescribed exponent
            row = max(rule.rows.values(), key=lambda r: abs(r.lr_exp))
        out[name] = float(row.lr_exp)
    for x in _LITERATURE_POWERS[ax]:
        out[power_rule(ax, x).label] = float(x)
    return dict(sorted(out.items(), key=lambda kv: kv[1]))
