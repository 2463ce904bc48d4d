"""Verify a bundle: train the target-width model with the transferred HPs and check the LR.

Tensor Programs V (Yang et al., 2022), Section 7: the test of µTransfer is whether the HPs
tuned on the proxies are (near) optimal for the wide target. Steps:

1. From the bundle: the target width, the transferred log2 LR L, the global HPs, the
   optimizer, the training recipe (steps, batch size, seeds) of the sweep; a bundle for a
   target batch and horizon trains at its `target_batch_size` for its `train_steps`, with the
   LR, betas and eps its scaling rule moved there (`experiments.bundle.training`).
2. Train the target in the bundle's parametrization at L + k * step for k in
   -bracket..bracket (step: the sweep's LR grid step), every seed of the sweep, in-process
   with `experiments.train.train_run` (deterministic on the CPU for fixed seeds).
3. The target's own optimum: the seed-mean loss curve over the bracket, refined by the same
   parabola as the sweep analysis (`experiments.analysis.curves.curve_optimum`).
4. Report: `within_one_step` = |L - optimum| <= one grid step and L did not diverge; `loss_gap` = seed-mean loss
   at L minus the best bracket point's (>= 0; +inf when L diverged, written as null).
5. Baseline: SP at its extrapolated LR (the SP drift line at the target width, from the
   bundle's evidence), trained the same way, with its loss gap to the transferred µP run.
6. The loss forecast: the seed-mean loss at L against the best-loss forecast the bundle
   recorded at the target width (`experiments.bundle.forecast_check`: inside, better or worse).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.analysis.curves import curve_optimum
from experiments.bundle.build import HPBundle, log2_grid_step
from experiments.bundle.forecast_check import ForecastCheck, check_forecast
from experiments.bundle.progress import ProgressFile
from experiments.device import device_problem
from experiments.errors import UserError
from experiments.job_results import VerifyPoint, VerifyReport
from experiments.models.configs import ModelConfig
from experiments.spec.run import GLOBAL_KNOBS, HParamsConfig, OptimizerConfig, RunConfig
from experiments.train import NullReporter, Reporter, train_run

# The report's types live with the other job results (torch-free, for the dashboard).
__all__ = ["VerifyPoint", "VerifyReport", "verify_bundle"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Recipe:
    """How every point of a verification trains (step 1 of the module docstring)."""

    step: float  # the bracket spacing, log2
    seeds: list[int]
    steps: int
    device: str
    loss: str  # the loss column compared, the one the sweep's analysis used
    batch_size: int = 64
    log_every: int = 10
    # Where each run reports its steps and loss while it trains (None: nowhere).
    track: ProgressFile | None = None


def _recipe(
    bundle: HPBundle,
    bracket: int,
    step: float | None,
    seeds: list[int] | None,
    steps: int | None,
    device: str | None,
) -> _Recipe:
    """The arguments of `verify_bundle`, defaulted from the sweep's spec and checked."""
    if bracket < 1:
        raise UserError(f"--bracket must be >= 1 (points on each side of the transferred LR), "
                        f"got {bracket}: use e.g. 2")
    spec = bundle.spec
    step = float(step if step is not None else log2_grid_step(spec))
    if not (math.isfinite(step) and step > 0):
        raise UserError(f"the bracket step must be a positive number of log2 units, got {step}")
    seeds = list(seeds if seeds is not None else _spec_ints(spec, "seeds", [0], 0))
    if not seeds:
        raise UserError("seeds is empty: give at least one seed, e.g. [0]")
    # A bundle for a target batch/horizon trains there (`experiments.bundle.training`).
    default_steps = bundle.train_steps or _spec_ints(spec, "steps", 300, 1)
    steps = int(steps if steps is not None else default_steps)
    if steps < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    device = device or str(spec.get("device", "auto"))
    problem = device_problem(device)
    if problem is not None:
        raise UserError(f"--device {device}: {problem}")
    batch_size = bundle.target_batch_size or _spec_ints(spec, "batch_size", 64, 1)
    log_every = min(_spec_ints(spec, "log_every", 10, 1), steps)
    return _Recipe(step=step, seeds=seeds, steps=steps, device=device, loss=bundle.evidence.loss,
                   batch_size=batch_size, log_every=log_every)


