"""A tiny all-MLP image classifier (MLP-Mixer style), written as a user's registered model.

Put this folder in the setting `MUTRANSFER_MODEL_DIRS` and the model is called `tiny_mixer`:

    MUTRANSFER_MODEL_DIRS=examples/models python -m experiments models
    # spec: model: {kind: custom, name: tiny_mixer, options: {depth: 3}}

It needs only torch and mucore. What makes it µP-ready: every hidden size is `width` (so µP
can see which dimensions grow), and the output layer is `mucore.Readout` (so µP can scale it).

Patches (p x p pixels) are embedded to `width` channels, then `depth` blocks each mix the
patches (average pooling, as in PoolFormer, Yu et al., 2022: no weights, so nothing to
parametrize) and the channels (a width -> 2 width -> width MLP), both residual.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

import mucore

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class MixerBlock(nn.Module):
    """Patch mixing (mean over patches) then channel mixing (an MLP), each pre-norm, residual."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), ACTIVATIONS[activation](), nn.Linear(2 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, P, width)
        y = self.norm1(x)
        x = x + y.mean(dim=1, keepdim=True) - y  # each patch moves toward the patches' mean
        return x + self.mlp(self.norm2(x))


class TinyMixer(nn.Module):
    """Patch embedding -> alpha_in -> depth x MixerBlock -> norm -> mean over patches -> readout."""

    def __init__(self, channels: int, n_classes: int, width: int, depth: int, patch: int,
                 activation: str) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, width, kernel_size=patch, stride=patch)  # input-like
        self.input_scale = mucore.InputScale()
        self.blocks = nn.ModuleList(MixerBlock(width, activation) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = mucore.Readout(width, n_classes)  # the readout µP scales by 1/width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes)
        x = self.input_scale(self.embed(x))  # (B, width, H/p, W/p)
        x = x.flatten(2).transpose(1, 2)  # (B, P, width)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def build(
    width: int,
    *,
    task,  # experiments' TaskInfo: input_shape (C, H, W), n_outputs, kind
    depth: int = 2,
    patch: int = 2,
    activation: Literal["gelu", "relu"] = "gelu",
) -> nn.Module:
    """A TinyMixer of hidden size `width` for an image classification task.

    Args:
        depth: mixer blocks (each one width -> 2 width -> width channel MLP).
        patch: patch side in pixels; must divide the image's height and width.
        activation: nonlinearity of the channel MLPs.
    """
    if task.kind != "classification" or len(task.input_shape) != 3:
        raise ValueError(f"tiny_mixer classifies images, but task '{task.name}' has inputs "
                         f"{task.input_shape}: use task digits or synthetic")
    channels, height, width_px = task.input_shape
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if patch < 1 or height % patch or width_px % patch:
        raise ValueError(f"patch {patch} must divide the {height}x{width_px} images")
    return TinyMixer(channels, task.n_outputs, width, depth, patch, activation)
