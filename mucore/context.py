"""The result of parametrizing a model: name-keyed metadata plus the rules that produced it.

`MuSetup` is what optimizers, describe tables and bundles consume. It holds no tensors and no
module references, so it can be deep-copied, pickled to a worker, or rebuilt from JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mucore.hparams import HParams
from mucore.parametrizations import Parametrization, get_parametrization
from mucore.roles import BaseShapes, ParamInfo, Role, canonical_name

if TYPE_CHECKING:  # pragma: no cover - typing only
    from torch import Tensor


@dataclass
class MuSetup:
    """Name-keyed µP metadata of one concrete model.

    Attributes:
        info: canonical parameter name -> `ParamInfo` (shape, role, multipliers).
        parametrization: the rules table in force.
        hparams: the global knobs in force.
        base_shapes: the base shapes the model was measured against.
    """

    info: dict[str, ParamInfo]
    parametrization: Parametrization
    hparams: HParams
    base_shapes: BaseShapes

    def param(self, name: str) -> ParamInfo:
        """Metadata of one parameter by (possibly compile-prefixed) name."""
        key = canonical_name(name)
        if key not in self.info:
            raise KeyError(
                f"no µP metadata for parameter '{key}': was the model built by the same factory "
                "as the base shapes, and parametrized with mucore.parametrize?"
            )
        return self.info[key]

    def forward_mult(self, name: str) -> float:
        """Forward multiplier for the layer owning parameter `name`.

        output: alpha_out * m**forward_exp (µP: alpha_out / m); input: alpha_in * m**exp;
        hidden and vector: m**exp (1 in both built-in tables).
        """
        p = self.param(name)
        width_part = self.parametrization.forward_exp_mult(p)
        if p.role is Role.OUTPUT:
            return self.hparams.output_mult * width_part
        if p.role is Role.INPUT:
            return self.hparams.input_mult * width_part
        return width_part

    @property
    def depth_mult(self) -> float:
        """m_L: this model's residual blocks over the base model's (1 without depth info)."""
        return next((p.depth_mult for p in self.info.values()), 1.0)

    def branch_mult(self) -> float:
        """Multiplier of every residual branch output: m_L ** branch_exp (CompleteP: 1/m_L,
        depth-µP: 1/sqrt(m_L), SP and µP: 1)."""
        return self.parametrization.branch_mult(self.depth_mult)

    def tied_readout_mult(self, name: str) -> float:
        """Forward multiplier of a readout that reuses input-like weight `name` (tied embeddings).

        TP5 (Yang et al., 2022), weight tying: the shared weight keeps its input-like rules and
        the readout applies the *output* rule's forward multiplier, alpha_out * m**forward_exp
        (µP: alpha_out / m; SP: alpha_out), m being the width mult of the shared weight's
        width-like dim, which is the readout's fan_in mult.

        Raises:
            ValueError: `name` is not input-like (a tied readout must reuse an embedding).
        """
        p = self.param(name)
        if p.role is not Role.INPUT:
            raise ValueError(
                f"a tied readout reuses '{p.name}', whose role is {p.role.value}: tie the readout "
                "to an nn.Embedding laid out (vocab, width), which mucore treats as input-like"
            )
        exp = self.parametrization.rule(Role.OUTPUT).forward_exp
        return self.hparams.output_mult * float(p.width_mult**exp)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: enough to rebuild this setup for a model of the same family."""
        return {
            "parametrization": self.parametrization.name,
            "rules_version": self.parametrization.version,
            "hparams": self.hparams.to_dict(),
            "base_shapes": self.base_shapes.to_dict(),
        }


@dataclass
class MuContext:
    """What `mu_configure` hooks see while `mucore.parametrize` runs.

    Modules read multipliers from it and may ask for rows of a parameter to be zeroed at init
    (the zero-query option of a fused q/k/v projection).
    """

    setup: MuSetup
    zero_rows: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  # id(parameter) -> canonical name

    @property
    def hparams(self) -> HParams:
        return self.setup.hparams

    @property
    def parametrization(self) -> Parametrization:
        return self.setup.parametrization

    def param(self, name: str) -> ParamInfo:
        return self.setup.param(name)

    def forward_mult(self, name: str) -> float:
        return self.setup.forward_mult(name)

    def request_zero_init(self, name: str, rows: tuple[int, int] | None = None) -> None:
        """Ask for `name` (or its rows [start, stop)) to be initialised to zero."""
        self.zero_rows[canonical_name(name)] = rows

    def name_of(self, tensor: Tensor) -> str:
        """Canonical name of a parameter of the model being parametrized, found by identity.

        For modules that borrow a parameter they do not own (`TiedReadout`): they know the
        tensor, not the name its owner registered it under.

        Raises:
            KeyError: the tensor is not a parameter of the model.
        """
        try:
            return self.names[id(tensor)]
        except KeyError:
            raise KeyError(
                "the tensor is not a parameter of the model being parametrized: a tied readout "
                "must reuse the weight of an embedding registered in the same model"
            ) from None


def make_setup(
    info: dict[str, ParamInfo],
    parametrization: str | Parametrization,
    hparams: HParams,
    base_shapes: BaseShapes,
) -> MuSetup:
    """Assemble a `MuSetup` (mostly for `parametrize` and bundle loading)."""
    return MuSetup(info, get_parametrization(parametrization), hparams, base_shapes)