def _spec_ints(spec: dict[str, Any], key: str, default: Any, minimum: int) -> Any:
    """`spec[key]` (default when absent): an int >= `minimum`, or for "seeds" a list of them.

    Raises:
        UserError: the bundle's spec holds something else there (named, with the fix).
    """
    value = spec.get(key, default)
    items = value if key == "seeds" and isinstance(value, list) else [value]
    if key == "seeds" and not isinstance(value, list) or not all(
            type(v) is int and v >= minimum for v in items):
        want = f"a list of integers >= {minimum}" if key == "seeds" else f"an integer >= {minimum}"
        raise UserError(f"the bundle's spec.{key} is {value!r}, not {want}: pass --{key} "
                        "or re-export the bundle")
    return value


@dataclass(frozen=True)
class _TargetRun:
    """What `experiments.spec.estimate.memory_bytes` reads of a run: its model and batch size."""

    model: ModelConfig
    batch_size: int


def check_target_memory(bundle: HPBundle, device: str, batch_size: int) -> int:
    """The estimated peak memory of one target run (bytes), checked against this machine's
    limit (`experiments.device.memory_limit`) before any model is built.

    The parameters are counted on the meta device (`count_params`), so any width is sized
    without allocating it.

    Raises:
        UserError: the estimate exceeds the limit, or the target cannot even be sized (its
            width overflows the tensor sizes torch can count).
    """
    from experiments.device import memory_limit
    from experiments.models.zoo import count_params
    from experiments.spec.estimate import memory_bytes
    from experiments.tasks.loading import task_info

    model = bundle.model_config_obj()
    info = task_info(bundle.task_config())
    width = bundle.target_width
    try:
        params = count_params(model, info, width)
    except (RuntimeError, OverflowError, ValueError, MemoryError) as exc:
        raise UserError(f"the bundle's target_width {width:,} cannot be sized ({type(exc).__name__}"
                        f": {str(exc)[:200]}): export the bundle for a width this machine can "
                        "train (`export --target-width N`)") from None
    need = memory_bytes(_TargetRun(model, batch_size), info, width, params)
    limit, where = memory_limit(device)
    if need > limit:
        raise UserError(f"the bundle's target_width {width:,} needs an estimated "
                        f"{need / 2**30:,.1f} GiB per run ({params:,} parameters, batch_size "
                        f"{batch_size}), more than the {limit / 2**30:.1f} GiB {where}: verify "
                        "a bundle exported for a smaller width (`export --target-width N`), or "
                        "run it where the memory is")
    return need


def _train_point(
    bundle: HPBundle,
    recipe: _Recipe,
    parametrization: str,
    log2_lr: float,
    hparams: dict[str, Any],
    offset: int | None,
) -> VerifyPoint:
    """Train the target at one LR, every seed of the recipe (step 2)."""
    spec = bundle.spec
    losses: list[float | None] = []
    states: list[str] = []
    for seed in recipe.seeds:
        run = RunConfig(
            sweep_name=f"verify-{spec.get('name', 'bundle')}",
            model=bundle.model_config_obj(),
            task=bundle.task_config(),
            width=bundle.target_width,
            base_width=bundle.base_width,
            base_depth=bundle.base_depth,  # the model config is at the target depth already
            parametrization=parametrization,
            optimizer=OptimizerConfig.model_validate(bundle.optimizer),
            lr=2.0**log2_lr,
            hparams=HParamsConfig.model_validate(hparams),
            seed=seed,
            steps=recipe.steps,
            batch_size=recipe.batch_size,
            log_every=recipe.log_every,
            device=recipe.device,
        )
        label = f"{_PARAM_WORDS.get(parametrization, parametrization)} 2^{log2_lr:.3g} seed {seed}"
        reporter: Reporter = recipe.track.reporter(label) if recipe.track is not None else NullReporter()
        result = train_run(run, reporter)
        if recipe.track is not None:
            recipe.track.run_done()
        value = getattr(result, recipe.loss)
        ok = result.state == "done" and value is not None and math.isfinite(value)
        losses.append(float(value) if ok else None)
        states.append(result.state)
    finite = [x for x in losses if x is not None]
    mean = float(np.mean(finite)) if len(finite) == len(losses) and finite else None
    return VerifyPoint(parametrization=parametrization, offset_steps=offset, log2_lr=log2_lr,
                       loss=mean, seed_losses=losses, states=states)


# The page's words for the parametrizations in progress lines.
_PARAM_WORDS = {"mup": "µP", "sp": "SP"}


def _loss_words(point: VerifyPoint) -> str:
    return "diverged" if point.loss is None else f"{point.loss:.4f}"


