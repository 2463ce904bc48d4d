"""What a sweep will cost before it is launched: runs, parameters, FLOPs, time and memory, and
whether it can reach a transfer verdict (`reach`, `experiments.spec.reach`).

    plan = estimate(spec)          # or spec.estimate()
    plan.peak_memory_bytes, plan.est_compute_s, plan.widths_frame()

Rough by design (the numbers plan a launch; they are not promises): FLOPs are about
6 x params x positions per step (Kaplan et al., 2020), memory is fp32 weights, gradients and
two Adam moments plus the activations kept for backward. `memory_bytes` also backs the spec's
"does the widest model fit" check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from experiments.models.configs import (
    ModelConfig,
    zoo_kind,
)
from experiments.spec.batch_horizon import TrainingLadder, training_rungs
from experiments.spec.ladder import Ladder, at_depth, sweep_depths
from experiments.spec.reach import ReachPlan, VerdictReach, verdict_reach
from experiments.tasks.config import TaskConfig, TaskInfo

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

# Bytes per parameter: fp32 weights, gradients and two Adam moments.
BYTES_PER_PARAM = 4 * 4
# Activations kept for backward per (example, position, width unit, layer), in fp32 values.
ACTIVATIONS_PER_UNIT = 8
# Throughput assumptions of the compute-time estimate (rough; for planning, not promises).
CPU_FLOP_PER_S = 2e10
GPU_FLOP_PER_S = 2e13
CPU_STEP_OVERHEAD_S = 1e-3
GPU_STEP_OVERHEAD_S = 5e-4


def _positions(info: TaskInfo) -> int:
    """Positions per example that every layer processes: tokens for LM, pixels for a CNN."""
    if info.kind == "lm" and info.seq_len:
        return info.seq_len
    return 1


def _layers_and_width_factor(model: ModelConfig, width: int, params: int) -> tuple[int, int]:
    """(layers, activation width per layer in units of width) for the activation estimate."""
    hook = zoo_kind(model.kind).layers  # the zoo entry's cost hook
    if hook is None:
        # A registered or transformers model's layout is unknown here: count two activations
        # per width x width block of parameters (exact for an MLP, close for a transformer).
        return 1, max(1, 2 * params // max(width * width, 1))
    return hook(model, width, params)


class ModelRun(Protocol):
    """What `memory_bytes` reads of a run: a `SweepSpec`, or one run to check on its own (the
    target of a bundle's `verify`)."""

    @property
    def model(self) -> ModelConfig:
        """The model config."""
        ...

    @property
    def batch_size(self) -> int:
        """Examples (sequences) per step."""
        ...


@dataclass(frozen=True)
class _Rung:
    """One model of a sweep's ladders: the spec's model at one depth, at one batch size."""

    model: ModelConfig
    batch_size: int


class PlannedSweep(ModelRun, Ladder, TrainingLadder, ReachPlan, Protocol):
    """What `estimate` reads of a sweep (a `SweepSpec` is one): the spec builds on this module
    (its "does the widest model fit" check is `memory_bytes`), so this module names the fields
    it needs instead of importing the spec."""

    @property
    def task(self) -> TaskConfig:
        """The task the models train on."""
        ...

    @property
    def widths(self) -> list[int]:
        """The width ladder, increasing."""
        ...

    @property
    def device(self) -> str:
        """The device the runs train on ("auto", "cpu", "cuda", ...)."""
        ...

    def n_runs(self) -> int:
        """The number of runs of the full grid."""
        ...


def _model_positions(spec: ModelRun, info: TaskInfo) -> int:
    """Positions per example: a spatial model (a CNN) sees every pixel of its (C, H, W) image."""
    if zoo_kind(spec.model.kind).spatial and len(info.input_shape) == 3:
        return info.input_shape[1] * info.input_shape[2]
    return _positions(info)


def _attention(spec: ModelRun, info: TaskInfo, width: int) -> tuple[int, int] | None:
    """(heads, blocks) of an attention model on a task with sequences; None otherwise."""
    entry = zoo_kind(spec.model.kind)
    if entry.heads is None or not info.seq_len:
        return None
    return entry.heads(spec.model, width), entry.depth(spec.model) or 1


def memory_bytes(spec: ModelRun, info: TaskInfo, width: int, params: int) -> int:
    """Weights + grads + 2 Adam moments, plus activations kept for backward (fp32, rough)."""
    positions = _model_positions(spec, info)
    layers, per_layer = _layers_and_width_factor(spec.model, width, params)
    act = spec.batch_size * positions * width * layers * per_layer * ACTIVATIONS_PER_UNIT // 2
    attention = _attention(spec, info, width)
    if attention and info.seq_len:  # one (seq x seq) score matrix per head and block
        n_heads, blocks = attention
        act += spec.batch_size * n_heads * info.seq_len**2 * blocks * 4 * 2
    logits = spec.batch_size * positions * info.n_outputs * 4 * 3
    return params * BYTES_PER_PARAM + act + logits


def _flops_per_step(spec: ModelRun, info: TaskInfo, width: int, params: int) -> float:
    """About 6 x params x positions per example (forward + backward), plus attention."""
    flops = 6.0 * params * _model_positions(spec, info) * spec.batch_size
    attention = _attention(spec, info, width)
    if attention and info.seq_len:
        flops += 6.0 * spec.batch_size * info.seq_len**2 * width * attention[1]
    return flops


@dataclass(frozen=True)
class WidthEstimate:
    """Per-width numbers of a sweep plan.

    Attributes:
        width: the width.
        params: parameters of the model at this width.
        flops_per_step: forward + backward FLOPs of one training step (rough).
        memory_bytes: peak memory of one run (weights, grads, Adam state, activations).
        runs: runs at this width.

    With a depth ladder, params, flops_per_step and memory_bytes are the deepest model's, and
    with a batch ladder flops_per_step and memory_bytes are at its largest batch (the sweep's
    totals add every depth, batch and horizon at its own steps).
    """

    width: int
    params: int
    flops_per_step: float
    memory_bytes: int
    runs: int


@dataclass(frozen=True)
class SweepEstimate:
    """What a sweep will cost, before it is launched.

    Attributes:
        n_runs: number of runs.
        total_steps: optimizer steps over all runs.
        total_flops: training FLOPs over all runs (about 6 x params x tokens).
        peak_memory_bytes: the widest run's estimated peak memory.
        est_compute_s: single-worker compute time on the spec's device (rough: FLOPs at an
            assumed throughput plus a per-step overhead that dominates small models).
        device: "cpu" or "cuda": the device type the time estimate assumes.
        widths: per-width numbers.
        reach: whether the plan can reach a transfer verdict (its ladder, seeds and grid step;
            `experiments.spec.reach`).
    """

    n_runs: int
    total_steps: int
    total_flops: float
    peak_memory_bytes: int
    est_compute_s: float
    device: str
    widths: list[WidthEstimate] = field(default_factory=list)
    reach: VerdictReach | None = None

    def widths_frame(self) -> pd.DataFrame:
        """One row per width: width, params, flops_per_step, memory_MiB, runs."""
        import pandas as pd

        return pd.DataFrame(
            {
                "width": [w.width for w in self.widths],
                "params": [w.params for w in self.widths],
                "flops_per_step": [w.flops_per_step for w in self.widths],
                "memory_MiB": [round(w.memory_bytes / 2**20, 1) for w in self.widths],
                "runs": [w.runs for w in self.widths],
            }
        )


def estimate(spec: PlannedSweep) -> SweepEstimate:
    """Runs, parameters per width, FLOPs, time and memory of a valid spec.

    Raises:
        UserError: the task cannot be loaded (a file task whose file vanished).
    """
    import torch

    from experiments.models.zoo import count_params
    from experiments.tasks.loading import task_info

    info = task_info(spec.task)
    runs_per_width = spec.n_runs() // len(spec.widths)
    # A depth ladder: every width trains at every depth (the spec's model at each of them); a
    # batch/horizon ladder: each depth at every (batch, steps) rung.
    models = [at_depth(spec.model, d) for d in sweep_depths(spec)]
    rungs = training_rungs(spec)
    runs_per_cell = runs_per_width // (len(models) * len(rungs))
    on_gpu = spec.device.startswith("cuda") or (spec.device == "auto" and torch.cuda.is_available())
    rate, overhead = (GPU_FLOP_PER_S, GPU_STEP_OVERHEAD_S) if on_gpu else (CPU_FLOP_PER_S,
                                                                            CPU_STEP_OVERHEAD_S)
    per_width = []
    total_flops = seconds = 0.0
    total_steps = 0
    for w in spec.widths:
        for model in models:
            params = count_params(model, info, w)
            for rung in rungs:
                fps = _flops_per_step(_Rung(model, rung.batch_size), info, w, params)
                total_flops += fps * rung.steps * runs_per_cell
                seconds += runs_per_cell * rung.steps * max(overhead, fps / rate)
                total_steps += runs_per_cell * rung.steps
        # The width's row: its deepest (largest) model at the largest batch.
        largest = _Rung(models[-1], max(r.batch_size for r in rungs))
        per_width.append(WidthEstimate(w, params, _flops_per_step(largest, info, w, params),
                                       memory_bytes(largest, info, w, params), runs_per_width))
    return SweepEstimate(
        n_runs=spec.n_runs(),
        total_steps=total_steps,
        total_flops=total_flops,
        peak_memory_bytes=max(w.memory_bytes for w in per_width),
        est_compute_s=seconds,
        device="cuda" if on_gpu else "cpu",
        widths=per_width,
        reach=verdict_reach(spec),
    )
