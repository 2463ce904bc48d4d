"""The spec's batch and horizon scaling rules, and the settings a run trains with under them.

    scaling: {batch: none | sqrt | linear | {power: X}, horizon: none | {power: X}}
    base_batch_size: 16      # the batch the LR grid is tuned at (default: batch_size)
    base_horizon: 200        # the horizon, in steps, it is tuned at (default: steps)

The rules are mucore's tables (`mucore.scaling`: the SDE square-root rule of Malladi et al.,
2022, the linear SGD rule, the Power scheduler's power law of Shen et al., 2024). A run's LR in
the grid is the base LR: it trains with the settings the rules move it to at

    k_batch = batch_size / base_batch_size,   k_horizon = steps / base_horizon

(`RunConfig.effective_optimizer`), the way µP trains the grid LR times each group's width
multiplier.
So a sweep over batch sizes reads the optimum's drift *under the rule* straight from the grid
LRs, and the default rule, `none`, shows the raw drift. Without a base (or at k = 1) nothing
moves, and specs without these fields keep their run keys and hash.

Torch-free: the spec and the dashboard form import it.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mucore.optimizers import optimizer_family
from mucore.scaling import (
    OptimizerSettings,
    ScalingAxis,
    ScalingRule,
    get_scaling_rule,
    power_rule,
    rule_names,
    scale_settings,
)


class OptimizerBlock(Protocol):
    """What the rules read of the spec's optimizer block (`OptimizerConfig` is one)."""

    @property
    def name(self) -> str:
        """A registered optimizer name."""
        ...

    @property
    def betas(self) -> tuple[float, float]:
        """Adam's betas."""
        ...

    @property
    def eps(self) -> float:
        """Adam's epsilon."""
        ...

    @property
    def schedule(self) -> str:
        """The LR schedule's name."""
        ...

    @property
    def warmup_steps(self) -> int:
        """Warm-up steps of the schedule."""
        ...


class PowerRule(BaseModel):
    """`{power: X}`: LR x k^X (betas and eps unchanged)."""

    model_config = ConfigDict(extra="forbid")

    power: float = Field(allow_inf_nan=False)


def _check_name(axis: ScalingAxis, value: str | PowerRule) -> str | PowerRule:
    if isinstance(value, str) and value not in rule_names(axis):
        raise ValueError(f"scaling.{axis.value} '{value}' is not a rule: use one of "
                         f"{rule_names(axis)} or {{power: X}}")
    return value


class ScalingConfig(BaseModel):
    """The spec's `scaling:` block: the rule each ladder axis is swept under.

    Attributes:
        batch: "none" (default), "sqrt" (Adam/AdamW), "linear" (SGD) or `{power: X}`.
        horizon: "none" (default) or `{power: X}`.
    """

    model_config = ConfigDict(extra="forbid")

    batch: str | PowerRule = "none"
    horizon: str | PowerRule = "none"

    @field_validator("batch")
    @classmethod
    def _batch_rule(cls, v: str | PowerRule) -> str | PowerRule:
        return _check_name(ScalingAxis.BATCH, v)

    @field_validator("horizon")
    @classmethod
    def _horizon_rule(cls, v: str | PowerRule) -> str | PowerRule:
        return _check_name(ScalingAxis.HORIZON, v)

    def rule(self, axis: ScalingAxis | str) -> ScalingRule:
        """The mucore rule of `axis`."""
        ax = ScalingAxis(axis)
        value = self.batch if ax is ScalingAxis.BATCH else self.horizon
        if isinstance(value, PowerRule):
            return power_rule(ax, value.power)
        return get_scaling_rule(ax, value)

    def is_default(self) -> bool:
        """Both axes at `none` (the block then changes nothing and is left out of the hash)."""
        return self == ScalingConfig()


class Scaled(Protocol):
    """What the scaling rules read of a spec or a run (`SweepSpec` and `RunConfig` are both)."""

    @property
    def scaling(self) -> ScalingConfig:
        """The rule per axis."""
        ...

    @property
    def optimizer(self) -> OptimizerBlock:
        """The optimizer block (name, betas, eps)."""
        ...

    @property
    def batch_size(self) -> int:
        """Examples per step."""
        ...

    @property
    def steps(self) -> int:
        """Optimizer steps."""
        ...

    @property
    def base_batch_size(self) -> int | None:
        """The batch the LR is tuned at (None: batch_size)."""
        ...

    @property
    def base_horizon(self) -> int | None:
        """The steps the LR is tuned at (None: steps)."""
        ...


def ratios(run: Scaled) -> tuple[float, float]:
    """(k_batch, k_horizon): batch_size / base_batch_size and horizon / base_horizon (1 without
    a base).

    The horizon is the run's rung in steps at the base batch (`horizon`, else `steps`): a
    batch-ladder rung trains fewer steps at the same examples seen, which is the batch rule's
    business, so the horizon rule must not move it again.
    """
    k_batch = run.batch_size / run.base_batch_size if run.base_batch_size else 1.0
    horizon = getattr(run, "horizon", None) or run.steps
    k_horizon = horizon / run.base_horizon if run.base_horizon else 1.0
    return k_batch, k_horizon


def scaled_settings(optimizer: str, settings: OptimizerSettings, scaling: ScalingConfig,
                    k_batch: float, k_horizon: float) -> OptimizerSettings:
    """The base settings of `optimizer` moved by the batch rule at k_batch, then the horizon
    rule at k_horizon. Both multiply the LR, so the order only matters for betas and eps,
    which only the batch rules move. `RunConfig.effective_optimizer` applies it to a run.

    Raises:
        ValueError: a rule has no entry for the optimizer, or a scaled beta falls below 0
            (as `mucore.scale_settings`).
    """
    for axis, k in ((ScalingAxis.BATCH, k_batch), (ScalingAxis.HORIZON, k_horizon)):
        settings = scale_settings(scaling.rule(axis), optimizer, settings, k)
    return settings


def scaling_problems(spec: Scaled) -> list[tuple[str, str]]:
    """(field, message) for scaling rules the spec cannot train with; empty when it can.

    Refused: a rule with no entry for the optimizer's family (`sqrt` for SGD, `linear` for
    Adam); a rule that breaks at the spec's own ratio (the SDE rule past k x (1 - beta) = 1);
    a base horizon no longer than the warm-up.
    """
    out: list[tuple[str, str]] = []
    family = optimizer_family(spec.optimizer.name)
    k_batch, k_horizon = ratios(spec)
    settings = OptimizerSettings(1.0, spec.optimizer.betas, spec.optimizer.eps)
    for axis, k in ((ScalingAxis.BATCH, k_batch), (ScalingAxis.HORIZON, k_horizon)):
        rule = spec.scaling.rule(axis)
        try:
            rule.row(family, spec.optimizer.name)
            settings = scale_settings(rule, spec.optimizer.name, settings, k)
        except ValueError as exc:
            out.append((f"scaling.{axis.value}", str(exc)))
    warmup = spec.optimizer.warmup_steps
    if (spec.base_horizon is not None and spec.optimizer.schedule != "constant"
            and spec.base_horizon <= warmup):
        out.append(("base_horizon", f"base_horizon {spec.base_horizon} is not longer than "
                    f"optimizer.warmup_steps {warmup}: use a base horizon > {warmup} steps"))
    return out
