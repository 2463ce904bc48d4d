"""The describe table: one row per parameter with its role, multipliers, init and LR.

This is the µP inspector: what `mucore.parametrize` and `build_optimizer` do to each parameter,
relative to the global HPs (TP5, Table 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mucore.context import MuSetup
from mucore.init import init_std
from mucore.optimizers import settings_family
from mucore.parametrizations import MUON_FAMILIES, muon_owns


@dataclass(frozen=True)
class DescribeRow:
    """One parameter's µP facts.

    Every HP bundle's param table is these rows plus an absolute LR
    (`experiments.bundle.build.ParamRow` derives from this class): a field added here is exported
    with no other edit, and changes the bundle schema (bump `mucore.bundle.SCHEMA_VERSION`).

    Attributes:
        name: canonical parameter name.
        shape: its shape at this width.
        role: input / hidden / output / vector.
        width_mult: the multiplier m its role uses.
        fan_in_mult: fan_in / fan_in0.
        fan_out_mult: fan_out / fan_out0.
        init: "normal" (drawn by mucore), "zeros" (a zero-initialised readout or query rows)
            or "own": `mucore.parametrize` keeps the model's own values (vector-like
            parameters: gains, biases, tokens, position tables; TP5's "as in the base model").
            Bundles exported before read "zeros" / "ones" there.
        init_std: std of the normal draw (0 for "zeros" and "own").
        forward_mult: multiplier applied in the forward pass by the owning layer.
        lr_mult: effective LR relative to the global LR for the chosen optimizer (width and
            depth parts together).
        depth_mult: m_L (blocks / base blocks) for a parameter of a repeated residual block;
            None outside the blocks or when the base shapes know no depth.
        branch_mult: the multiplier m_L^(-alpha) its block's residual branch output gets;
            None where `depth_mult` is None. Both are left out of bundles when None, so
            bundles of width-only models keep their bytes.
        update: under `muon`, which optimizer trains the parameter: "muon" (the 2-D hidden
            weights) or "adamw" (the rest); None (left out of dicts and bundles) otherwise.
    """

    name: str
    shape: list[int]
    role: str
    width_mult: float
    fan_in_mult: float
    fan_out_mult: float
    init: str
    init_std: float
    forward_mult: float
    lr_mult: float
    depth_mult: float | None = None
    branch_mult: float | None = None
    update: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict, fields in declaration order; the depth fields only when set
        (describe tables of width-only models keep their keys)."""
        return {k: v for k, v in asdict(self).items()
                if not (k in OPTIONAL_FIELDS and v is None)}


# `DescribeRow.init` of a parameter that keeps the model's own init.
OWN_INIT = "own"

# The fields that only depth-aware setups fill (left out of dicts and bundles when None).
DEPTH_FIELDS = ("depth_mult", "branch_mult")
# The fields left out of dicts and bundles when None (bundles of other models keep their bytes).
OPTIONAL_FIELDS = (*DEPTH_FIELDS, "update")


def describe(setup: MuSetup, optimizer: str = "adam",
             settings: Mapping[str, Any] | None = None) -> list[DescribeRow]:
    """Rows for every parameter of the model that `setup` was made for, in model order.

    `settings`: the optimizer's settings, of which Muon's `adjust_lr_fn` and
    `hidden_lr_correction` change the hidden LR rule (`mucore.settings_family`).
    """
    family = settings_family(optimizer, settings or {})
    rows = []
    for name, info in setup.info.items():
        in_block = info.base.in_block and setup.base_shapes.base_depth is not None
        std = init_std(info, setup)
        if std is None:
            init = OWN_INIT  # parametrize left the model's own values (vector-like)
            std_value = 0.0
        else:
            init = "zeros" if std == 0.0 else "normal"
            std_value = std
        rows.append(
            DescribeRow(
                name=name,
                shape=list(info.shape),
                role=info.role.value,
                width_mult=info.width_mult,
                fan_in_mult=info.fan_in_mult,
                fan_out_mult=info.fan_out_mult,
                init=init,
                init_std=std_value,
                forward_mult=setup.forward_mult(name),
                lr_mult=setup.parametrization.lr_mult(info, family),
                depth_mult=info.depth_mult if in_block else None,
                branch_mult=setup.branch_mult() if in_block else None,
                update=(("muon" if muon_owns(info.role, len(info.shape)) else "adamw")
                        if family in MUON_FAMILIES else None),
            )
        )
    return rows

