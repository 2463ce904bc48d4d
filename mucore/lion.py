"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", arXiv 2302.06675).

One step per parameter, with momentum m, gradient g, betas (b1, b2), LR lr and decay wd:

    p <- p * (1 - lr * wd)                       (decoupled weight decay, as AdamW's)
    p <- p - lr * sign(b1 * m + (1 - b1) * g)    (the update: every entry is +-lr, or 0)
    m <- b2 * m + (1 - b2) * g

The update is a sign, entry-wise +-1 like Adam's normalised update, so µP's Adam rules apply
unchanged (TP5, Yang et al., 2022, Table 8: hidden LR / m; the spectral condition of Yang,
Simon & Bernstein, 2023: a sign matrix of a low-rank momentum has spectral norm ~ fan, so LR / m
keeps |dW| width-constant). Its LR is typically 3-10x smaller than AdamW's and its weight decay
3-10x larger (the paper's advice). Written here (a dozen lines) rather than taken from a
package: mucore depends on torch only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class Lion(torch.optim.Optimizer):
    """The Lion optimizer (see the module docstring).

    Args:
        params: parameters or param groups (`mucore.param_groups(..., "lion", lr)`).
        lr: learning rate.
        betas: (b1, b2): b1 interpolates the update's sign, b2 the momentum (paper: 0.9, 0.99).
        weight_decay: decoupled decay; the per-step shrink is lr * weight_decay.

    Raises:
        ValueError: a non-positive LR, betas outside [0, 1) or a negative weight decay.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
        if not lr > 0.0:
            raise ValueError(f"Lion: lr must be > 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lion: betas must each be in [0, 1), got {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"Lion: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas),
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Lion step over every parameter with a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault(
                    "exp_avg", torch.zeros_like(p, memory_format=torch.preserve_format))
                if wd:
                    p.mul_(1.0 - lr * wd)
                p.add_(torch.lerp(p.grad, momentum, b1).sign_(), alpha=-lr)
                momentum.lerp_(p.grad, 1.0 - b2)
        return loss
