"""Train one run of a sweep: one (width, parametrization, LR, seed, global HPs) point.

    result = train_run(run, reporter)       # in-process
    out = run_job(payload, reporter)        # what runner workers call ("experiments.train:run_job")

Steps: 1. pick the device; 2. build the zoo model at `run.width`, measure it against the base
shapes (inferred once per process from the model factory) and parametrize it (SP or µP, TP5,
Yang et al., 2022); 3. train `steps` steps of the optimizer with batches drawn from a generator
seeded by the run's seed; 4. report the mean train loss of every `log_every` window; 5. evaluate.

Losses are accumulated on the device and read back only at log points, so a GPU run syncs with
the host once per `log_every` steps (batch indices reach the GPU through pinned, non-blocking
copies for the same reason).

Speed switches (both off by default, which keeps results bit-identical to runs made before they
existed):
- precision "bf16": forward and loss under `torch.autocast(device_type, dtype=torch.bfloat16)`
  (CPU or CUDA); parameters, gradients and optimizer state stay fp32.
- compile: the training forward goes through `torch.compile(model)`; the optimizer and µP
  metadata use the eager module (its parameters are the compiled wrapper's). A compiler that
  cannot work here fails the run at its first step with a message saying to set
  `compile: false`.

Result definitions (what the analysis reads):
- final_train_loss: the mean training loss over the last 10% of steps (at least one step). A
  window mean, not a single batch, so the LR-vs-loss curves the transfer analysis fits are
  smooth; every run of a sweep averages the same number of steps.
- final_val_loss: the mean loss over the task's fixed val eval set (`Task.eval_batches`).
- diverged: the loss of a log window is non-finite, or exceeds max(2 x initial, initial + 2)
  where initial is the loss before the first update. The run stops there; divergence is data
  (a too-large LR), not an error.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

import mucore
from experiments.device import device_label, resolve_device
from experiments.doctor.noise_scale import NoiseScaleMeter, small_batch_size, squared_norm
from experiments.errors import UserError
from experiments.models import build_model, depth_model_factory, model_factory
from experiments.spec.run import OptimizerConfig, Precision, RunConfig, RunResult
from experiments.states import RunState
from experiments.tasks import Task, TaskConfig, load_task
from experiments.tasks.loading import TaskKey, task_key

# Batches come from their own generator, seeded apart from the init seed so that the draw of
# batches and the draw of weights are unrelated streams.
BATCH_SEED_OFFSET = 1_000_003
# Fraction of the steps whose mean train loss is the run's final_train_loss.
FINAL_LOSS_FRACTION = 0.1
# Blow-up rule: a window mean above max(factor x initial, initial + margin) is divergence.
DIVERGENCE_FACTOR = 2.0
DIVERGENCE_MARGIN = 2.0
# Batch size of the final evaluation passes (memory-bound only; any value gives the same loss).
EVAL_BATCH_SIZE = 256

class Reporter(Protocol):
    """Where a run sends its progress (the runner's worker side implements it)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Record metrics at `step` (long format: one row per name)."""
        ...

    def progress(self, step: int, total: int) -> None:
        """`step` of `total` steps done."""
        ...

    def cancelled(self) -> bool:
        """Whether the run should stop now (checked at log points)."""
        ...


class NullReporter:
    """A reporter that drops everything and never cancels (scripts, benchmarks)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Ignore metrics."""

    def progress(self, step: int, total: int) -> None:
        """Ignore progress."""

    def cancelled(self) -> bool:
        """Never cancelled."""
        return False


# Both caches are keyed by the task's `TaskKey` (its path and each file's size and mtime, the
# allowed folders re-checked on each lookup), never by the task config alone: a long-lived
# worker must not train on, or measure shapes against, a stale copy of an edited file.
_SHAPES_CACHE: dict[tuple[str, TaskKey, int, int | None], mucore.BaseShapes] = {}
_TASK_CACHE: dict[tuple[TaskKey, str], Task] = {}
# Per-device task copies kept (oldest dropped first): an edited file's old copy is let go.
_TASK_CACHE_SIZE = 4


def base_shapes_for(run: RunConfig) -> mucore.BaseShapes:
    """The base shapes of the run's model family, inferred once per process and cached.

    µP measures every parameter against the model at `base_width` (and a second width to find
    which dimensions grow); all runs of a sweep share them. A run of a depth ladder
    (`run.base_depth` set) is measured against the model at (`base_width`, `base_depth`) built
    by the depth factory, so CompleteP / depth-µP see m_L = model.depth / base_depth.
    """
    key: tuple[str, TaskKey, int, int | None]
    if run.base_depth is not None:
        # The run's own depth is not part of the key: every depth of the ladder shares the base.
        base_model = run.model.model_copy(update={"depth": run.base_depth})
        key = (base_model.model_dump_json(), task_key(run.task), run.base_width, run.base_depth)
    else:
        key = (run.model.model_dump_json(), task_key(run.task), run.base_width, None)
    shapes = _SHAPES_CACHE.get(key)
    if shapes is None:
        info = load_task(run.task).info
        if run.base_depth is not None:
            shapes = mucore.infer_base_shapes(depth_model_factory(run.model, info),
                                              run.base_width, base_depth=run.base_depth)
        else:
            shapes = mucore.infer_base_shapes(model_factory(run.model, info), run.base_width)
        _SHAPES_CACHE[key] = shapes
    return shapes


def _task_on(cfg: TaskConfig, device: torch.device) -> Task:
    """The task's data on `device`, cached per process (one copy per device) under its
    `TaskKey`, so the allowed folders, the files' size and mtime, and the sweep's recorded
    data fingerprint are checked again for every run.

    Raises:
        FieldError: (task.path) as `experiments.tasks.loading.task_key`.
    """
    key = (task_key(cfg), str(device))
    task = _TASK_CACHE.get(key)
    if task is None:
        task = load_task(cfg).to(device)
        while len(_TASK_CACHE) >= _TASK_CACHE_SIZE:
            _TASK_CACHE.pop(next(iter(_TASK_CACHE)))
        _TASK_CACHE[key] = task
    return task


def autocast_context(
    precision: Precision, device: torch.device
) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A factory of the context that forward and loss run under for `precision`.

    fp32 gets a no-op context (not a disabled autocast) so fp32 runs execute exactly the code
    they always did; bf16 gets `torch.autocast(device.type, dtype=torch.bfloat16)`.
    """
    if precision == "fp32":
        return contextlib.nullcontext
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")


def compile_failure(exc: BaseException) -> UserError:
    """The error a run raises when torch.compile cannot build its model here."""
    return UserError(
        f"torch.compile failed on this machine ({type(exc).__name__}: {str(exc)[:500]}); set "
        "`compile: false` in the spec (a C/C++ compiler and, on GPUs, Triton are needed)"
    )


def _evaluate(
    model: torch.nn.Module,
    task: Task,
    split: Literal["train", "val"],
    autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> float:
    """Mean loss over the task's fixed eval set of `split` (weighted by batch size)."""
    model.eval()
    total = torch.zeros((), device=task.device)
    count = 0
    with torch.no_grad():
        for x, y in task.eval_batches(split, EVAL_BATCH_SIZE):
            with autocast():
                loss = task.loss(model(x), y)
            total += loss.float() * x.shape[0]
            count += x.shape[0]
    model.train()
    return float(total.item() / max(count, 1))




@dataclass
class _Training:
    """What the step loop trains with (built by `_build_training`)."""

    task: Task
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator  # the batch stream, on the CPU
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, or its compiled wrapper
    noise: NoiseScaleMeter | None = None  # the critical batch meter, when the run asks for it


def _scheduler(opt_cfg: OptimizerConfig, optimizer: torch.optim.Optimizer,
               steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The run's LR schedule (None: constant), scaling every group relative to its own LR."""
    if opt_cfg.schedule == "cosine":
        return mucore.relative_schedule(optimizer, mucore.warmup_cosine(opt_cfg.warmup_steps,
                                                                        steps))
    if opt_cfg.schedule == "wsd":
        factor = mucore.warmup_stable_decay(opt_cfg.warmup_steps, steps,
                                            opt_cfg.resolved_decay_fraction())
        return mucore.relative_schedule(optimizer, factor)
    return None


def _build_training(run: RunConfig, device: torch.device) -> _Training:
    """Step 2 (module docstring): the task, the model parametrized in SP or µP, its optimizer
    and its batch stream."""
    task = _task_on(run.task, device)
    shapes = base_shapes_for(run)
    with device:
        model = build_model(run.model, task.info, run.width)
    model.to(device)
    setup = mucore.parametrize(
        model, shapes, run.parametrization, run.hparams.to_mucore(), seed=run.seed
    )
    # The grid LR is the base LR: the batch and horizon rules move it (and Adam's betas and
    # eps) to this run's batch size and length, as the width rules move each group's LR.
    lr, opt_cfg = run.effective_optimizer()
    optimizer = mucore.build_optimizer(model, setup, opt_cfg.name, lr, **opt_cfg.build_kwargs())
    scheduler = _scheduler(opt_cfg, optimizer, run.steps)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(run.seed + BATCH_SEED_OFFSET)
    # Compiled forward for training only: the optimizer above holds the eager module's
    # parameters (the same tensors the wrapper trains), and evaluation stays eager so eval/no-grad
    # mode does not trigger a second compilation.
    forward: Callable[[torch.Tensor], torch.Tensor] = (
        torch.compile(model) if run.compile else model
    )
    noise = (NoiseScaleMeter(small_batch_size(run.batch_size), run.batch_size)
             if run.noise_scale else None)
    return _Training(task, model, optimizer, scheduler, generator,
                     autocast_context(run.precision, device), forward, noise)


class _LossWindows:
    """The step loop's loss bookkeeping: window and tail sums stay on the device, and are read
    back (one host sync) only when a log window closes."""

    def __init__(self, steps: int, device: torch.device) -> None:
        self.tail_start = steps - max(1, round(FINAL_LOSS_FRACTION * steps)) + 1
        self.window_sum = torch.zeros((), device=device)
        self.tail_sum = torch.zeros((), device=device)
        self.initial_t: torch.Tensor | None = None
        self.initial: float | None = None  # the loss before the first update
        self.last_window: float | None = None  # the last finite window mean
        self.window_start = 1

    def add(self, step: int, loss: torch.Tensor) -> None:
        """Accumulate one step's loss (no host sync)."""
        # fp32 accumulators whatever the compute dtype (a no-op for fp32 losses).
        detached = loss.detach().float()
        if self.initial_t is None:
            self.initial_t = detached.clone()
        self.window_sum += detached
        if step >= self.tail_start:
            self.tail_sum += detached

    def close_window(self, step: int) -> float:
        """The mean loss of the window ending at `step`; the next window starts after it."""
        if self.initial is None:
            assert self.initial_t is not None
            self.initial = float(self.initial_t.item())
        window_mean = float(self.window_sum.item()) / (step - self.window_start + 1)
        self.window_sum.zero_()
        self.window_start = step + 1
        return window_mean

    def blew_up(self, window_mean: float) -> bool:
        """The blow-up rule (module docstring) on a window mean; a finite mean is remembered."""
        assert self.initial is not None
        if math.isfinite(window_mean):
            self.last_window = window_mean
        limit = max(DIVERGENCE_FACTOR * self.initial, self.initial + DIVERGENCE_MARGIN)
        return not math.isfinite(window_mean) or window_mean > limit

    def final_train(self, steps: int) -> float:
        """The mean train loss over the tail (the last FINAL_LOSS_FRACTION of `steps`)."""
        return float(self.tail_sum.item()) / (steps - self.tail_start + 1)


def _step(run: RunConfig, t: _Training, step: int) -> torch.Tensor:
    """One optimizer step on a fresh batch; returns the batch loss (still on the device)."""
    x, y = t.task.batch("train", run.batch_size, t.generator)
    try:
        with t.autocast():
            loss = t.task.loss(t.forward(x), y)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
    except Exception as exc:
        # torch.compile compiles lazily, at the first forward and backward: a missing
        # compiler surfaces here and should say what to change, not look like a model bug.
        if run.compile and step == 1:
            raise compile_failure(exc) from exc
        raise
    if t.noise is not None and (step % run.log_every == 0 or step == run.steps):
        _measure_noise(t, x, y)
    t.optimizer.step()
    if t.scheduler is not None:
        t.scheduler.step()
    return loss


def _measure_noise(t: _Training, x: torch.Tensor, y: torch.Tensor) -> None:
    """Fold one (small, full) pair of squared gradient norms into the run's noise meter: the
    full batch's gradient is the one the step just took (`.grad`), the small one comes from
    a slice of the same batch, so no batch is drawn and training is unchanged."""
    assert t.noise is not None
    params = [p for p in t.model.parameters() if p.requires_grad]
    b_small = t.noise.b_small

    def loss_of(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        with t.autocast():
            return t.task.loss(t.forward(xs), ys)

    small = torch.autograd.grad(loss_of(x[:b_small], y[:b_small]), params, allow_unused=True)
    t.noise.add(squared_norm(small), squared_norm([p.grad for p in params]))


def _train_steps(
    run: RunConfig, t: _Training, losses: _LossWindows, reporter: Reporter
) -> tuple[RunState, int]:
    """Steps 3 and 4: train until `run.steps`, divergence or cancellation, reporting every
    window; returns (state, steps done)."""
    t.model.train()
    for step in range(1, run.steps + 1):
        losses.add(step, _step(run, t, step))
        if step % run.log_every == 0 or step == run.steps:
            window_mean = losses.close_window(step)
            values = {"train_loss": window_mean}
            if t.noise is not None:
                values["noise_scale"] = t.noise.estimate().b_simple
            reporter.metrics(step, values)
            reporter.progress(step, run.steps)
            if losses.blew_up(window_mean):
                return RunState.DIVERGED, step
            if reporter.cancelled():
                return RunState.CANCELLED, step
    return RunState.DONE, run.steps


def _final_losses(
    run: RunConfig,
    t: _Training,
    losses: _LossWindows,
    state: RunState,
    steps_done: int,
    reporter: Reporter,
) -> tuple[RunState, float | None, float | None]:
    """Step 5: (state, final train loss, final val loss); a non-finite tail is divergence."""
    if state != RunState.DONE:
        return state, losses.last_window, None
    final_train: float | None = losses.final_train(run.steps)
    final_val: float | None = _evaluate(t.model, t.task, "val", t.autocast)
    if final_val is not None and not math.isfinite(final_val):
        final_val = None
    reporter.metrics(steps_done, {"val_loss": final_val if final_val is not None else math.nan})
    if final_train is not None and not math.isfinite(final_train):
        final_train, state = None, RunState.DIVERGED
    return state, final_train, final_val


def train_run(run: RunConfig, reporter: Reporter) -> RunResult:
    """Train one run and return its result (divergence and cancellation are results, not errors).

    Deterministic on the CPU for a fixed seed: weights come from `mucore.parametrize(seed=...)`
    and batches from a CPU `torch.Generator` seeded by the seed.

    The step loop makes no host sync outside log points: no `.item()`, `float(tensor)` or
    Python branch on a tensor value; losses accumulate on the device.

    Args:
        run: the resolved run.
        reporter: receives `train_loss` every `log_every` steps (the window mean), `val_loss`
            at the end, progress at every log point; its `cancelled()` is polled at log points.

    Returns:
        The run's `RunResult`.

    Raises:
        ValueError: the device is not available here.
        experiments.errors.UserError: the model cannot be built for the task at this width, or
            `compile` is on and torch.compile cannot compile it here.
    """
    t_start = time.perf_counter()
    device = resolve_device(run.device)
    torch.manual_seed(run.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    training = _build_training(run, device)
    losses = _LossWindows(run.steps, device)
    t_train = time.perf_counter()
    state, steps_done = _train_steps(run, training, losses, reporter)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_s = time.perf_counter() - t_train
    state, final_train, final_val = _final_losses(run, training, losses, state, steps_done,
                                                  reporter)
    info = training.task.info
    per_step = run.batch_size * (info.seq_len if info.kind == "lm" and info.seq_len else 1)
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return RunResult(
        state=state,
        final_train_loss=final_train,
        final_val_loss=final_val,
        steps_done=steps_done,
        wall_s=time.perf_counter() - t_start,
        samples_per_s=per_step * steps_done / max(train_s, 1e-9),
        device=device_label(device),
        peak_mem_bytes=peak,
        initial_loss=losses.initial,
        precision=run.precision,
        compiled=run.compile,
    )


def run_job(payload: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    """The runner's job function: a `RunConfig` JSON payload in, a `RunResult` JSON dict out.

    Raises:
        pydantic.ValidationError: the payload is not a valid RunConfig.
    """
    run = RunConfig.model_validate(payload)
    return train_run(run, reporter).model_dump(mode="json")
