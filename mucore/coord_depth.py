"""Coordinate check over depth: do activation sizes stay put as residual blocks are added?

The depth analogue of `mucore.coord_check` (TP5's coordinate check, with depth in place of
width; Dey et al. 2025 and Yang et al. 2023, TP VI, check their depth parametrizations the same
way). At one width, train the model for a few steps at several depths on one fixed batch, record
mean |x| of the modules every depth shares, and fit the slope of log2(mean |x|) against
log2(depth) per (module, step):

1. measured: every module outside the repeated blocks (embeddings, final norm, readout) and,
   named `{prefix}.last...`, the last block and its submodules (the residual stream at the top
   of the stack and the last branch), which exist at every depth; not the `ResidualBranch`
   outputs, which are m_L^(-alpha) x a feature by construction (a block's share of the stream);
2. CompleteP (alpha = 1) keeps every slope near 0: the stream is x_0 plus an average of the
   branches, not a sum; without the branch multiplier (SP, µP) the stream grows with depth
   (a sum of L branches: slope about 1/2 at init, up to 1 once the updates line up);
3. verdict: "pass" when max |slope| <= tolerance over every measured (module, step).

Compute returns data; plotting is somebody else's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mucore.hparams import HParams
from mucore.init import parametrize
from mucore.layers import ResidualBranch
from mucore.optim import build_optimizer
from mucore.roles import BaseShapes, canonical_name

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
LAST = "last"  # the last block's index in measured module names


class DepthCoordRecord(NamedTuple):
    """One row of the long table: mean |output| of `module` at `step` for the model of `depth`."""

    depth: int
    module: str
    step: int
    value: float


class DepthCoordSlope(NamedTuple):
    """Least-squares slope of log2(value) against log2(depth) for one (module, step)."""

    module: str
    step: int
    slope: float


@dataclass
class DepthCoordResult:
    """Outcome of `coord_check_depth`.

    Attributes:
        param: the parametrization's name.
        width: the one width every depth was built at.
        depths: the depths checked (increasing).
        steps: recorded steps (t = 1 is the forward at init).
        tolerance: the largest |slope| the verdict allows.
        records: the long table, one row per (depth, module, step).
        slopes: one slope per (module, step); +inf where a value is not finite, or zero at
            some depths only.
        max_abs_slope: the largest |slope|.
        verdict: "pass" or "fail".
        offenders: modules whose |slope| exceeds the tolerance at some step, worst first.
    """

    param: str
    width: int
    depths: list[int]
    steps: int
    tolerance: float
    records: list[DepthCoordRecord] = field(default_factory=list)
    slopes: list[DepthCoordSlope] = field(default_factory=list)
    max_abs_slope: float = 0.0
    verdict: str = "pass"
    offenders: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, `axis: "depth"`, slopes keyed like the width check's."""
        return {
            "axis": "depth",
            "param": self.param,
            "width": self.width,
            "depths": self.depths,
            "steps": self.steps,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "max_abs_slope": self.max_abs_slope,
            "offenders": self.offenders,
            "slopes": [s._asdict() for s in self.slopes],
            "records": [r._asdict() for r in self.records],
        }


