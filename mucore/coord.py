"""Coordinate check: do activation sizes stay put as width grows?

TP5 (Yang et al., 2022), Section 5 / Appendix D ("coordinate check"): train a model for a few
steps at several widths on one fixed batch, record the typical size of every module's output
(mean |x| over all coordinates) at every step, and look at how it scales with width. Under µP
every activation stays Θ(1) in width at every step; a parametrization error makes some
activation grow (or vanish) like a power of width. We fit the slope of log2(mean |x|) against
log2(width) per (module, step): µP gives slopes near 0, SP under Adam gives slopes around 0.5
to 1 from step 2 on (updates of size lr per entry add up across a growing fan_in).

The computation returns a long table and slopes; plotting is somebody else's job.

Note on the readout at step 1: in the Table 8 form used by mucore the readout weight keeps the
base init std and its input is multiplied by alpha_out / m, so the network output at init shrinks
like 1/sqrt(m) (slope -0.5 at step 1). That is µP-correct (the output tends to 0 at init); pass
`HParams(zero_readout=True)` to make it exactly 0 at every width (slope 0), as TP5 recommends.
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
from mucore.optim import build_optimizer
from mucore.parametrizations import Parametrization, get_parametrization
from mucore.roles import BaseShapes, canonical_name

# Modules that only hold other modules and have no forward of their own worth measuring.
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class CoordRecord(NamedTuple):
    """One row of the long table: mean |output| of `module` at `step` for the model of `width`."""

    width: int
    module: str
    step: int
    value: float


class CoordSlope(NamedTuple):
    """Least-squares slope of log2(value) against log2(width) for one (module, step)."""

    module: str
    step: int
    slope: float


@dataclass
class CoordCheckResult:
    """Outcome of `coord_check`.

    Attributes:
        param: the parametrization's name.
        widths: the widths checked (increasing).
        steps: number of recorded steps (t = 1..steps; t = 1 is the forward at init).
        tolerance: largest |slope| still counted as width-independent.
        records: the long table, one row per (width, module, step).
        slopes: one slope per (module, step); +inf where a module is exactly zero at some
            widths and not at others, or where a value is not finite.
        max_abs_slope: the largest |slope| (0 when there are no modules).
        verdict: "pass" if every |slope| <= tolerance, else "fail".
        offenders: modules with some |slope| > tolerance, worst first.
    """

    param: str
    widths: list[int]
    steps: int
    tolerance: float
    records: list[CoordRecord] = field(default_factory=list)
    slopes: list[CoordSlope] = field(default_factory=list)
    max_abs_slope: float = 0.0
    verdict: str = "pass"
    offenders: list[str] = field(default_factory=list)

    def slope(self, module: str, step: int) -> float:
        """The slope of one (module, step); KeyError if it was not recorded."""
        for s in self.slopes:
            if s.module == module and s.step == step:
                return s.slope
        raise KeyError(f"no slope for module '{module}' at step {step}")

    def worst_slope(self, module: str) -> float:
        """The largest |slope| of one module over all steps."""
        values = [abs(s.slope) for s in self.slopes if s.module == module]
        if not values:
            raise KeyError(f"module '{module}' was not recorded")
        return max(values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the `coord-check --json` contract). Non-finite slopes stay floats
        (Python's json writes them as Infinity/NaN, which Python and pandas read back)."""
        return {
            "param": self.param,
            "verdict": self.verdict,
            "max_abs_slope": self.max_abs_slope,
            "tolerance": self.tolerance,
            "widths": list(self.widths),
            "steps": self.steps,
            "modules": [
                {"module": s.module, "step": s.step, "slope": s.slope} for s in self.slopes
            ],
            "records": [r._asdict() for r in self.records],
            "offenders": list(self.offenders),
        }


def measured_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The submodules a coord check records: every named module except the root and pure
    containers (Sequential, ModuleList, ModuleDict); leaves and blocks are both kept."""
    out = []
    for name, module in model.named_modules():
        if not name or isinstance(module, _CONTAINERS):
            continue
        out.append((canonical_name(name), module))
    return out


def _first_tensor(output: Any) -> Tensor | None:
    # Modules may return tuples (attention weights, caches): the first tensor is the activation.
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def log2_slope(widths: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of log2(value) against log2(width).

    Rules: all values exactly 0 -> 0 (e.g. a zero-initialised readout at step 1 is exactly
    width-independent); a mix of zero and non-zero values, or any non-finite or negative value,
    -> +inf (the module is not width-independent in any sense a slope can describe).
    """
    if len(widths) != len(values) or len(widths) < 2:
        raise ValueError("need one value per width and at least two widths")
    if all(v == 0.0 for v in values):
        return 0.0
    if any(not math.isfinite(v) or v <= 0.0 for v in values):
        return math.inf
    xs = [math.log2(w) for w in widths]
    ys = [math.log2(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def _check_widths(widths: Sequence[int]) -> list[int]:
    ws = [int(w) for w in widths]
    if len(ws) < 2:
        raise ValueError(f"a coord check needs at least two widths, got {ws}")
    for a, b in zip(ws, ws[1:], strict=False):
        if b <= a:
            raise ValueError(f"widths must increase: got {b} after {a}")
    if ws[0] <= 0:
        raise ValueError(f"widths must be positive, got {ws[0]}")
    return ws


def _run_width(
    model: nn.Module,
    base_shapes: BaseShapes,
    parametrization: Parametrization,
    hparams: HParams,
    optimizer: str,
    lr: float,
    optimizer_kwargs: dict[str, Any],
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int,
    seed: int,
) -> dict[tuple[str, int], float]:
    """Train one model for `steps` steps; mean |output| per (module, step)."""
    x, y = batch
    model.to(x.device).train()
    setup = parametrize(model, base_shapes, parametrization, hparams, seed=seed)
    opt = build_optimizer(model, setup, optimizer, lr, **optimizer_kwargs)
    # A module may run several times per forward (weight sharing): average its calls.
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            t = _first_tensor(output)
            if t is None or not t.is_floating_point():
                return
            sums[name] = sums.get(name, 0.0) + t.detach().abs().float().mean().item()
            counts[name] = counts.get(name, 0) + 1

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in measured_modules(model)]
    values: dict[tuple[str, int], float] = {}
    try:
        for t in range(1, steps + 1):
            sums.clear()
            counts.clear()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)  # records this step's activations (before the update)
            for name, total in sums.items():
                values[(name, t)] = total / counts[name]
            loss.backward()
            opt.step()
    finally:
        for h in handles:
            h.remove()
    return values


