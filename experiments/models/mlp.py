"""A plain MLP classifier: the smallest model with all three µP weight roles.

TP5 (Yang et al., 2022), Section 3: the first Linear is input-like (finite fan_in), the
width x width Linears are hidden, the head is the readout. mucore finds these roles by comparing
two widths; this module only keeps names and layout identical at every width.
"""

from __future__ import annotations

from torch import Tensor, nn

from mucore import InputScale, Readout

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Flatten -> Linear(in, w) -> InputScale -> act -> (depth-1) x [Linear(w, w) -> act] -> Readout.

    Args:
        in_features: flattened input size (C * H * W).
        n_classes: readout size.
        width: hidden width (the µP width).
        depth: number of hidden layers (>= 1).
        activation: "relu", "tanh" or "gelu".
        bias: biases on every Linear (the readout always has one).
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        width: int,
        depth: int = 2,
        activation: str = "relu",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLP depth must be >= 1, got {depth}")
        act = _ACTIVATIONS[activation]
        self.input = nn.Linear(in_features, width, bias=bias)  # input-like
        self.input_scale = InputScale()
        self.input_act = act()
        self.hidden = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(depth - 1))
        self.hidden_acts = nn.ModuleList(act() for _ in range(depth - 1))
        self.readout = Readout(width, n_classes)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, C, H, W) or (B, D) -> (B, n_classes)
        h = self.input_act(self.input_scale(self.input(x.flatten(1))))  # (B, w)
        for layer, act in zip(self.hidden, self.hidden_acts, strict=True):
            h = act(layer(h))  # (B, w)
        return self.readout(h)  # (B, n_classes)