def depth_slope(depths: Sequence[int], values: Sequence[float]) -> float:
    """Slope of log2(value) against log2(depth); 0 if all values are 0, +inf if some are."""
    if not all(math.isfinite(v) for v in values):
        return math.inf
    if all(v == 0 for v in values):
        return 0.0
    if any(v <= 0 for v in values):
        return math.inf
    xs = [math.log2(d) for d in depths]
    ys = [math.log2(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _measured(model: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """Modules every depth shares: those outside the blocks, and the last block's (renamed)."""
    blocks = model.get_submodule(prefix)
    last = str(len(blocks) - 1)  # type: ignore[arg-type]
    out = []
    for raw, module in model.named_modules():
        name = canonical_name(raw)
        if not name or isinstance(module, (*_CONTAINERS, ResidualBranch)):
            continue
        if name.startswith(prefix + "."):
            index, _, rest = name[len(prefix) + 1 :].partition(".")
            if index != last:
                continue
            name = ".".join(p for p in (prefix, LAST, rest) if p)
        out.append((name, module))
    return out


def _first_tensor(output: Any) -> Tensor | None:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list):
        return next((o for o in output if isinstance(o, Tensor)), None)
    return None


def _run_depth(
    model: nn.Module,
    prefix: str,
    depth: int,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int,
) -> list[DepthCoordRecord]:
    records: list[DepthCoordRecord] = []
    current: dict[str, float] = {}
    hooks = []
    for name, module in _measured(model, prefix):

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            t = _first_tensor(out)
            if t is not None and t.is_floating_point():
                current[name] = float(t.detach().abs().mean())

        hooks.append(module.register_forward_hook(hook))
    x, y = batch
    try:
        for step in range(1, steps + 1):
            current.clear()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            records.extend(DepthCoordRecord(depth, n, step, v) for n, v in current.items())
            loss.backward()
            optimizer.step()
    finally:
        for h in hooks:
            h.remove()
    return records


def coord_check_depth(
    factory: Callable[[int, int], nn.Module],
    base_shapes: BaseShapes,
    depths: Sequence[int],
    width: int,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    parametrization: str = "completep",
    hparams: HParams | None = None,
    *,
    optimizer: str = "adam",
    lr: float = 1e-2,
    steps: int = 5,
    seed: int = 0,
    tolerance: float = 0.15,
) -> DepthCoordResult:
    """Coordinate check across `depths` at one `width` (see the module docstring).

    Args:
        factory: `f(width, depth) -> nn.Module`, the factory `base_shapes` was inferred from.
        base_shapes: depth-aware base shapes (`infer_base_shapes(..., base_depth=...)`).
        depths: at least two increasing depths (e.g. 2, 4, 8, 16).
        width: the width every depth is built at.
        batch: one fixed (inputs, targets) batch, reused at every step and depth.
        loss_fn: `(outputs, targets) -> scalar`.
        parametrization: "completep", "depth-mup", "mup", "sp" or a registered table.
        hparams: global knobs.
        optimizer: "adam" or "adamw" ("sgd" under the depth tables is refused).
        lr: global learning rate (fairly large, so growth shows within a few steps).
        steps: recorded steps.
        seed: init seed (the same at every depth).
        tolerance: the largest |slope| that passes.

    Raises:
        ValueError: base shapes without depth, depths not increasing or fewer than two, or
            steps < 1.
    """
    if base_shapes.block_prefix is None:
        raise ValueError(
            "base shapes know no depth: infer them with infer_base_shapes(factory, base_width, "
            "base_depth=...) and a factory(width, depth)"
        )
    ds = [int(d) for d in depths]
    if len(ds) < 2 or any(b <= a for a, b in zip(ds, ds[1:], strict=False)):
        raise ValueError(f"depths must be at least two increasing values, got {list(depths)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    prefix = base_shapes.block_prefix
    records: list[DepthCoordRecord] = []
    name = parametrization
    for depth in ds:
        model = factory(width, depth)
        setup = parametrize(model, base_shapes, parametrization, hparams, seed=seed)
        name = setup.parametrization.name
        opt = build_optimizer(model, setup, optimizer, lr)
        records += _run_depth(model, prefix, depth, batch, loss_fn, opt, steps)
    return _summarize(name, width, ds, steps, tolerance, records)


def _summarize(param: str, width: int, depths: list[int], steps: int, tolerance: float,
               records: list[DepthCoordRecord]) -> DepthCoordResult:
    table: dict[tuple[str, int], dict[int, float]] = {}
    for r in records:
        table.setdefault((r.module, r.step), {})[r.depth] = r.value
    slopes = [
        DepthCoordSlope(module, step, depth_slope(depths, [by_depth[d] for d in depths]))
        for (module, step), by_depth in table.items()
        if len(by_depth) == len(depths)
    ]
    worst: dict[str, float] = {}
    for s in slopes:
        worst[s.module] = max(worst.get(s.module, 0.0), abs(s.slope))
    max_abs = max(worst.values(), default=0.0)
    offenders = sorted((m for m, v in worst.items() if v > tolerance), key=lambda m: -worst[m])
    return DepthCoordResult(
        param=param, width=width, depths=depths, steps=steps, tolerance=tolerance,
        records=records, slopes=slopes, max_abs_slope=max_abs,
        verdict="fail" if offenders else "pass", offenders=offenders,
    )
