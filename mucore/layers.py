"""Drop-in layers whose forward multipliers µP sets from the width multiplier.

Forward multipliers live on the *module* as plain floats (copied by deepcopy, seen by
torch.compile as constants, restored by `mucore.parametrize` after a state_dict load), never as
attributes bolted onto parameter tensors (lost by compile, FSDP and save/load).

Any module may implement `MuConfigurable.mu_configure(ctx, prefix)`: `mucore.parametrize` calls
it once per module with the width metadata of the whole model, so a module can compute its own
multipliers (the attention scale, for example) from the rules table.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mucore.context import MuContext


@runtime_checkable
class MuConfigurable(Protocol):
    """A module that sets its own width-dependent constants from a `MuContext`."""

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        """Set multipliers for this module; `prefix` is its dotted name ('' for the root)."""
        ...


class Readout(nn.Linear):
    """Output (readout) layer: y = W (x * forward_mult) + b, W of shape (out, in).

    µP (TP5, Table 8 form): forward_mult = alpha_out / m where m is the fan_in width multiplier,
    and W keeps the base model's init std sigma/sqrt(fan_in0). Under SP forward_mult = alpha_out.
    `mucore.parametrize` sets `forward_mult`; a fresh module behaves like nn.Linear.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.forward_mult: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in) -> (..., out)
        return F.linear(x * self.forward_mult, self.weight, self.bias)

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        self.forward_mult = ctx.forward_mult(_join(prefix, "weight"))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, forward_mult={self.forward_mult:g}"


class TiedReadout(nn.Module):
    """Readout that reuses an input embedding's weight: y = (x * forward_mult) @ E^T.

    Tied input/output embeddings put one (vocab, width) tensor E in two roles. TP5 (Yang et al.,
    2022) resolves it by keeping E *input-like* (init constant in width, entries Θ(1); the
    input LR) and applying the output rule's forward multiplier alpha_out / m (Table 8) to the
    readout input, m being E's width multiplier (the readout's fan_in mult), so the logits
    (1/m) sum_i E_vi h_i stay Θ(1) once E and h correlate. Input-like and output weights have
    the same Table 8 LR exponents (Adam 0, SGD +1), so the LR needs no special case. The init
    constant is the output row's (sigma/sqrt(fan_in0), see `mucore.init.init_std`): constant
    in width like any input-like init, and the logits at init are as small as an untied
    readout's. Unlike an untied readout, E cannot start at zero (it is also the embedding), so
    the logits at init shrink like 1/sqrt(m), the µP limit's zero plus finite-width noise.

    The module does not own E: it holds the embedding by reference (a one-element tuple keeps
    nn.Module from registering it twice), so `model.parameters()`, `state_dict()` and every
    mucore table see one tensor, named by the embedding, with the input role and
    `BaseParam.is_tied_readout` set. `mucore.parametrize` sets `forward_mult`
    (`MuSetup.tied_readout_mult`).

    Args:
        embedding: the model's input embedding (vocab, width); it must also be registered
            elsewhere in the model (it is the input layer).
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self._tied: tuple[nn.Embedding] = (embedding,)
        self.forward_mult: float = 1.0

    @property
    def weight(self) -> torch.Tensor:
        """The shared (vocab, width) weight, owned by the embedding."""
        return self._tied[0].weight

    def __setattr__(self, name: str, value: Any) -> None:
        # Libraries that tie weights by assignment (transformers' `tie_weights`:
        # `head.weight = embedding.weight`) may tie again: the same tensor is a no-op, any other
        # would silently untie the readout from its embedding.
        if name == "weight" and "_tied" in self.__dict__:
            if value is self.weight:
                return
            raise AttributeError(
                "a TiedReadout's weight is its embedding's: tie it to another embedding by "
                "building a new TiedReadout(embedding), or use mucore.Readout for an untied head"
            )
        super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., width) -> (..., vocab)
        return F.linear(x * self.forward_mult, self.weight)

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        self.forward_mult = ctx.setup.tied_readout_mult(ctx.name_of(self.weight))

    def extra_repr(self) -> str:
        vocab, width = self.weight.shape
        return f"in_features={width}, out_features={vocab}, tied, forward_mult={self.forward_mult:g}"


class ResidualBranch(nn.Module):
    """Multiplies a residual branch's output by m_L^(-alpha): x = x + branch(F(norm(x))).

    CompleteP (Dey et al., 2025; alpha = 1) and depth-µP (Yang et al., 2023, TP VI; Bordelon
    et al., 2023; alpha = 1/2) scale every residual branch by a power of the depth multiplier
    m_L = blocks / base blocks, so adding blocks keeps the residual stream's updates Θ(1).
    `mucore.parametrize` sets `forward_mult` (`MuSetup.branch_mult`); it is 1 under SP and µP
    and at the base depth, where the module returns its input untouched (bit-identical to a
    model without it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.forward_mult: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Skip the multiply at 1: the same kernels, and bits, as a plain residual.
        return x if self.forward_mult == 1.0 else x * self.forward_mult

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        self.forward_mult = ctx.setup.branch_mult()

    def extra_repr(self) -> str:
        return f"forward_mult={self.forward_mult:g}"


class InputScale(nn.Module):
    """Multiplies its input by alpha_in (the input/embedding multiplier, a global µP knob).

    Place it right after an input-like layer (first Linear, token + position embeddings). Its
    multiplier does not depend on width under either parametrization; it exists so the knob can
    be tuned on the proxy and transferred.
    """

    def __init__(self) -> None:
        super().__init__()
        self.forward_mult: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.forward_mult

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        self.forward_mult = ctx.hparams.input_mult

    def extra_repr(self) -> str:
        return f"forward_mult={self.forward_mult:g}"


def attention_scale(
    d_head: int, base_d_head: int, *, attn_mult: float = 1.0, use_mup: bool = True
) -> float:
    """Scale applied to q.k attention scores.

    TP5, Section 4 / Appendix B: under µP the scores are q.k * alpha_attn / d_head, because q and
    k become correlated during training and their dot product grows like d_head, not
    sqrt(d_head). Taking alpha_attn' = alpha_attn * sqrt(d_head0) makes the base model identical
    to SP's 1/sqrt(d_head). When d_head is fixed and heads are added instead (d_head ==
    base_d_head), both forms equal alpha_attn / sqrt(d_head), which stays correct.

    Args:
        d_head: head dimension of this model.
        base_d_head: head dimension of the base (proxy) model.
        attn_mult: the global attention multiplier alpha_attn.
        use_mup: True for the 1/d_head rule, False for SP's 1/sqrt(d_head).
    """
    if d_head <= 0 or base_d_head <= 0:
        raise ValueError(f"head dims must be positive, got d_head={d_head}, base={base_d_head}")
    if not use_mup or d_head == base_d_head:
        # Fixed head dim (or SP): the exact 1/sqrt(d_head) form, bit-equal to SP at any width.
        return attn_mult / math.sqrt(d_head)
    return attn_mult * math.sqrt(base_d_head) / d_head


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
