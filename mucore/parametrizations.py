"""Parametrizations as data: a table from role to (init, forward multiplier, LR multiplier).

Each rule is written as exponents of the role's width multiplier m (see `ParamInfo.width_mult`):
a new parametrization (depth-aware µP, u-µP, ...) is a new table passed to
`register_parametrization`; the init, forward and optimizer code never changes.

`MUP` is the "Table 8" form of Tensor Programs V (Yang et al., 2022), as in the reference
package: readout init std stays at the base value sigma/sqrt(fan_in0), the readout input is
multiplied by alpha_out / m, and Adam's LR is divided by m for hidden weights only. (Table 3's
form, init variance 1/fan_in^2 and readout LR / m with no multiplier, has the same training
dynamics; we do not implement it.) At m = 1 every rule reduces to SP, bit for bit.

Tied input/output embeddings (one tensor in two roles) need no row of their own: the tensor
keeps the input row's LR (the same exponents as the output row's in both tables), is drawn by
the output row's init rule along its width dim, and the readout that reuses it applies the
output row's forward multiplier (`mucore.TiedReadout`, `MuSetup.tied_readout_mult`, TP5's
weight-tying rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mucore.roles import ParamInfo, Role


class InitRule(StrEnum):
    """How a parameter is drawn at (re-)initialisation."""

    FAN_IN = "fan_in"  # N(0, (sigma / sqrt(fan_in))^2)
    BASE_FAN_IN = "base_fan_in"  # N(0, (sigma / sqrt(fan_in0))^2): constant in width
    KEEP = "keep"  # vectors keep their defaults: norm gains 1, biases 0


class OptimizerFamily(StrEnum):
    """Optimizers whose µP LR rules differ (TP5, Table 8)."""

    ADAM = "adam"  # Adam, AdamW and other entry-wise normalised updates
    SGD = "sgd"  # SGD with or without momentum


@dataclass(frozen=True)
class RoleRule:
    """The rule for one role, as exponents of the width multiplier m.

    Attributes:
        init: how the tensor is drawn.
        forward_exp: forward multiplier = m ** forward_exp (times the role's global knob).
        lr_exp: per optimizer family, LR multiplier = m ** lr_exp.
    """

    init: InitRule
    forward_exp: float
    lr_exp: dict[OptimizerFamily, float]


@dataclass(frozen=True)
class Parametrization:
    """A named table of rules.

    Attributes:
        name: registry key ("sp", "mup").
        version: bumped whenever a rule changes; recorded in HP bundles.
        rules: one `RoleRule` per role.
        attention_inverse: scores scaled by 1/d_head (µP) instead of 1/sqrt(d_head) (SP).
        summary: one line for describe tables and the dashboard.
    """

    name: str
    version: str
    rules: dict[Role, RoleRule]
    attention_inverse: bool
    summary: str = ""
    citation: str = field(default="")

    def rule(self, role: Role) -> RoleRule:
        return self.rules[role]

    def lr_mult(self, info: ParamInfo, family: OptimizerFamily | str) -> float:
        """LR multiplier of one parameter relative to the global LR."""
        exp = self.rules[info.role].lr_exp[OptimizerFamily(family)]
        return float(info.width_mult**exp)

    def forward_exp_mult(self, info: ParamInfo) -> float:
        """Width part of the forward multiplier (without the global knob)."""
        return float(info.width_mult ** self.rules[info.role].forward_exp)


_A, _S = OptimizerFamily.ADAM, OptimizerFamily.SGD

SP = Parametrization(
    name="sp",
    version="sp-1",
    rules={
        Role.INPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0}),
        Role.HIDDEN: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0}),
        Role.OUTPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0}),
        Role.VECTOR: RoleRule(InitRule.KEEP, 0.0, {_A: 0.0, _S: 0.0}),
    },
    attention_inverse=False,
    summary="standard parametrization: fan-in init, one global LR, 1/sqrt(d_head) attention",
    citation="Yang & Hu, Tensor Programs IV (2021), the 'standard' abc-parametrization",
)

MUP = Parametrization(
    name="mup",
    version="mup-table8-1",
    rules={
        # input-like: init constant in width; SGD LR grows with the fan_out mult.
        Role.INPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 1.0}),
        # hidden: fan-in init (std ~ 1/sqrt(m)); Adam LR / m, SGD LR constant.
        Role.HIDDEN: RoleRule(InitRule.FAN_IN, 0.0, {_A: -1.0, _S: 0.0}),
        # readout: base init, input multiplied by alpha_out / m; Adam LR constant, SGD LR * m.
        Role.OUTPUT: RoleRule(InitRule.BASE_FAN_IN, -1.0, {_A: 0.0, _S: 1.0}),
        # vectors: default init; Adam LR constant, SGD LR * m.
        Role.VECTOR: RoleRule(InitRule.KEEP, 0.0, {_A: 0.0, _S: 1.0}),
    },
    attention_inverse=True,
    summary="µP (TP5 Table 8): hidden Adam LR / m, readout input x alpha_out / m, 1/d_head attention",
    citation="Yang et al., Tensor Programs V (2022), Table 8",
)

_REGISTRY: dict[str, Parametrization] = {SP.name: SP, MUP.name: MUP}


def register_parametrization(p: Parametrization) -> None:
    """Add a parametrization table (every role needs a rule for every optimizer family)."""
    for role in Role:
        if role not in p.rules:
            raise ValueError(f"parametrization '{p.name}' lacks a rule for role '{role}'")
        missing = [f for f in OptimizerFamily if f not in p.rules[role].lr_exp]
        if missing:
            raise ValueError(f"parametrization '{p.name}' role '{role}' lacks LR rules {missing}")
    _REGISTRY[p.name] = p


def get_parametrization(name: str | Parametrization) -> Parametrization:
    """Look up a parametrization by name ('sp', 'mup', or one registered later)."""
    if isinstance(name, Parametrization):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown parametrization '{name}': choose one of {sorted(_REGISTRY)}"
        ) from None


def parametrization_names() -> list[str]:
    """Names of every registered parametrization."""
    return sorted(_REGISTRY)
