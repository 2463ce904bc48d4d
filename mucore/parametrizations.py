"""Parametrizations as data: a table from role to (init, forward multiplier, LR multiplier).

Each rule is written as exponents of the role's width multiplier m (see `ParamInfo.width_mult`):
a new parametrization (depth-aware µP, u-µP, ...) is a new table passed to
`register_parametrization`; the init, forward and optimizer code never changes.

`MUP` is the "Table 8" form of Tensor Programs V (Yang et al., 2022), as in the reference
package: readout init std stays at the base value sigma/sqrt(fan_in0), the readout input is
multiplied by alpha_out / m, and Adam's LR is divided by m for hidden weights only. (Table 3's
form, init variance 1/fan_in^2 and readout LR / m with no multiplier, has the same training
dynamics; we do not implement it.) At m = 1 every rule reduces to SP, bit for bit.

`COMPLETEP` and `DEPTH_MUP` add depth rules as exponents of m_L = blocks / base blocks (see
`_depth_table`): `Parametrization.branch_exp` for the residual branches, `RoleRule.depth_lr_exp`
and `depth_eps_exp` for parameters inside the blocks (`BaseParam.in_block`). At m = m_L = 1
they too reduce to SP, bit for bit.

Tied input/output embeddings (one tensor in two roles) need no row of their own: the tensor
keeps the input row's LR (the same exponents as the output row's in both tables), is drawn by
the output row's init rule along its width dim, and the readout that reuses it applies the
output row's forward multiplier (`mucore.TiedReadout`, `MuSetup.tied_readout_mult`, TP5's
weight-tying rule).

Each table also carries its traits, so no caller spells a list of names: `label` (charts and
pages), `width_stable` (its optimum should not drift with width, the claim the analysis checks),
`has_depth_rules` (it scales residual branches or block LRs with depth) and `supports` (the
optimizer families it trains with). This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from mucore.role_kinds import Role

if TYPE_CHECKING:  # torch-free at run time: the spec layer reads these tables without torch
    from mucore.roles import ParamInfo


class InitRule(StrEnum):
    """How a parameter is drawn at (re-)initialisation."""

    FAN_IN = "fan_in"  # N(0, (sigma / sqrt(fan_in))^2)
    BASE_FAN_IN = "base_fan_in"  # N(0, (sigma / sqrt(fan_in0))^2): constant in width
    KEEP = "keep"  # vector-like: the model's own init, untouched (TP5: as in the base model)


class OptimizerFamily(StrEnum):
    """Optimizers whose µP LR rules differ (TP5, Table 8)."""

    ADAM = "adam"  # Adam, AdamW, Lion and other entry-wise normalised (sign-like) updates
    SGD = "sgd"  # SGD with or without momentum
    # Muon on the 2-D hidden weights it owns (AdamW, i.e. ADAM's rules, on everything else):
    # an orthogonalised update whose spectral norm is width-constant (torch's "original"
    # adjustment) ...
    MUON = "muon"
    # ... or grows like sqrt(fan) ("match_rms_adamw"), which the hidden LR must undo.
    MUON_RMS = "muon_rms"


# Families every table must state for every role; the Muon families are hidden-weight rules
# (the parameters Muon owns), and a table without them refuses Muon with a clear message.
CORE_FAMILIES = (OptimizerFamily.ADAM, OptimizerFamily.SGD)
MUON_FAMILIES = (OptimizerFamily.MUON, OptimizerFamily.MUON_RMS)


@dataclass(frozen=True)
class RoleRule:
    """The rule for one role, as exponents of the width multiplier m (and depth multiplier m_L).

    Attributes:
        init: how the tensor is drawn (never depth-dependent: CompleteP and depth-µP keep the
            init variance free of depth, no GPT-2 style 1/sqrt(2L) projection init).
        forward_exp: forward multiplier = m ** forward_exp (times the role's global knob).
        lr_exp: per optimizer family, LR multiplier = m ** lr_exp.
        depth_lr_exp: per optimizer family, the LR of a parameter inside a repeated residual
            block is further multiplied by m_L ** depth_lr_exp (a family not listed: 0).
        eps_exp: with eps scaling on, Adam eps = eps * m ** eps_exp (Everett et al., 2024).
        depth_eps_exp: with eps scaling on, a parameter inside a block further gets
            eps * m_L ** depth_eps_exp.
    """

    init: InitRule
    forward_exp: float
    lr_exp: dict[OptimizerFamily, float]
    depth_lr_exp: dict[OptimizerFamily, float] = field(default_factory=dict)
    eps_exp: float = 0.0
    depth_eps_exp: float = 0.0


@dataclass(frozen=True)
class Parametrization:
    """A named table of rules.

    Attributes:
        name: registry key ("sp", "mup", "completep", "depth-mup").
        version: bumped whenever a rule changes; recorded in HP bundles.
        rules: one `RoleRule` per role.
        attention_inverse: scores scaled by 1/d_head (µP) instead of 1/sqrt(d_head) (SP).
        summary: one line for describe tables and the dashboard.
        branch_exp: every residual branch output is multiplied by m_L ** branch_exp
            (`mucore.ResidualBranch`): -alpha for depth-µP (1/2) and CompleteP (1), 0 otherwise.
        unsupported: optimizer families this table refuses, with the reason (a user sees it).
        label: display name for charts and pages ("µP"); empty: the name.
        short_label: for a metric tile or a sentence ("SP" where the label reads
            "SP (standard)"); empty: the label.
        width_stable: its optimal HPs should not drift with width (µP's claim, TP5): the
            analysis predicts a target width's optimum as the ladder's stable optimum and checks
            the claim, instead of extrapolating a drift line.
    """

    name: str
    version: str
    rules: dict[Role, RoleRule]
    attention_inverse: bool
    summary: str = ""
    citation: str = field(default="")
    branch_exp: float = 0.0
    unsupported: dict[OptimizerFamily, str] = field(default_factory=dict)
    label: str = ""
    short_label: str = ""
    width_stable: bool = False

    @property
    def display_label(self) -> str:
        """The label, or the name when the table has none."""
        return self.label or self.name

    @property
    def display_short_label(self) -> str:
        """The short label, else the display label."""
        return self.short_label or self.display_label

    @property
    def has_depth_rules(self) -> bool:
        """Whether any rule depends on depth (m_L): a residual branch multiplier or a block
        LR / eps exponent (CompleteP, depth-µP); such a table can judge depth transfer."""
        depth_exps = [e for r in self.rules.values()
                      for e in (*r.depth_lr_exp.values(), r.depth_eps_exp)]
        return self.branch_exp != 0.0 or any(e != 0.0 for e in depth_exps)

    def supports(self, family: OptimizerFamily | str) -> bool:
        """Whether the table trains with this optimizer family (not in `unsupported`, and a
        Muon family only when the hidden row states its rule)."""
        fam = OptimizerFamily(family)
        if fam in MUON_FAMILIES and fam not in self.rules[Role.HIDDEN].lr_exp:
            return False
        return fam not in self.unsupported

    def rule(self, role: Role) -> RoleRule:
        return self.rules[role]

    def check_family(self, family: OptimizerFamily | str) -> OptimizerFamily:
        """The family, or a ValueError saying why this table refuses it."""
        fam = OptimizerFamily(family)
        if fam in self.unsupported:
            raise ValueError(
                f"parametrization '{self.name}' does not support {fam.value} optimizers: "
                f"{self.unsupported[fam]}"
            )
        if fam in MUON_FAMILIES and fam not in self.rules[Role.HIDDEN].lr_exp:
            raise ValueError(
                f"parametrization '{self.name}' states no hidden-weight rule for Muon "
                f"({fam.value}): add lr_exp[OptimizerFamily.{fam.name}] to its hidden row, or "
                "use parametrization mup")
        return fam

    def lr_mult(self, info: ParamInfo, family: OptimizerFamily | str) -> float:
        """LR multiplier of one parameter relative to the global LR.

        m ** lr_exp, times m_L ** depth_lr_exp for a parameter inside a repeated block. Under a
        Muon family only the 2-D hidden weights Muon owns use the Muon row; every other
        parameter is trained by AdamW and gets the Adam row (`rule_family_for`).

        Raises:
            ValueError: the table refuses this optimizer family (`unsupported`).
        """
        fam = rule_family_for(self.check_family(family), info.role, len(info.shape))
        rule = self.rules[info.role]
        mult = float(info.width_mult ** rule.lr_exp[fam])
        if info.base.in_block:
            mult *= float(info.depth_mult ** rule.depth_lr_exp.get(fam, 0.0))
        return mult

    def eps_divisor(self, info: ParamInfo) -> float:
        """Adam eps is divided by this when eps scaling is on.

        m ** -eps_exp, times m_L ** -depth_eps_exp inside a block. A divisor (not a factor)
        so that eps / m stays bit-identical to the rule it replaced.
        """
        rule = self.rules[info.role]
        div = float(info.width_mult ** -rule.eps_exp)
        if info.base.in_block:
            div *= float(info.depth_mult ** -rule.depth_eps_exp)
        return div

    def branch_mult(self, depth_mult: float) -> float:
        """Residual branch multiplier m_L ** branch_exp (1 at the base depth)."""
        return float(depth_mult**self.branch_exp)

    def forward_exp_mult(self, info: ParamInfo) -> float:
        """Width part of the forward multiplier (without the global knob)."""
        return float(info.width_mult ** self.rules[info.role].forward_exp)


def muon_owns(role: Role, ndim: int) -> bool:
    """Whether Muon trains a parameter: the 2-D hidden weights only.

    Muon orthogonalises a matrix update, which the spectral condition (Yang, Simon & Bernstein,
    2023, arXiv 2310.17813) supports for hidden matrices, whose fan_in and fan_out both grow.
    Embeddings, the readout, gains and biases have a finite dimension and keep AdamW with µP's
    Adam rules (as Muon's authors and Moonshot's Moonlight do); hidden tensors of rank > 2
    (conv kernels) are left to AdamW too, with Adam's hidden rule, rather than flattened.
    """
    return role is Role.HIDDEN and ndim == 2


def rule_family_for(family: OptimizerFamily, role: Role, ndim: int) -> OptimizerFamily:
    """The family whose LR row governs one parameter: a Muon family for the parameters Muon
    owns (`muon_owns`), ADAM (AdamW) for the rest of a Muon optimizer, else `family`."""
    if family in MUON_FAMILIES and not muon_owns(role, ndim):
        return OptimizerFamily.ADAM
    return family


_A, _S = OptimizerFamily.ADAM, OptimizerFamily.SGD
_MU, _MR = OptimizerFamily.MUON, OptimizerFamily.MUON_RMS

SP = Parametrization(
    name="sp",
    version="sp-1",
    rules={
        Role.INPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0}),
        # eps scaling (opt-in) divides hidden eps by m in every table, as it always has.
        Role.HIDDEN: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0, _MU: 0.0, _MR: 0.0},
                              eps_exp=-1.0),
        Role.OUTPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 0.0}),
        Role.VECTOR: RoleRule(InitRule.KEEP, 0.0, {_A: 0.0, _S: 0.0}),
    },
    attention_inverse=False,
    summary="standard parametrization: fan-in init, one global LR, 1/sqrt(d_head) attention",
    citation="Yang & Hu, Tensor Programs IV (2021), the 'standard' abc-parametrization",
    label="SP (standard)",
    short_label="SP",
)

MUP = Parametrization(
    name="mup",
    version="mup-table8-1",
    rules={
        # input-like: init constant in width; SGD LR grows with the fan_out mult.
        Role.INPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 1.0}),
        # hidden: fan-in init (std ~ 1/sqrt(m)); Adam LR / m, SGD LR constant; Muon LR constant
        # with the "original" adjustment, / sqrt(m) with "match_rms_adamw" (docs/optimizers.md:
        # the spectral condition |dW| ~ sqrt(fan_out / fan_in) = 1 for a square-growing matrix).
        Role.HIDDEN: RoleRule(InitRule.FAN_IN, 0.0, {_A: -1.0, _S: 0.0, _MU: 0.0, _MR: -0.5},
                              eps_exp=-1.0),
        # readout: base init, input multiplied by alpha_out / m; Adam LR constant, SGD LR * m.
        Role.OUTPUT: RoleRule(InitRule.BASE_FAN_IN, -1.0, {_A: 0.0, _S: 1.0}),
        # vectors: default init; Adam LR constant, SGD LR * m.
        Role.VECTOR: RoleRule(InitRule.KEEP, 0.0, {_A: 0.0, _S: 1.0}),
    },
    attention_inverse=True,
    summary="µP (TP5 Table 8): hidden Adam LR / m, readout input x alpha_out / m, 1/d_head attention",
    citation="Yang et al., Tensor Programs V (2022), Table 8",
    label="µP",
    width_stable=True,
)



_NO_DEPTH_MUON = ("its depth rules are stated for Adam/AdamW only (CompleteP, depth-µP); Muon's "
                  "block LR over depth is not derived here: use parametrization mup for Muon, "
                  "or optimizer adamw or lion")


def _depth_table(name: str, alpha: float, label: str, summary: str,
                 citation: str) -> Parametrization:
    """µP's width rules plus the depth rules of a residual-branch exponent `alpha`.

    With m_L = depth / base depth (counted in residual blocks):
    1. every residual branch: x = x + m_L^(-alpha) * F(norm(x)) (`branch_exp = -alpha`);
    2. hidden weights and vector-like parameters (norm gains, biases) inside the blocks:
       Adam/AdamW LR x m_L^(alpha - 1); init variance has no depth term;
    3. embeddings, the final norm and the readout (outside the blocks): exactly µP;
    4. Adam eps, when eps scaling is on: hidden eps / (m * m_L^alpha) inside the blocks,
       input-like and output eps / m; vectors keep eps;
    5. weight decay follows `mucore.optim` (coupled by default: wd_g = wd / lr_mult, so
       lr_g * wd_g = lr * wd in every group; for hidden weights that is lambda x m_N x
       m_L^(1 - alpha); docs/depth.md compares it with the paper's minimal implementation);
    6. SGD is refused: the papers give Adam rules only, and we have not derived SGD's.
    The width rules are µP's, so the optimum is as width-stable as µP's (Dey et al., 2025).
    """
    depth = {_A: alpha - 1.0}
    return Parametrization(
        name=name,
        version=f"{name}-1",
        rules={
            Role.INPUT: RoleRule(InitRule.FAN_IN, 0.0, {_A: 0.0, _S: 1.0}, eps_exp=-1.0),
            Role.HIDDEN: RoleRule(
                InitRule.FAN_IN, 0.0, {_A: -1.0, _S: 0.0}, depth, eps_exp=-1.0,
                depth_eps_exp=-alpha,
            ),
            Role.OUTPUT: RoleRule(InitRule.BASE_FAN_IN, -1.0, {_A: 0.0, _S: 1.0}, eps_exp=-1.0),
            Role.VECTOR: RoleRule(InitRule.KEEP, 0.0, {_A: 0.0, _S: 1.0}, depth),
        },
        attention_inverse=True,
        summary=summary,
        citation=citation,
        branch_exp=-alpha,
        label=label,
        width_stable=True,
        unsupported={
            _S: "its depth rules are stated for Adam/AdamW only (CompleteP, depth-µP); use "
            "optimizer adam or adamw, or parametrization mup for SGD",
            _MU: _NO_DEPTH_MUON,
            _MR: _NO_DEPTH_MUON,
        },
    )


COMPLETEP = _depth_table(
    "completep",
    1.0,
    "CompleteP",
    "CompleteP (alpha = 1): µP plus residual branches x 1/m_L, block Adam LR unchanged in depth",
    "Dey et al., Don't be lazy: CompleteP enables compute-efficient deep transformers "
    "(2025, arXiv 2505.01618), Table 1",
)

DEPTH_MUP = _depth_table(
    "depth-mup",
    0.5,
    "depth-µP",
    "depth-µP (alpha = 1/2): µP plus residual branches x 1/sqrt(m_L), block Adam LR / sqrt(m_L)",
    "Yang et al., Tensor Programs VI (2023, arXiv 2310.02244); Bordelon et al. (2023, "
    "arXiv 2309.16620)",
)

_REGISTRY: dict[str, Parametrization] = {
    p.name: p for p in (SP, MUP, COMPLETEP, DEPTH_MUP)
}


def register_parametrization(p: Parametrization) -> None:
    """Add a parametrization table (every role needs a rule for Adam and SGD; a Muon rule, on
    the hidden row only, is optional: without it the table refuses Muon)."""
    for role in Role:
        if role not in p.rules:
            raise ValueError(f"parametrization '{p.name}' lacks a rule for role '{role}'")
        missing = [f for f in CORE_FAMILIES if f not in p.rules[role].lr_exp]
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
