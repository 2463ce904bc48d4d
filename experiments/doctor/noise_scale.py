"""The critical batch meter: the gradient noise scale B_simple = tr(Sigma) / |G|^2.

McCandlish et al. (2018, "An empirical model of large-batch training", arXiv 1812.06162,
appendix A): the squared norm of a mini-batch gradient of size B is, in expectation,

    E |G_B|^2 = |G|^2 + tr(Sigma) / B

(G the true gradient, Sigma the per-example gradient covariance). Two batch sizes
B_small < B_big give unbiased estimates of both terms:

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / B_small - 1 / B_big)

and B_simple = tr(Sigma) / |G|^2 is the batch size past which a larger batch stops buying
proportionally fewer steps. Each estimate is noisy (a single pair can even make |G|^2
negative), so the meter averages both terms over every measurement so far before taking the
ratio (the paper averages too, with a moving average; a plain mean keeps the few log points
of a short proxy run from being dominated by the last one). Above B_simple the SDE
square-root rule for Adam stops holding (Malladi et al., 2022; Li et al., 2024), so a proxy
trained above it should not lean on the rule (`noise_scale_warning`).

The training loop measures at its log points from the step's own batch: the full batch's
gradient is the one the step just computed, the small one is the gradient of its first
B_small examples (one extra forward and backward on a slice; no batch is drawn, so the batch
stream, and the run's losses, are unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

# The warning is torch-free (the dashboard reads it); kept importable from here for callers.
from experiments.doctor.critical_batch import noise_scale_warning  # noqa: F401


@dataclass(frozen=True)
class NoiseScale:
    """Estimates of |G|^2 and tr(Sigma), and their ratio B_simple."""

    grad_sq: float
    trace_sigma: float

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2; inf when the |G|^2 estimate is not positive (pure noise), NaN
        when there is no estimate."""
        if math.isnan(self.grad_sq) or math.isnan(self.trace_sigma):
            return math.nan
        return self.trace_sigma / self.grad_sq if self.grad_sq > 0 else math.inf


def noise_scale_from_norms(sq_small: float, b_small: int, sq_big: float,
                           b_big: int) -> NoiseScale:
    """The unbiased |G|^2 and tr(Sigma) estimates from squared gradient norms at two batch
    sizes (module docstring).

    Raises:
        ValueError: b_small is not smaller than b_big, or below 1.
    """
    if not 1 <= b_small < b_big:
        raise ValueError(f"noise scale needs 1 <= b_small < b_big, got {b_small} and {b_big}")
    grad_sq = (b_big * sq_big - b_small * sq_small) / (b_big - b_small)
    trace = (sq_small - sq_big) / (1.0 / b_small - 1.0 / b_big)
    return NoiseScale(grad_sq=grad_sq, trace_sigma=trace)


def squared_norm(grads: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Sum of squared entries over all gradients, in fp32, on the device (no host sync)."""
    total = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    return torch.stack(total).sum()


def small_batch_size(batch_size: int) -> int:
    """B_small for a step of `batch_size` examples: a quarter of it, at least 1."""
    return max(1, batch_size // 4)


def gradient_sq_norms(loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      params: Sequence[torch.nn.Parameter], x: torch.Tensor,
                      y: torch.Tensor, b_small: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(|G_small|^2, |G_big|^2) of the mean loss on the first `b_small` examples and on all of
    (x, y), as device tensors. Uses `torch.autograd.grad`, so `.grad` is left untouched.

    Args:
        loss_of: the mean loss of a batch, `loss_of(x, y)`.
        params: the parameters the gradient is taken over.
        x, y: one batch (B_big = len(x)).
        b_small: the small batch, 1 <= b_small < len(x).
    """
    big = torch.autograd.grad(loss_of(x, y), list(params), allow_unused=True)
    small = torch.autograd.grad(loss_of(x[:b_small], y[:b_small]), list(params),
                                allow_unused=True)
    return squared_norm(small), squared_norm(big)


class NoiseScaleMeter:
    """Running means of the |G|^2 and tr(Sigma) estimates, kept on the device."""

    def __init__(self, b_small: int, b_big: int) -> None:
        if not 1 <= b_small < b_big:
            raise ValueError(f"noise scale needs 1 <= b_small < b_big, got {b_small} and "
                             f"{b_big}: use a batch_size of at least 2")
        self.b_small, self.b_big = b_small, b_big
        self._grad_sq: torch.Tensor | float = 0.0
        self._trace: torch.Tensor | float = 0.0
        self._count = 0

    def add(self, sq_small: torch.Tensor, sq_big: torch.Tensor) -> None:
        """Fold one pair of squared norms into the sums (tensor arithmetic only)."""
        b_s, b_b = self.b_small, self.b_big
        self._grad_sq = self._grad_sq + (b_b * sq_big - b_s * sq_small) / (b_b - b_s)
        self._trace = self._trace + (sq_small - sq_big) / (1.0 / b_s - 1.0 / b_b)
        self._count += 1

    def estimate(self) -> NoiseScale:
        """The means so far (one host sync); NaNs before any measurement."""
        if self._count == 0:
            return NoiseScale(math.nan, math.nan)
        return NoiseScale(grad_sq=float(self._grad_sq) / self._count,
                          trace_sigma=float(self._trace) / self._count)
