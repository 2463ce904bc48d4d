"""Global µP knobs that a user tunes on the narrow proxy and copies to the wide target.

Tensor Programs V (Yang et al., 2022), Section 6 / Appendix F: besides the learning rate, the
transferable global HPs are the init scale sigma, the output multiplier alpha_out, the attention
multiplier alpha_attn and the input (embedding) multiplier alpha_in. Under µP their optimal values
stay put as width grows, so they live in one small record that travels with the HP bundle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, kw_only=True)
class HParams:
    """Width-independent global hyperparameters.

    Attributes:
        init_std: sigma, the global init scale; every weight std is sigma times its role's rule.
        output_mult: alpha_out, multiplies the readout input (µP divides it by the width mult).
        attn_mult: alpha_attn, multiplies attention scores on top of the 1/d_head (or
            1/sqrt(d_head)) rule.
        input_mult: alpha_in, multiplies the output of input-like layers (embeddings, first layer).
        zero_readout: initialise the readout weight to zero (TP5 recommends it: the network
            output is exactly width-independent at init).
        zero_query: initialise the attention query projection to zero (TP5, Appendix D.2).
    """

    init_std: float = 1.0
    output_mult: float = 1.0
    attn_mult: float = 1.0
    input_mult: float = 1.0
    zero_readout: bool = False
    zero_query: bool = False

    def __post_init__(self) -> None:
        for name in KNOB_NAMES:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"HParams.{name} must be a finite number > 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, used by HP bundles."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HParams:
        """Inverse of `to_dict`; unknown keys are refused so a typo never passes silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown HParams keys {unknown}; known keys are {sorted(known)}")
        return cls(**data)


# The sweepable global knobs: the numeric fields above, in declaration order (the zero-init
# flags are switches, not scales). Adding a float field to HParams adds a knob everywhere: the
# spec's hparam_grid, the store's run columns, the analysis and the bundle derive from this.
KNOB_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HParams) if f.type in ("float", float))
