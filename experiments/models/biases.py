"""The zoo's own bias init: zero.

TP5 (Yang et al., 2022), Table 8: a bias is vector-like, and µP's rule for it is "as the base
model has it", so `mucore.parametrize` keeps whatever the model initialised. The zoo's models
start their biases at zero (the reference package's examples do the same), rather than torch's
default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), whose scale would depend on the width.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def zero_biases(model: nn.Module) -> None:
    """Set every parameter named `bias` of `model`'s layers to zero (norm shifts included,
    which torch already starts at zero)."""
    for name, p in model.named_parameters():
        if name == "bias" or name.endswith(".bias"):
            p.zero_()
