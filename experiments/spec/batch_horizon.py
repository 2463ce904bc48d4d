"""A sweep's batch-size and horizon ladders: which (batch size, steps) every run trains at.

A proxy is tuned with a smaller batch and far fewer steps than its target, so a sweep can
measure how the optimal LR moves along those two axes as well (the SDE square-root rule for
Adam, Malladi et al., 2022, predicts LR x sqrt(k) for batch x k at fixed tokens; the rule is
measured here, not assumed). A spec opts in with

    batch_sizes: [8, 16, 32, 64]     # strictly increasing; base_batch_size (default the first)
    horizons: [100, 200, 400, 800]   # strictly increasing; base_horizon (default the first)

Units: a horizon is counted in optimizer steps *at the base batch size* (not tokens: steps are
what the schedule, warm-up and logging count, and a token horizon is steps x batch x seq_len
at the base batch, so nothing is lost). A batch ladder holds the examples (tokens for LM tasks)
seen fixed: a run at batch b and horizon h trains

    steps = h x base_batch_size / b

so the base batch trains exactly h steps and a batch 4x larger trains 4x fewer. A horizon
ladder holds the batch fixed. Without `horizons` the horizon is the spec's `steps`; without
`batch_sizes` the batch is the spec's `batch_size`. Both ladders cross with the width and
depth ladders; runs cover

    widths x depths x batch_sizes x horizons x parametrizations x lrs x seeds x hparam_grid

A spec without these ladders trains, keys and hashes exactly as before they existed.

Warm-up stays in steps on every rung (it is not rescaled with the batch), so every rung must
train longer than it under a schedule that warms up.

Torch-free: the spec and the dashboard form import it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

# A run's steps and batch stay within the spec's own field bounds.
MAX_STEPS = 10_000_000
MAX_BATCH = 1_000_000


class TrainingLadder(Protocol):
    """What the batch/horizon rules read of a sweep (a `SweepSpec` is one)."""

    @property
    def batch_size(self) -> int:
        """The batch size of a sweep without a batch ladder."""
        ...

    @property
    def steps(self) -> int:
        """The run length (at the base batch) of a sweep without a horizon ladder."""
        ...

    @property
    def batch_sizes(self) -> list[int] | None:
        """The batch ladder, or None."""
        ...

    @property
    def base_batch_size(self) -> int | None:
        """The batch the others are measured against (None: the ladder's first rung)."""
        ...

    @property
    def horizons(self) -> list[int] | None:
        """The horizon ladder in steps at the base batch, or None."""
        ...

    @property
    def base_horizon(self) -> int | None:
        """The horizon the others are measured against (None: the ladder's first rung)."""
        ...


@dataclass(frozen=True)
class TrainingRung:
    """One (batch size, horizon) cell of the ladders and what a run there trains.

    Attributes:
        batch_size: examples (sequences for LM tasks) per step.
        steps: optimizer steps: horizon x base batch / batch (the examples seen stay fixed).
        horizon: the horizon rung (steps at the base batch); None without a horizon ladder.
        base_batch_size: the batch ladder's base; None without a batch ladder.
        base_horizon: the horizon ladder's base; None without a horizon ladder.
    """

    batch_size: int
    steps: int
    horizon: int | None = None
    base_batch_size: int | None = None
    base_horizon: int | None = None


def resolved_base_batch(spec: TrainingLadder) -> int:
    """The batch the steps are scaled against: `base_batch_size`, else the ladder's first rung,
    else (no ladder) the spec's `batch_size`."""
    if spec.batch_sizes is None:
        return spec.batch_size
    if spec.base_batch_size is not None:
        return spec.base_batch_size
    return spec.batch_sizes[0]


def resolved_base_horizon(spec: TrainingLadder) -> int:
    """The base horizon: `base_horizon`, else the ladder's first rung, else the spec's `steps`."""
    if spec.horizons is None:
        return spec.steps
    return spec.base_horizon if spec.base_horizon is not None else spec.horizons[0]


def rung_steps(horizon: int, batch_size: int, base_batch: int) -> float:
    """Steps at `batch_size` that see as many examples as `horizon` steps at `base_batch`."""
    return horizon * base_batch / batch_size


def training_rungs(spec: TrainingLadder) -> list[TrainingRung]:
    """Every (batch, horizon) cell, batch-major; one cell (the spec's own) without ladders.

    Assumes a valid spec (`training_problems` empty): steps are exact integers.
    """
    base_b = resolved_base_batch(spec)
    batches = spec.batch_sizes if spec.batch_sizes is not None else [spec.batch_size]
    horizons = spec.horizons if spec.horizons is not None else [spec.steps]
    with_b = spec.batch_sizes is not None
    with_h = spec.horizons is not None
    return [
        TrainingRung(batch_size=b, steps=max(1, round(rung_steps(h, b, base_b))),
                     horizon=h if with_h else None,
                     base_batch_size=base_b if with_b else None,
                     base_horizon=resolved_base_horizon(spec) if with_h else None)
        for b, h in itertools.product(batches, horizons)
    ]


def n_training_rungs(spec: TrainingLadder) -> int:
    """How many (batch, horizon) cells `training_rungs` makes."""
    return len(spec.batch_sizes or [0]) * len(spec.horizons or [0])


def training_problems(spec: TrainingLadder) -> list[tuple[str, str]]:
    """(field, message) for batch/horizon ladders that cannot run; empty when they can.

    Refused: a base without its ladder; a ladder that is empty, out of bounds or not strictly
    increasing; a base that is not on its ladder; a (batch, horizon) cell whose steps at fixed
    examples are not a whole number.
    """
    out = _ladder_problems("batch_sizes", "base_batch_size", spec.batch_sizes,
                           spec.base_batch_size, MAX_BATCH, "[8, 16, 32, 64]")
    out += _ladder_problems("horizons", "base_horizon", spec.horizons, spec.base_horizon,
                            MAX_STEPS, "[100, 200, 400, 800]")
    if out or spec.batch_sizes is None:
        return out
    base_b = resolved_base_batch(spec)
    horizons = spec.horizons if spec.horizons is not None else [spec.steps]
    fix = "every horizon" if spec.horizons is not None else "steps"
    for h, b in itertools.product(horizons, spec.batch_sizes):
        if (h * base_b) % b:
            return [("batch_sizes", f"batch {b} cannot see the examples of {h} "
                     f"steps at base_batch_size {base_b} in whole steps ({h} x {base_b} / {b} = "
                     f"{rung_steps(h, b, base_b):g}): make {fix} a multiple of "
                     f"{_step_multiple(spec.batch_sizes, base_b)}")]
    return out


def _step_multiple(batches: list[int], base_b: int) -> int:
    """The smallest horizon unit that gives every batch whole steps at fixed examples."""
    from math import gcd

    unit = 1
    for b in batches:
        need = b // gcd(b, base_b)  # h x base_b / b is whole iff need divides h
        unit = unit * need // gcd(unit, need)
    return unit


def _ladder_problems(field: str, base_field: str, ladder: list[int] | None, base: int | None,
                     bound: int, example: str) -> list[tuple[str, str]]:
    """One ladder: non-empty, every rung in [1, bound], strictly increasing, base on it."""
    if ladder is None:
        if base is not None:
            return [(base_field, f"{base_field} {base} is set but {field} is not: add a ladder, "
                     f"e.g. {field}: [{base}, {2 * base}], or remove {base_field}")]
        return []
    if not ladder:
        return [(field, f"{field} is empty: give a ladder like {example}, or remove {field}")]
    bad = [v for v in ladder if not 1 <= v <= bound]
    if bad:
        return [(field, f"{field} must be in [1, {bound:,}]: got {bad[0]}; use e.g. {example}")]
    for prev, cur in itertools.pairwise(ladder):
        if cur <= prev:
            return [(field, f"{field} must increase: got {cur} after {prev}; sort the ladder "
                     "and drop repeats")]
    if base is not None and base not in ladder:
        return [(base_field, f"{base_field} {base} is not in {field} {ladder}: add it to the "
                 f"ladder or pick one of them (usually the smallest, {ladder[0]})")]
    return []


def run_length_problems(spec: TrainingLadder, log_every: int, warmup_steps: int,
                        warms_up: bool) -> list[tuple[str, str]]:
    """(field, message) when the shortest run is shorter than a log window or the warm-up.

    Without ladders these are the spec's own `log_every <= steps` and `warmup_steps < steps`
    checks, with their messages unchanged; with a ladder the shortest rung must pass them, and
    the message names the ladder field that made it short.
    """
    rungs = training_rungs(spec)
    short = min(rungs, key=lambda r: r.steps)
    ladder = spec.horizons is not None or spec.batch_sizes is not None
    field = "horizons" if spec.horizons is not None else "batch_sizes"
    where = (f" (the shortest run, at batch {short.batch_size}"
             + ("" if short.horizon is None else f", horizon {short.horizon}") + ")")
    where = where if ladder else ""
    out = []
    if log_every > short.steps:
        out.append(("log_every", f"log_every {log_every} is larger than steps {short.steps}"
                    f"{where}: use log_every <= steps (e.g. "
                    f"{max(1, short.steps // 10)})"))
    if warms_up and warmup_steps >= short.steps:
        if not ladder:
            out.append(("optimizer.warmup_steps", f"optimizer.warmup_steps {warmup_steps} must "
                        f"be < steps {short.steps}"))
        else:
            out.append((field, f"optimizer.warmup_steps {warmup_steps} must be < steps "
                        f"{short.steps}{where}: every run must train past its warm-up; lengthen "
                        f"the shortest {'horizon' if field == 'horizons' else 'run'} or shorten "
                        "the warm-up"))
    return out
