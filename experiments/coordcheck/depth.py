"""Coordinate check over depth for zoo models: the data behind `coord-check --depths`.

At one width, build the model at each depth of a ladder, parametrize it against base shapes
inferred from two depths (the repeated residual blocks are what the deeper build adds), train a
few steps on one fixed batch and fit log2(mean |x|) against log2(depth) per module and step
(`mucore.coord_check_depth`; Dey et al. 2025, arXiv 2505.01618, Figure 7's check; Yang et al.
2023, TP VI). Under CompleteP the slopes stay near 0; without the branch multiplier (`mup`,
`sp`) the residual stream grows with depth.

Functions here return data and never print; bad input raises `UserError` naming the flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mucore
from experiments.coordcheck.check import (
    DEFAULT_BATCH,
    DEFAULT_TASKS,
    _as_model_config,
    check_run_args,
    coord_batch,
)
from experiments.coordcheck.request import depth_problem, validate_depths
from experiments.errors import UserError
from experiments.models import (
    CustomModelConfig,
    MLPConfig,
    ModelConfig,
    check_task,
    check_widths,
)
from experiments.models.zoo import depth_model_factory
from experiments.tasks import TaskConfig, load_task

# The zoo's configs cap `depth` at 64; a ladder beyond it would build unvalidated models.
MAX_DEPTH = 64
# The batch seed differs from the init seed (as in the width check), so the two are unrelated.


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
) -> mucore.DepthCoordResult:
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


def depth_payload(result: mucore.DepthCoordResult) -> dict[str, Any]:
    """The `coord-check --json` shape of a depth check: the width check's fields (`param`,
    `verdict`, `max_abs_slope`, `modules` [{module, step, slope}], `records`, `table`,
    `offenders`) plus `axis: "depth"`, `depths` and the fixed `width`."""
    out = result.to_dict()
    out["modules"] = out.pop("slopes")
    out["table"] = out["records"]  # the dashboard's coord_frames reads "table"
    out.setdefault("violations", [])
    out.setdefault("notes", [])
    return out