def coord_check(
    factory: Callable[[int], nn.Module],
    base_shapes: BaseShapes,
    widths: Sequence[int],
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    parametrization: str | Parametrization = "mup",
    hparams: HParams | None = None,
    optimizer: str = "adam",
    lr: float = 1e-2,
    steps: int = 5,
    seed: int = 0,
    tolerance: float = 0.15,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> CoordCheckResult:
    """Run a coordinate check (TP5, Section 5 and Appendix D).

    For each width: build `factory(width)`, `mucore.parametrize` it (seed `seed`), build the
    µP optimizer, then for t = 1..steps: forward on the fixed batch while forward hooks record
    mean |output| of every measured module, backward, step. Step 1 therefore measures the
    model at init. Then fit, per (module, step), the slope of log2(value) vs log2(width).

    Args:
        factory: `width -> nn.Module`, the family `base_shapes` describes.
        base_shapes: from `mucore.infer_base_shapes`.
        widths: increasing widths, ideally spanning >= 8x (e.g. 64..1024).
        batch: one fixed (inputs, targets) pair used at every step and width.
        loss_fn: `(model_output, targets) -> scalar loss`.
        parametrization: "mup", "sp" or a registered table.
        hparams: global knobs; `HParams(zero_readout=True)` makes step 1's output exactly 0.
        optimizer: "adam", "adamw" or "sgd".
        lr: global learning rate; fairly large so that errors show within a few steps.
        steps: recorded steps (>= 1).
        seed: init seed (also seeds torch's global RNG before each build).
        tolerance: largest |slope| that passes; 0.15 is looser than the reference package's
            ratio test (within 1/1.2..1.2 per width doubling, i.e. |slope| <= 0.26) yet well
            below SP's 0.5..1.
        optimizer_kwargs: extra keyword arguments for `mucore.build_optimizer`.

    Returns:
        A `CoordCheckResult` with the long table, the slopes and the verdict.

    Raises:
        ValueError: fewer than two widths, widths not increasing, steps < 1, or the factory
            builds different modules at different widths.
    """
    ws = _check_widths(widths)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    param = get_parametrization(parametrization)
    hp = hparams or HParams()
    kwargs = dict(optimizer_kwargs or {})

    per_width: dict[int, dict[tuple[str, int], float]] = {}
    module_order: list[str] = []
    for w in ws:
        torch.manual_seed(seed)  # any randomness the factory or model uses beyond parametrize
        model = factory(w)
        names = [n for n, _ in measured_modules(model)]
        if not module_order:
            module_order = names
        elif names != module_order:
            extra = sorted(set(names) ^ set(module_order))[:5]
            raise ValueError(
                f"the factory builds different modules at width {w} ({extra}): it must build the "
                "same modules with the same names at every width"
            )
        per_width[w] = _run_width(
            model, base_shapes, param, hp, optimizer, lr, kwargs, batch, loss_fn, steps, seed
        )
        del model

    records: list[CoordRecord] = []
    for w in ws:
        for name in module_order:
            for t in range(1, steps + 1):
                if (name, t) in per_width[w]:
                    records.append(CoordRecord(w, name, t, per_width[w][(name, t)]))

    slopes: list[CoordSlope] = []
    for name in module_order:
        for t in range(1, steps + 1):
            present = [(name, t) in per_width[w] for w in ws]
            if not any(present):
                continue  # a module that never outputs a float tensor (e.g. an index op)
            if not all(present):
                slopes.append(CoordSlope(name, t, math.inf))
                continue
            vals = [per_width[w][(name, t)] for w in ws]
            slopes.append(CoordSlope(name, t, log2_slope(ws, vals)))

    return summarize(param.name, ws, steps, tolerance, records, slopes)


def summarize(
    param: str,
    widths: list[int],
    steps: int,
    tolerance: float,
    records: list[CoordRecord],
    slopes: list[CoordSlope],
) -> CoordCheckResult:
    """Turn slopes into a verdict: pass iff every |slope| <= tolerance (NaN counts as a fail)."""
    worst: dict[str, float] = {}
    for s in slopes:
        a = abs(s.slope) if not math.isnan(s.slope) else math.inf
        worst[s.module] = max(worst.get(s.module, 0.0), a)
    max_abs = max(worst.values(), default=0.0)
    offenders = sorted((m for m, a in worst.items() if a > tolerance), key=lambda m: -worst[m])
    return CoordCheckResult(
        param=param,
        widths=widths,
        steps=steps,
        tolerance=tolerance,
        records=records,
        slopes=slopes,
        max_abs_slope=max_abs,
        verdict="fail" if offenders else "pass",
        offenders=offenders,
    )
