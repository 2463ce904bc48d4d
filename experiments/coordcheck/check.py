"""Coordinate checks and describe tables for zoo and registered models: the data behind the CLI
and dashboard.

Picks a default task and one fixed batch per model kind (registered models: digits unless a
task is given), builds the model factory, and runs the coordinate check along a width ladder
(`mucore.coord_check`, TP5, Yang et al., 2022, Appendix D) or a depth ladder at one width
(`mucore.coord_check_depth`; Dey et al. 2025, arXiv 2505.01618, Figure 7's check; Yang et al.
2023, TP VI: under CompleteP the slopes stay near 0, without the branch multiplier the residual
stream grows with depth), or `mucore.describe`. Both ladders give one result type
(`mucore.CoordCheckResult`, its `axis` says which) and one JSON shape (`coord_payload`). Functions here
return data and never print; bad input raises `UserError` naming the input and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import TypeAdapter, ValidationError
from torch import Tensor, nn

import mucore
from experiments.coordcheck.request import depth_problem, validate_depths
from experiments.doctor.health import probe_task
from experiments.errors import UserError
from experiments.models import (
    CustomModelConfig,
    HFConfig,
    MLPConfig,
    ModelConfig,
    check_task,
    check_widths,
    model_factory,
)
from experiments.models.catalog import model_config
from experiments.models.configs import zoo_kind, zoo_labels
from experiments.models.custom import custom_problems
from experiments.models.parametrizations import resolve_parametrization
from experiments.models.zoo import depth_model_factory
from experiments.tasks import Task, TaskConfig, TaskInfo, load_task, task_info

# Default tasks: digits is a real (small) image dataset; bytes a real byte-level text stream,
# with a short context so the widest GPT stays cheap on a CPU.
DEFAULT_TASKS: dict[str, TaskConfig] = {
    "mlp": TaskConfig(name="digits"),
    "cnn": TaskConfig(name="digits"),
    "gpt": TaskConfig(name="bytes", seq_len=32),
    "llama": TaskConfig(name="bytes", seq_len=32),
}
# Fixed-batch sizes: the CNN's width x width 3x3 convs on 8x8 images cost ~64x an MLP layer per
# sample, so it gets a smaller batch; a GPT batch holds batch x seq_len tokens.
DEFAULT_BATCH: dict[str, int] = {"mlp": 64, "cnn": 16, "gpt": 8, "llama": 8}
# A registered model says nothing about its task: it gets the image task unless one is given.
CUSTOM_TASK = TaskConfig(name="digits")
CUSTOM_BATCH = 32
# A seed for the batch draw that differs from the init seed, so batch and weights are unrelated.
_BATCH_SEED_OFFSET = 10_007


def default_task(cfg: ModelConfig) -> TaskConfig:
    """The task a model is checked on when none is given: its kind's (`DEFAULT_TASKS`); an hf
    model's by its architecture (a causal LM: bytes, an image classifier: digits); a
    registered model's: digits (`CUSTOM_TASK`)."""
    if isinstance(cfg, HFConfig):
        from experiments.models.hf import architecture_kind

        return DEFAULT_TASKS["llama" if architecture_kind(cfg.architecture) == "lm" else "mlp"]
    return DEFAULT_TASKS.get(cfg.kind, CUSTOM_TASK)


def default_batch(cfg: ModelConfig, task: TaskInfo) -> int:
    """The fixed-batch size of a model's checks (`DEFAULT_BATCH`; an hf LM: the llama's)."""
    if isinstance(cfg, HFConfig):
        return DEFAULT_BATCH["llama"] if task.kind == "lm" else CUSTOM_BATCH
    return DEFAULT_BATCH.get(cfg.kind, CUSTOM_BATCH)


