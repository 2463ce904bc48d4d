"""A plain MLP classifier: the smallest model with all three µP weight roles.

TP5 (Yang et al., 2022), Section 3: the first Linear is input-like (finite fan_in), the
width x width Linears are hidden, the head is the readout. mucore finds these roles by comparing
two widths; this module only keeps names and layout identical at every width.
"""

from __future__ import annotations

from torch import Tensor, nn

from experiments.models.biases import zero_biases
from mucore import InputScale, Readout, ResidualBranch

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class ResidualMLPBlock(nn.Module):
    """Pre-LN residual block: h + b * Linear(act(LN(h))), b the branch multiplier m_L^(-alpha).

    The cheapest residual network on which the depth rules (CompleteP, depth-µP) can be seen:
    one hidden (width x width) matrix per block, a vector-like LN gain and bias.
    """

    def __init__(self, width: int, activation: str, bias: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.act = _ACTIVATIONS[activation]()
        self.fc = nn.Linear(width, width, bias=bias)  # hidden
        self.branch = ResidualBranch()

    def forward(self, h: Tensor) -> Tensor:  # (B, w) -> (B, w)
        return h + self.branch(self.fc(self.act(self.norm(h))))


class MLP(nn.Module):
    """Flatten -> Linear(in, w) -> InputScale -> act -> (depth-1) x [Linear(w, w) -> act] -> Readout.

    With `residual`: Flatten -> Linear(in, w) -> InputScale -> (depth-1) x ResidualMLPBlock
    -> LN -> Readout, a pre-LN residual stack like a transformer's (blocks in `self.blocks`).

    Args:
        in_features: flattened input size (C * H * W).
        n_classes: readout size.
        width: hidden width (the µP width).
        depth: number of hidden layers (>= 1); with `residual`, depth - 1 residual blocks.
        activation: "relu", "tanh" or "gelu".
        bias: biases on every Linear (the readout always has one).
        residual: the residual variant.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        width: int,
        depth: int = 2,
        activation: str = "relu",
        bias: bool = True,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLP depth must be >= 1, got {depth}")
        act = _ACTIVATIONS[activation]
        self.residual = residual
        self.input = nn.Linear(in_features, width, bias=bias)  # input-like
        self.input_scale = InputScale()
        if residual:
            self.blocks = nn.ModuleList(
                ResidualMLPBlock(width, activation, bias) for _ in range(depth - 1)
            )
            self.final_norm = nn.LayerNorm(width)
            self.readout = Readout(width, n_classes)
            zero_biases(self)  # the zoo starts biases at zero; parametrize keeps them
            return
        self.input_act = act()
        self.hidden = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(depth - 1))
        self.hidden_acts = nn.ModuleList(act() for _ in range(depth - 1))
        self.readout = Readout(width, n_classes)
        zero_biases(self)  # the zoo starts biases at zero; parametrize keeps them

    def forward(self, x: Tensor) -> Tensor:  # x: (B, C, H, W) or (B, D) -> (B, n_classes)
        if self.residual:
            h = self.input_scale(self.input(x.flatten(1)))  # (B, w)
            for block in self.blocks:
                h = block(h)  # (B, w)
            return self.readout(self.final_norm(h))  # (B, n_classes)
        h = self.input_act(self.input_scale(self.input(x.flatten(1))))  # (B, w)
        for layer, act in zip(self.hidden, self.hidden_acts, strict=True):
            h = act(layer(h))  # (B, w)
        return self.readout(h)  # (B, n_classes)