def _train_bracket(
    bundle: HPBundle, recipe: _Recipe, bracket: int, say: Progress
) -> list[VerifyPoint]:
    """The transferred LR L and L + k * step for k in -bracket..bracket (step 2)."""
    points = []
    for k in range(-bracket, bracket + 1):
        p = _train_point(bundle, recipe, bundle.parametrization, bundle.log2_lr + k * recipe.step,
                         bundle.hparams, k)
        say(f"{bundle.parametrization} 2^{p.log2_lr:.3g}: {_loss_words(p)}")
        points.append(p)
    return points


@dataclass(frozen=True)
class _BracketOutcome:
    """The target's own optimum over the bracket and how the transferred LR compares (steps 3
    and 4); the fields are `VerifyReport`'s of the same names."""

    opt_log2_lr: float | None = None
    opt_refined: bool = False
    opt_at_edge: str | None = None
    within_one_step: bool = False
    best_log2_lr: float | None = None
    best_loss: float | None = None
    loss_gap: float | None = None


def _bracket_outcome(
    points: list[VerifyPoint], transferred: VerifyPoint, step: float, warn: list[str]
) -> _BracketOutcome:
    """Steps 3 and 4: the parabola-refined optimum, the one-step test and the loss gap."""
    xs = np.array([p.log2_lr for p in points])
    ys = np.array([math.inf if p.loss is None else p.loss for p in points])
    opt = curve_optimum(xs, ys)
    if opt is None:
        warn.append("every bracket point diverged at the target width: the transferred LR is "
                    "far too large; check the bundle's evidence")
        return _BracketOutcome()
    i = int(np.argmin(ys))
    best_x, best_loss = float(xs[i]), float(ys[i])
    if opt.edge is not None:
        warn.append(f"the target's best LR is at the {opt.edge} end of the bracket "
                    f"(2^{opt.grid_log2:.3g}): its optimum may lie beyond; widen --bracket")
    return _BracketOutcome(
        opt_log2_lr=opt.opt_log2,
        opt_refined=bool(opt.refined),
        opt_at_edge=opt.edge,
        # A diverged transferred LR is never "within one grid step", however near the optimum.
        within_one_step=transferred.loss is not None
        and bool(abs(transferred.log2_lr - opt.opt_log2) <= step + 1e-9),
        best_log2_lr=best_x,
        best_loss=best_loss,
        loss_gap=None if transferred.loss is None else max(0.0, transferred.loss - best_loss),
    )


def _sp_hparams(bundle: HPBundle) -> dict[str, Any]:
    """The spec's global knobs, each swept one at SP's predicted optimum (from the evidence)."""
    hparams = dict(bundle.spec.get("hparams", {}))
    for knob in GLOBAL_KNOBS:
        drift = bundle.evidence.drift.get(knob, {}).get("sp")
        if drift is not None and drift.predicted_log2 is not None:
            hparams[knob] = 2.0**drift.predicted_log2
    return hparams


def _sp_drift(bundle: HPBundle) -> Any:
    """The SP drift evidence the baseline extrapolates from (None: nothing to extrapolate)."""
    drift = bundle.evidence.drift.get("lr", {}).get("sp")
    return None if drift is None or drift.predicted_log2 is None else drift


def baseline_planned(bundle: HPBundle, sp_baseline: bool = True) -> bool:
    """Whether a verification of `bundle` trains the SP baseline (step 5)."""
    return sp_baseline and bundle.parametrization != "sp" and _sp_drift(bundle) is not None


def _sp_baseline(
    bundle: HPBundle, recipe: _Recipe, transferred: VerifyPoint, say: Progress, warn: list[str]
) -> tuple[VerifyPoint | None, float | None]:
    """Step 5: SP at its extrapolated LR, and its loss minus the transferred one."""
    sp_drift = _sp_drift(bundle)
    if sp_drift is None:
        warn.append("no SP baseline: the sweep has no SP drift to extrapolate")
        return None, None
    baseline = _train_point(bundle, recipe, "sp", sp_drift.predicted_log2 + _rule_shift(bundle),
                            _sp_hparams(bundle), None)
    say(f"sp baseline 2^{baseline.log2_lr:.3g}: {_loss_words(baseline)}")
    if baseline.loss is None or transferred.loss is None:
        return baseline, None
    return baseline, baseline.loss - transferred.loss


def _rule_shift(bundle: HPBundle) -> float:
    """log2 of the LR factor the bundle's scaling rule applied at the target batch/horizon (0
    without one): the SP baseline's extrapolated LR is moved by the same factor."""
    if bundle.scaling is None:
        return 0.0
    return bundle.log2_lr - float(bundle.scaling["base"]["log2_lr"])