def coord_batch(task: Task, batch_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """The one fixed training batch a coordinate check (over width or depth) and the doctor's
    dynamic checks train on: drawn from `seed` offset so batch and init weights are unrelated,
    and the same batch for every width (or depth) of one check."""
    return task.batch("train", batch_size, torch.Generator().manual_seed(seed + _BATCH_SEED_OFFSET))


@dataclass
class CoordCheckSetup:
    """Everything a coord check on one zoo model needs.

    Attributes:
        model: the zoo config.
        task: the loaded task (its `loss` is the loss function).
        factory: `width -> nn.Module`.
        batch: the fixed (inputs, targets) used at every step and width.
    """

    model: ModelConfig
    task: Task
    factory: Callable[[int], nn.Module]
    batch: tuple[Tensor, Tensor]


def default_model_config(kind: str) -> ModelConfig:
    """The zoo's default config of a model kind the pages offer (`zoo_labels()`: mlp, gpt,
    llama, cnn, ...).

    Raises:
        UserError: unknown kind.
    """
    if kind not in zoo_labels():
        raise UserError(f"unknown model '{kind}': choose one of {', '.join(zoo_labels())}")
    return zoo_kind(kind).config()  # type: ignore[return-value]


def _as_model_config(model: str | ModelConfig | dict[str, Any]) -> ModelConfig:
    if isinstance(model, str):  # a zoo kind or a registered model, with default options
        return model_config(model)
    if isinstance(model, dict):
        try:
            return TypeAdapter(ModelConfig).validate_python(model)
        except ValidationError as exc:
            raise UserError(f"invalid model config {model}: {exc}") from None
    return model


def model_errors(cfg: ModelConfig, info: TaskInfo, widths: list[int], base_width: int
                 ) -> list[str]:
    """Why the model cannot be built for the task at `widths` (a registered model is also built
    at them and checked for µP: `experiments.models.custom.custom_problems`)."""
    errors = check_task(cfg, info) + check_widths(cfg, info, widths)
    if not errors and isinstance(cfg, CustomModelConfig):
        errors = [msg for _, msg in custom_problems(cfg, info, widths, base_width)]
    return errors


def validate_widths(widths: Sequence[int]) -> list[int]:
    """At least two positive, strictly increasing widths.

    Raises:
        UserError: naming the offending width.
    """
    ws = [int(w) for w in widths]
    if len(ws) < 2:
        raise UserError(f"a coord check needs at least two widths, got {ws}: e.g. 64,128,256,512")
    for w in ws:
        if w < 1:
            raise UserError(f"widths must be >= 1, got {w}")
    for a, b in zip(ws, ws[1:], strict=False):
        if b <= a:
            raise UserError(f"width ladder must increase: got {b} after {a}")
    return ws


def parse_widths(text: str) -> list[int]:
    """Parse "64,128,256" into increasing widths.

    Raises:
        UserError: not integers, or not increasing.
    """
    try:
        ws = [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise UserError(
            f"--widths must be comma-separated integers like 64,128,256, got {text!r}"
        ) from None
    return validate_widths(ws)


def prepare(
    model: str | ModelConfig | dict[str, Any],
    widths: Sequence[int],
    *,
    task: TaskConfig | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    base_width: int | None = None,
) -> CoordCheckSetup:
    """Pick the task and fixed batch for a model kind and build its factory.

    Args:
        model: a kind ("mlp", "gpt", "llama", "cnn") or a full zoo config.
        widths: the widths that will be built (checked against the model's constraints).
        task: override the default task of the kind.
        batch_size: override the default fixed-batch size of the kind.
        seed: seeds the batch draw (offset from the init seed).
        base_width: the width µP measures against (default the smallest of `widths`).

    Raises:
        UserError: unknown model, a model/task mismatch (a registered model is run once on two
            examples of the task: `experiments.doctor.health.probe_task`), or widths the model
            cannot be built at.
    """
    cfg = _as_model_config(model)
    loaded = load_task(task or default_task(cfg))
    bs = batch_size or default_batch(cfg, loaded.info)
    if bs < 1:
        raise UserError(f"batch size must be >= 1, got {bs}")
    errors = model_errors(cfg, loaded.info, list(widths), base_width or min(widths))
    if errors:
        raise UserError("; ".join(errors))
    batch = coord_batch(loaded, bs, seed)
    factory = model_factory(cfg, loaded.info)
    if isinstance(cfg, CustomModelConfig):  # says nothing about its task: try it on one batch
        probe_task(factory, (batch[0][:2], batch[1][:2]), loaded.loss,
                   base_width or min(widths), cfg.name, loaded.info.name)
    return CoordCheckSetup(cfg, loaded, factory, batch)


def check_run_args(param: str, optimizer: str, steps: int, lr: float,
                   optimizer_options: Mapping[str, Any] | None = None) -> None:
    """The scalar arguments of `run_coord_check` (and the doctor's), each refused with its fix."""
    table = resolve_parametrization(param)  # mucore's tables, then the user's
    try:  # unknown names; a depth table refuses SGD and Muon: its rules are Adam/AdamW's
        table.check_family(mucore.settings_family(optimizer, optimizer_options or {}))
    except ValueError as exc:
        raise UserError(f"--optimizer {optimizer}: {exc}") from None
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if not lr > 0:
        raise UserError(f"--lr must be > 0, got {lr}")


def run_coord_check(
    model: str | ModelConfig | dict[str, Any],
    param: str,
    widths: Sequence[int],
    *,
    steps: int = 5,
    optimizer: str = "adam",
    lr: float = 1e-2,
    seed: int = 0,
    base_width: int | None = None,
    zero_readout: bool = True,
    tolerance: float = 0.15,
    task: TaskConfig | None = None,
    batch_size: int | None = None,
    optimizer_options: Mapping[str, Any] | None = None,
) -> mucore.CoordCheckResult:
    """Coordinate check of a zoo model over a width ladder (TP5, Appendix D).

    Args:
        model: "mlp", "gpt", "llama", "cnn" or a zoo config.
        param: "sp" or "mup".
        widths: increasing widths, ideally spanning >= 8x.
        steps: training steps recorded (step 1 is the model at init).
        optimizer: a registered optimizer name (`mucore.optimizer_names()`).
        lr: global learning rate.
        seed: init seed (the batch uses a seed derived from it).
        base_width: width where µP equals SP; default the first width.
        zero_readout: zero-initialise the readout (TP5's recommendation), so the output is
            exactly 0 at step 1 at every width instead of shrinking like 1/sqrt(m) (which the
            role-aware verdict allows too: False keeps the model's own readout init).
        tolerance: largest |slope| that passes.
        task, batch_size: override the kind's default task and fixed-batch size.
        optimizer_options: Muon's `adjust_lr_fn` / `hidden_lr_correction`
            (`mucore.build_optimizer`).

    Raises:
        UserError: any bad input, named with its fix.
    """
    ws = validate_widths(widths)
    check_run_args(param, optimizer, steps, lr, optimizer_options)
    base = ws[0] if base_width is None else int(base_width)
    if base < 1:
        raise UserError(f"--base-width must be >= 1, got {base}")
    prepared = prepare(model, [*ws, base], task=task, batch_size=batch_size, seed=seed,
                       base_width=base)
    shapes = infer_shapes(prepared.factory, base, ws)
    return mucore.coord_check(
        prepared.factory,
        shapes,
        ws,
        prepared.batch,
        prepared.task.loss,
        parametrization=param,
        hparams=mucore.HParams(zero_readout=zero_readout),
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        seed=seed,
        tolerance=tolerance,
        optimizer_kwargs=dict(optimizer_options or {}),
    )


# The zoo's configs cap `depth` at 64; a ladder beyond it would build unvalidated models.
MAX_DEPTH = 64


def _check_model(cfg: ModelConfig, param: str, optimizer: str) -> None:
    residual = cfg.residual if isinstance(cfg, MLPConfig) else None
    name = cfg.name if isinstance(cfg, CustomModelConfig) else cfg.kind  # a registered model
    problem = depth_problem(name, residual, param, optimizer)
    if problem:
        raise UserError(problem)


def run_coord_check_depth(
    model: str | ModelConfig | dict[str, Any],
    param: str,
    depths: Sequence[int],
    width: int,
    *,
    steps: int = 5,
    optimizer: str = "adam",
    lr: float = 1e-2,
    seed: int = 0,
    base_width: int | None = None,
    base_depth: int | None = None,
    zero_readout: bool = True,
    tolerance: float = 0.15,
    task: TaskConfig | None = None,
    batch_size: int | None = None,
) -> mucore.CoordCheckResult:
    """Coordinate check of a zoo model over a depth ladder at one width.

    Args:
        model: "gpt", "llama", "mlp" (with residual: true) or such a zoo config.
        param: any registered parametrization (the tables with depth rules keep the slopes flat).
        depths: at least two strictly increasing depths (residual blocks), e.g. 2, 4, 8, 16.
        width: the width every depth is built at.
        steps, optimizer, lr, seed, zero_readout, tolerance: as the width check's.
        base_width: the width µP measures against; default `width` (m_N = 1).
        base_depth: the depth the depth rules measure against; default the first depth.
        task, batch_size: override the kind's default task and fixed-batch size.

    Raises:
        UserError: a bad ladder, a model without residual blocks, a depth table with SGD, or
            a width the model cannot be built at; each names the flag to change.
    """
    ds = validate_depths(depths)
    if ds[-1] > MAX_DEPTH:
        raise UserError(f"--depths: at most {MAX_DEPTH} blocks (the zoo's limit), got {ds[-1]}")
    check_run_args(param, optimizer, steps, lr)
    cfg = _as_model_config(model)
    _check_model(cfg, param, optimizer)
    bw = width if base_width is None else int(base_width)
    bd = ds[0] if base_depth is None else int(base_depth)
    if width < 1 or bw < 1 or bd < 1:
        raise UserError(f"--width, --base-width and --base-depth must be >= 1, got {width}, "
                        f"{bw} and {bd}")
    loaded = load_task(task or DEFAULT_TASKS[cfg.kind])
    errors = check_task(cfg, loaded.info) + check_widths(cfg, loaded.info, sorted({width, bw}))
    if errors:
        raise UserError("; ".join(errors))
    factory = depth_model_factory(cfg, loaded.info)
    delta_width = 2 * bw if width == bw else width
    try:
        shapes = mucore.infer_base_shapes(factory, bw, delta_width, base_depth=bd,
                                          delta_depth=next((d for d in ds if d > bd), 2 * bd))
    except mucore.ShapeInferenceError as exc:
        raise UserError(f"--model {cfg.kind}: {exc}") from None
    batch = coord_batch(loaded, batch_size or DEFAULT_BATCH[cfg.kind], seed)
    return mucore.coord_check_depth(
        factory, shapes, ds, width, batch, loaded.loss, param,
        mucore.HParams(zero_readout=zero_readout), optimizer=optimizer, lr=lr, steps=steps,
        seed=seed, tolerance=tolerance,
    )


def coord_payload(result: mucore.CoordCheckResult) -> dict[str, Any]:
    """The `coord-check --json` shape of a check along any axis: `result.to_dict()` (`axis`,
    `param`, `verdict`, `max_abs_slope`, `modules` [{module, step, slope}], `records`,
    `offenders`, `roles`, `violations`, `notes`, the rungs under `widths`/`depths`, a depth
    ladder's fixed `width`) plus `table`, the records again (the dashboard's coord_frames reads
    "table")."""
    out = result.to_dict()
    out["table"] = out["records"]
    return out


def infer_shapes(
    factory: Callable[[int], nn.Module], base_width: int, widths: Sequence[int] = ()
) -> mucore.BaseShapes:
    """Base shapes at `base_width`, compared against another width of the ladder (or 2x).

    Raises:
        UserError: the model family cannot be matched into µP roles.
    """
    delta = next((w for w in widths if w != base_width), 2 * base_width)
    try:
        return mucore.infer_base_shapes(factory, base_width, delta)
    except mucore.ShapeInferenceError as exc:
        raise UserError(str(exc)) from None


def describe_rows(
    model: str | ModelConfig | dict[str, Any],
    param: str,
    width: int,
    base_width: int,
    optimizer: str = "adam",
    *,
    task: TaskConfig | None = None,
    depth: int | None = None,
    base_depth: int | None = None,
    optimizer_options: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The µP describe table of a zoo model at `width` against `base_width`, as dicts.

    The model is built on the meta device (no memory at any width) and parametrized without
    drawing weights: describe needs only shapes and rules. With `depth` and `base_depth` the
    base shapes know the repeated residual blocks too, and each block parameter's row carries
    `depth_mult` (m_L = depth / base_depth) and `branch_mult` (m_L^(-alpha) under the tables
    with depth rules, CompleteP and depth-µP; 1 under sp and mup).

    Raises:
        UserError: unknown model/parametrization/optimizer, widths the model cannot take, or
            depths on a model without residual blocks.
    """
    resolve_parametrization(param)
    if optimizer not in mucore.optimizer_names():
        raise UserError(f"unknown optimizer '{optimizer}': choose one of "
                        f"{', '.join(mucore.optimizer_names())}")
    if width < 1 or base_width < 1:
        raise UserError(f"--width and --base-width must be >= 1, got {width} and {base_width}")
    cfg = _as_model_config(model)
    info = task_info(task or default_task(cfg))
    errors = model_errors(cfg, info, [width, base_width], base_width)
    if errors:
        raise UserError("; ".join(errors))
    if depth is None and base_depth is None:
        factory = model_factory(cfg, info)
        shapes = infer_shapes(factory, base_width, [width])
        with torch.device("meta"):
            net = factory(width)
    else:
        net, shapes = _depth_net(cfg, info, width, base_width, depth, base_depth)
    setup = mucore.parametrize(net, shapes, param, mucore.HParams(), reinit=False)
    try:
        return [row.to_dict() for row in mucore.describe(setup, optimizer, optimizer_options)]
    except ValueError as exc:  # a depth table refuses SGD and Muon
        raise UserError(f"--optimizer {optimizer}: {exc}") from None


def _depth_net(cfg: ModelConfig, info: TaskInfo, width: int, base_width: int,
               depth: int | None, base_depth: int | None) -> tuple[nn.Module, mucore.BaseShapes]:
    """The model at (width, depth) on the meta device and base shapes that know its blocks."""
    if depth is None or base_depth is None:
        raise UserError("--depth and --base-depth go together: give both, or neither for a "
                        "width-only table")
    if depth < 1 or base_depth < 1:
        raise UserError(f"--depth and --base-depth must be >= 1, got {depth} and {base_depth}")
    if isinstance(cfg, MLPConfig) and not cfg.residual:
        raise UserError("--model mlp: depth multipliers need residual blocks: add --option "
                        "residual=true")
    factory = depth_model_factory(cfg, info)
    delta_width = width if width != base_width else 2 * base_width
    delta_depth = depth if depth > base_depth else 2 * base_depth  # a second, deeper build
    try:
        shapes = mucore.infer_base_shapes(factory, base_width, delta_width,
                                          base_depth=base_depth, delta_depth=delta_depth)
    except mucore.ShapeInferenceError as exc:
        raise UserError(str(exc)) from None
    with torch.device("meta"):
        return factory(width, depth), shapes
