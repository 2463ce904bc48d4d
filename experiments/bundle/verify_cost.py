"""What a verification will cost before it is launched: runs, steps, FLOPs, time, memory.

A verification (`experiments.bundle.verify`) trains the target width once per bracket point
(2 x bracket + 1) and SP baseline, per seed, for the sweep's steps. Its cost is the sweep
estimate (`experiments.spec.estimate.estimate`) of a one-width plan with that many runs. The
FLOP model's time is rough; where the sweep already trained its widest width, the estimate is
scaled by how long those runs really took against what the same model predicted for them
(`calibrated`), so the number shown matches this machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from experiments.bundle.build import HPBundle
    from experiments.models.configs import ModelConfig
    from experiments.spec.estimate import SweepEstimate
    from experiments.tasks.config import TaskConfig


@dataclass(frozen=True)
class _OneWidthPlan:
    """A `PlannedSweep` of `runs` runs of one model at one width (the verification's)."""

    model: ModelConfig
    task: TaskConfig
    batch_size: int
    widths: list[int]
    steps: int
    device: str
    runs: int
    depths: list[int] | None = None
    base_depth: int | None = None
    batch_sizes: list[int] | None = None
    base_batch_size: int | None = None
    horizons: list[int] | None = None
    base_horizon: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    parametrizations: list[str] = field(default_factory=lambda: ["mup"])

    def n_runs(self) -> int:
        """Runs of the plan."""
        return self.runs

    def log2_lrs(self) -> list[float]:
        """One LR: a verification is not a grid (the estimate's verdict reach is not read)."""
        return [0.0]


@dataclass(frozen=True)
class VerifyEstimate:
    """What launching a verification costs.

    Attributes:
        runs: runs it trains (points x seeds).
        points: bracket points plus the SP baseline.
        seeds: seeds per point.
        steps: steps per run.
        total_flops: training FLOPs over all runs (rough).
        peak_memory_bytes: one target run's estimated peak memory.
        est_compute_s: expected wall time, one run after the other.
        calibrated: whether `est_compute_s` was scaled by the sweep's measured run times.
        device: "cpu" or "cuda", the device type the time assumes.
        baseline: whether the SP baseline is one of the points.
    """

    runs: int
    points: int
    seeds: int
    steps: int
    total_flops: float
    peak_memory_bytes: int
    est_compute_s: float
    calibrated: bool
    device: str
    baseline: bool = False


def _plan(bundle: HPBundle, width: int, runs: int) -> _OneWidthPlan:
    spec = bundle.spec
    return _OneWidthPlan(
        model=bundle.model_config_obj(), task=bundle.task_config(),
        batch_size=int(spec.get("batch_size", 64)), widths=[width],
        steps=int(spec.get("steps", 300)), device=str(spec.get("device", "auto")), runs=runs,
    )


def _measured_scale(bundle: HPBundle, runs: pd.DataFrame | None) -> float | None:
    """Measured over predicted seconds per run at the sweep's widest trained width (None: no
    finished run there to measure)."""
    from experiments.spec.estimate import estimate

    if runs is None or runs.empty or "wall_s" not in runs:
        return None
    done = runs[(runs["state"] == "done") & runs["wall_s"].notna()]
    if done.empty:
        return None
    if "base_depth" in done and done["base_depth"].notna().any():
        # A depth ladder's runs differ in depth from the bundle's target model: no like for like.
        return None
    widest = int(done["width"].max())
    measured = float(done.loc[done["width"] == widest, "wall_s"].median())
    plan = _plan(bundle, widest, 1)
    predicted = estimate(plan).est_compute_s
    if not (math.isfinite(measured) and measured > 0 and predicted > 0):
        return None
    return measured / predicted


def estimate_verify(bundle: HPBundle, bracket: int = 2, sp_baseline: bool = True,
                    runs: pd.DataFrame | None = None) -> VerifyEstimate:
    """Runs, FLOPs, memory and time of `verify_bundle(bundle, bracket)` with the sweep's seeds
    and steps, scaled by the measured pace of the sweep's `runs` (its runs frame) where given.

    Raises:
        UserError: the bundle's task cannot be loaded.
    """
    from experiments.bundle.verify import baseline_planned
    from experiments.spec.estimate import estimate

    seeds = bundle.spec.get("seeds", [0])
    n_seeds = len(seeds) if isinstance(seeds, list) and seeds else 1
    baseline = baseline_planned(bundle, sp_baseline)
    points = 2 * bracket + 1 + int(baseline)
    plan = _plan(bundle, bundle.target_width, points * n_seeds)
    est: SweepEstimate = estimate(plan)
    scale = _measured_scale(bundle, runs)
    seconds = est.est_compute_s * scale if scale is not None else est.est_compute_s
    result = VerifyEstimate(
        runs=plan.runs, points=points, seeds=n_seeds, steps=plan.steps,
        total_flops=est.total_flops, peak_memory_bytes=est.peak_memory_bytes,
        est_compute_s=est.est_compute_s, calibrated=scale is not None, device=est.device,
        baseline=baseline,
    )
    return replace(result, est_compute_s=seconds)