def _forecast_check(
    bundle: HPBundle, transferred: VerifyPoint, warn: list[str]
) -> ForecastCheck | None:
    """Step 6: the transferred LR's loss against the bundle's forecast at the target."""
    recorded = (bundle.evidence.forecast or {}).get(bundle.parametrization)
    if bundle.target_depth is not None and bundle.target_depth != bundle.base_depth:
        warn.append("no loss forecast: the width forecast is for the base depth "
                    f"{bundle.base_depth}, not the target depth {bundle.target_depth}")
        return None
    if (bundle.target_batch_size != bundle.base_batch_size
            or bundle.target_horizon != bundle.base_horizon):
        warn.append("no loss forecast: the width forecast is for the base batch and horizon, "
                    f"not the target's batch {bundle.target_batch_size} and "
                    f"{bundle.train_steps} steps")
        return None
    if recorded is None:
        warn.append("no loss forecast: the bundle records none (exported before forecasts)")
        return None
    if "refused" in recorded:
        warn.append(f"no loss forecast: it was refused at export: {recorded['refused']}")
        return None
    row = bundle.evidence.forecast_at_target(bundle.parametrization, bundle.target_width)
    check = None if row is None else check_forecast(row, transferred.seed_losses,
                                                    transferred.loss)
    if check is None:
        warn.append(f"no loss forecast at width {bundle.target_width} in the bundle")
    return check


def verify_bundle(
    bundle: HPBundle,
    bracket: int = 2,
    *,
    step: float | None = None,
    seeds: list[int] | None = None,
    steps: int | None = None,
    device: str | None = None,
    sp_baseline: bool = True,
    progress: Progress | None = None,
    progress_file: Path | None = None,
) -> VerifyReport:
    """Train the bundle's target with its transferred LR and a bracket around it (TP5, §7).

    Args:
        bundle: a verified bundle (`read_bundle`).
        bracket: grid points on each side of the transferred LR (>= 1).
        step: bracket spacing in log2 units (default: the sweep's LR grid step).
        seeds: seeds per point (default: the sweep's seeds).
        steps: optimizer steps per run (default: the sweep's).
        device: "cpu", "cuda", "auto" (default: the sweep's device).
        sp_baseline: also train SP at its extrapolated LR, when the evidence has one.
        progress: called with one line per trained point.
        progress_file: rewritten while it trains with the runs done, the current run's step
            and loss and the ETA (`experiments.bundle.progress`), for the dashboard.

    Returns:
        The `VerifyReport`.

    Raises:
        UserError: bracket < 1, a non-positive step or steps, empty seeds, a device missing
            here, a spec field of the bundle that is not a number, or a target too large for
            this machine (`check_target_memory`, before anything is built).
    """
    recipe = _recipe(bundle, bracket, step, seeds, steps, device)
    check_target_memory(bundle, recipe.device, recipe.batch_size)
    if progress_file is not None:
        n_points = 2 * bracket + 1 + int(baseline_planned(bundle, sp_baseline))
        recipe = dataclasses.replace(recipe, track=ProgressFile(
            progress_file, n_points * len(recipe.seeds), recipe.steps))
    say = progress or (lambda _line: None)
    t0 = time.perf_counter()
    warn: list[str] = []
    points = _train_bracket(bundle, recipe, bracket, say)
    transferred = points[bracket]
    outcome = _bracket_outcome(points, transferred, recipe.step, warn)
    if transferred.loss is None:
        warn.append("the transferred LR diverged at the target width")
    baseline, sp_gap = None, None
    if sp_baseline and bundle.parametrization != "sp":
        baseline, sp_gap = _sp_baseline(bundle, recipe, transferred, say, warn)
    forecast = _forecast_check(bundle, transferred, warn)
    return VerifyReport(
        forecast=forecast,
        target_width=bundle.target_width,
        target_depth=bundle.target_depth,
        parametrization=bundle.parametrization,
        transferred_log2_lr=bundle.log2_lr,
        step=recipe.step,
        bracket=bracket,
        **dataclasses.asdict(outcome),
        transferred_loss=transferred.loss,
        points=points,
        sp_baseline=baseline,
        sp_gap=sp_gap,
        loss=recipe.loss,
        seeds=recipe.seeds,
        steps=recipe.steps,
        batch_size=recipe.batch_size,
        device=recipe.device,
        wall_s=time.perf_counter() - t0,
        warnings=warn,
    )
