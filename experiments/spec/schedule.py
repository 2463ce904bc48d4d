"""The LR schedule's checks: warm-up and decay must fit in the run's horizon.

Schedules (the spec's `optimizer.schedule`, built by `experiments.train`): `constant`; `cosine`,
linear warm-up then cosine decay to zero (`mucore.warmup_cosine`); `wsd`, warmup-stable-decay,
linear warm-up, the full LR, then a linear decay to zero over the last `decay_fraction` of the
steps (`mucore.warmup_stable_decay`; Hägele et al., 2024, arXiv 2405.18392). WSD does not fix
the horizon in advance: runs of different lengths share everything up to their decay.

Torch-free: the spec imports it; a horizon ladder can call `schedule_problems` per rung.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.spec.run import OptimizerConfig


def wsd_decay_steps(decay_fraction: float, steps: int) -> int:
    """Steps the wsd schedule decays over: round(decay_fraction x steps), at least 1 (the same
    count `mucore.warmup_stable_decay` uses)."""
    return max(1, round(decay_fraction * steps))


def schedule_problems(optimizer: OptimizerConfig, steps: int,
                      steps_field: str = "steps") -> list[tuple[str, str]]:
    """(field, message) for a schedule that does not fit in `steps`; empty when it does.

    Refused: a warm-up of cosine or wsd that is not shorter than the horizon (named at
    `optimizer.warmup_steps`); a wsd warm-up that runs into its decay (named at
    `optimizer.decay_fraction`). `steps_field` names the horizon in messages (a ladder rung).
    """
    warmup = optimizer.warmup_steps
    if optimizer.schedule == "constant":
        return []
    if warmup >= steps:
        return [("optimizer.warmup_steps", f"optimizer.warmup_steps {warmup} must be < "
                 f"{steps_field} {steps}: the horizon is shorter than the warm-up")]
    if optimizer.schedule != "wsd":
        return []
    fraction = optimizer.resolved_decay_fraction()
    decay = wsd_decay_steps(fraction, steps)
    if warmup + decay > steps:
        return [("optimizer.decay_fraction", f"optimizer.decay_fraction {fraction:g} decays over "
                 f"the last {decay} of {steps_field} {steps} steps, which overlaps the "
                 f"{warmup} warm-up steps: use decay_fraction <= "
                 f"{(steps - warmup) / steps:.3g} or fewer warmup_steps")]
    return []
