"""A small all-3x3 CNN for tiny images (8x8 digits), ready for µP.

Roles mucore infers: the stem conv (C_in -> width) is input-like, the width -> width convs are
hidden (fan_in = width * 3 * 3 grows with width), the readout is the output, norm gains/biases
and conv biases are vectors. Spatial size is kept (no striding): 8x8 inputs leave no room.

Normalisation: GroupNorm with a fixed number of groups (or one group, "layer"). Unlike
BatchNorm it is per-sample and identical in train and eval mode, so a run's val loss does not
depend on batch composition and models need no running statistics; with a fixed group count the
channels per group grow with width, so the statistics average over more channels as the model
widens, which is the behaviour µP's infinite-width limit assumes of a LayerNorm.
"""

from __future__ import annotations

from torch import Tensor, nn

from experiments.models.biases import zero_biases
from mucore import InputScale, Readout


def make_norm(norm: str, width: int, groups: int) -> nn.Module:
    """The normalisation layer of `CNNConfig.norm` for `width` channels."""
    if norm == "group":
        return nn.GroupNorm(groups, width)
    if norm == "layer":
        return nn.GroupNorm(1, width)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}: use 'group', 'layer' or 'none'")


class ConvUnit(nn.Module):
    """Conv2d(3x3, same padding) -> norm -> ReLU; the conv has a bias only without a norm."""

    def __init__(self, c_in: int, c_out: int, norm: str, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none")
        self.norm = make_norm(norm, c_out, groups)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:  # (B, c_in, H, W) -> (B, c_out, H, W)
        return self.act(self.norm(self.conv(x)))


class CNN(nn.Module):
    """stem conv -> InputScale -> norm -> ReLU -> stages x ConvUnit -> global avg pool -> Readout.

    With a norm right after the stem, alpha_in (InputScale) cancels out except through the
    norm's eps; it is kept so every zoo model exposes the same knob.

    Args:
        in_channels: image channels C.
        n_classes: readout size.
        width: channels of every conv (the µP width).
        stages: width x width conv units after the stem.
        norm: "group", "layer" or "none".
        groups: GroupNorm groups for norm "group" (must divide width).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        width: int,
        stages: int = 2,
        norm: str = "group",
        groups: int = 4,
    ) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=norm == "none")  # input-like
        self.input_scale = InputScale()
        self.stem_norm = make_norm(norm, width, groups)
        self.stem_act = nn.ReLU()
        self.stages = nn.ModuleList(ConvUnit(width, width, norm, groups) for _ in range(stages))
        self.readout = Readout(width, n_classes)
        zero_biases(self)  # the zoo starts biases at zero; parametrize keeps them

    def forward(self, x: Tensor) -> Tensor:  # x: (B, C, H, W) -> (B, n_classes)
        h = self.stem_act(self.stem_norm(self.input_scale(self.stem(x))))  # (B, w, H, W)
        for unit in self.stages:
            h = unit(h)  # (B, w, H, W)
        return self.readout(h.mean(dim=(2, 3)))  # pool (B, w) -> (B, n_classes)
