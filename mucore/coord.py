"""Coordinate check: do activation sizes stay put along a ladder (width, or depth)?

TP5 (Yang et al., 2022), Section 5 / Appendix D ("coordinate check"): train a model for a few
steps at several widths on one fixed batch, record the typical size of every module's output
(mean |x| over all coordinates) at every step, and look at how it scales with width. Under µP
every activation stays Θ(1) in width at every step; a parametrization error makes some
activation grow (or vanish) like a power of width. We fit the slope of log2(mean |x|) against
log2(width) per (module, step): µP gives slopes near 0, SP under Adam gives slopes around 0.5
to 1 from step 2 on (updates of size lr per entry add up across a growing fan_in).

The same check runs along any ladder axis (`coord_check_ladder`): over depth (`coord_check_depth`;
Dey et al. 2025 and Yang et al. 2023, TP VI, check their depth parametrizations the same way) the
model is built at one width and several depths, the measured modules are those every depth
shares (outside the blocks, and the last block renamed `{prefix}.last...`, never the
`ResidualBranch` outputs, which are m_L^(-alpha) x a feature by construction), and the slope is
fitted against log2(depth). CompleteP (alpha = 1) keeps every slope near 0; without the branch
multiplier (SP, µP) the residual stream grows with depth (slope about 1/2 at init, up to 1).

One measurement rule holds on every axis (`_run_rung`): a module that runs several times in one
forward (a block reused across depth, a layer applied per position, weight sharing) is recorded
as the mean of its calls' mean |output|. With calls of equal size that is mean |x| over every
output coordinate the module produced in that forward, the per-coordinate size TP5's check is
about; keeping only the last call would measure one application, depend on call order, and miss
an earlier call that grows with the ladder.

The computation returns a long table and slopes; plotting is somebody else's job.

The verdict is role-aware (`summarize`): it judges each module by what µP promises for its role,
not by |slope| alone. In the Table 8 form used by mucore the readout weight keeps the base init
std and its input is multiplied by alpha_out / m, so the network output at init shrinks like
1/sqrt(m) (slope -0.5 at step 1): µP-correct (the output tends to 0 at init), so the verdict
allows it. `HParams(zero_readout=True)` makes it exactly 0 at every width (slope 0), as TP5
recommends.
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
from mucore.layers import ResidualBranch, TiedReadout
from mucore.optim import build_optimizer
from mucore.parametrizations import Parametrization, get_parametrization
from mucore.roles import BaseShapes, Role, canonical_name

# Modules that only hold other modules and have no forward of their own worth measuring.
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class CoordRecord(NamedTuple):
    """One row of the long table: mean |output| of `module` at `step` for the model at `rung`
    (its width on a width ladder, its depth on a depth ladder; `to_dict` names it by the axis)."""

    rung: int
    module: str
    step: int
    value: float

    @property
    def width(self) -> int:
        """The rung of a width ladder (the field's name before other axes existed)."""
        return self.rung

    @property
    def depth(self) -> int:
        """The rung of a depth ladder."""
        return self.rung


class CoordSlope(NamedTuple):
    """Least-squares slope of log2(value) against log2(rung) for one (module, step)."""

    module: str
    step: int
    slope: float


# Module roles of the verdict: the readout (the network output) and every other module, whose
# output is a feature (input-like and hidden layers, norms, activations, blocks).
READOUT, FEATURE = "readout", "feature"

# The rules a module can break, one line each (what a violation's `rule` names).
RULES: dict[str, str] = {
    "finite": "every activation is finite and non-zero at every width, or zero at all of them",
    "no_growth": "no activation grows with width (TP5: every coordinate stays O(1))",
    "features_move": "features do not vanish once training starts (TP5: µP's updates keep "
    "every hidden feature Θ(1); a vanishing one has stopped learning at large width)",
    "no_shrink": "no activation shrinks along the ladder either (the depth rules, CompleteP "
    "and depth-µP, keep every activation the depths share Θ(1) from init on)",
    "readout_moves": "once trained, the output shrinks no faster than 1/sqrt(m) (TP5: the "
    "learned part of the output is Θ(1); only the init part may shrink, like 1/sqrt(m) under "
    "Table 8)",
}

# Table 8 form: the readout's output at init is W0 (alpha_out / m) h with W0 independent of h:
# Θ(1/sqrt(m)), a slope of -1/2 against log2(width).
READOUT_INIT_SLOPE = -0.5


class CoordViolation(NamedTuple):
    """One broken rule: `module` (of `role`) at `step` has `slope`, which `rule` forbids."""

    module: str
    role: str
    step: int
    slope: float
    rule: str
    message: str


# How a ladder's verdict judges slopes: by module role (width: the readout may shrink at init,
# TP5 Table 8) or flat (depth: every shared activation stays put from init on).
ROLE_AWARE, FLAT = "roles", "flat"


@dataclass
class CoordCheckResult:
    """Outcome of a coordinate check along one ladder axis (`coord_check`, `coord_check_depth`).

    Attributes:
        param: the parametrization's name.
        ladder: the rungs checked (increasing): widths on a width ladder, depths on a depth one.
        steps: number of recorded steps (t = 1..steps; t = 1 is the forward at init).
        tolerance: how far a slope may stray from what its role allows (see `summarize`).
        records: the long table, one row per (rung, module, step).
        slopes: one slope per (module, step); +inf where a module is exactly zero at some
            rungs and not at others, or where a value is not finite.
        max_abs_slope: the largest |slope| (0 when there are no modules).
        verdict: "pass" if no module breaks a rule (see `summarize`), else "fail".
        offenders: modules that break a rule, worst first.
        roles: module -> "readout" or "feature" (what the verdict judged it as; empty on a
            flat-judged ladder).
        violations: every broken rule, worst first (a module may break several).
        notes: remarks that do not fail the check (an output still shrinking at the last step).
        axis: the ladder's axis, "width" or "depth".
        fixed: the other axes' values every rung shares (a depth ladder's {"width": 64}).
    """

    param: str
    ladder: list[int]
    steps: int
    tolerance: float
    records: list[CoordRecord] = field(default_factory=list)
    slopes: list[CoordSlope] = field(default_factory=list)
    max_abs_slope: float = 0.0
    verdict: str = "pass"
    offenders: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    violations: list[CoordViolation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    axis: str = "width"
    fixed: dict[str, int] = field(default_factory=dict)

    @property
    def widths(self) -> list[int]:
        """The rungs of a width ladder."""
        return self._rungs("width")

    @property
    def depths(self) -> list[int]:
        """The rungs of a depth ladder."""
        return self._rungs("depth")

    @property
    def width(self) -> int:
        """The one width a depth ladder was built at."""
        if "width" not in self.fixed:
            raise AttributeError(f"a {self.axis} ladder has no fixed width: read .ladder")
        return self.fixed["width"]

    def _rungs(self, axis: str) -> list[int]:
        if self.axis != axis:
            raise AttributeError(f"this is a {self.axis} ladder, not a {axis} one: read .ladder")
        return self.ladder

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
        """Plain-JSON form (the `coord-check --json` contract), one shape on every axis:
        `axis`, the rungs under the axis's plural (`widths`, `depths`), the fixed values
        (`width` of a depth ladder), slopes as `modules` [{module, step, slope}] and records
        keyed by the axis ({width|depth, module, step, value}). Non-finite slopes stay floats
        (Python's json writes them as Infinity/NaN, which Python and pandas read back)."""
        return {
            "axis": self.axis,
            "param": self.param,
            "verdict": self.verdict,
            "max_abs_slope": self.max_abs_slope,
            "tolerance": self.tolerance,
            f"{self.axis}s": list(self.ladder),
            **self.fixed,
            "steps": self.steps,
            "modules": [
                {"module": s.module, "step": s.step, "slope": s.slope} for s in self.slopes
            ],
            "records": [
                {self.axis: r.rung, "module": r.module, "step": r.step, "value": r.value}
                for r in self.records
            ],
            "offenders": list(self.offenders),
            "roles": dict(self.roles),
            "violations": [v._asdict() for v in self.violations],
            "notes": list(self.notes),
        }


# The result of a depth check is the same type (its `axis` says "depth").
DepthCoordResult = CoordCheckResult


def measured_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The submodules a coord check records: every named module except the root and pure
    containers (Sequential, ModuleList, ModuleDict); leaves and blocks are both kept."""
    out = []
    for name, module in model.named_modules():
        if not name or isinstance(module, _CONTAINERS):
            continue
        out.append((canonical_name(name), module))
    return out


LAST = "last"  # the last block's index in the names a depth ladder measures


def shared_modules(model: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """The submodules a depth ladder records: those every depth shares. Modules outside the
    block list `prefix`, and the last block and its submodules renamed `{prefix}.last...` (the
    residual stream at the top of the stack and the last branch); never a `ResidualBranch`
    output, which is m_L^(-alpha) x a feature by construction (a block's share of the stream)."""
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


def module_roles(model: nn.Module, base_shapes: BaseShapes) -> dict[str, str]:
    """The verdict's role of every measured module: "readout" when the module's output is the
    network output (it holds an output-role parameter, or is or holds a `TiedReadout`), else
    "feature" (input-like and hidden layers, norms, activations, blocks)."""
    output_params = {n for n, b in base_shapes.params.items() if b.role is Role.OUTPUT}
    readout_names: set[str] = set()
    for mod_name, module in model.named_modules():
        name = canonical_name(mod_name)
        owned = {canonical_name(f"{mod_name}.{p}" if mod_name else p)
                 for p, _ in module.named_parameters(recurse=False)}
        if owned & output_params or isinstance(module, TiedReadout):
            # The module and every module holding it output the logits.
            parts = name.split(".") if name else []
            readout_names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {
        name: READOUT if name in readout_names else FEATURE
        for name, _ in measured_modules(model)
    }


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


def _check_ladder(ladder: Sequence[int], axis: str) -> list[int]:
    rungs = [int(v) for v in ladder]
    if len(rungs) < 2:
        raise ValueError(f"a coord check needs at least two {axis}s, got {rungs}")
    for a, b in zip(rungs, rungs[1:], strict=False):
        if b <= a:
            raise ValueError(f"{axis}s must increase: got {b} after {a}")
    if rungs[0] <= 0:
        raise ValueError(f"{axis}s must be positive, got {rungs[0]}")
    return rungs


def _run_rung(
    model: nn.Module,
    measured: list[tuple[str, nn.Module]],
    opt: torch.optim.Optimizer,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int,
) -> dict[tuple[str, int], float]:
    """Train one (parametrized) model for `steps` steps; mean |output| per (module, step).

    A module that runs several times in one forward is recorded as the mean of its calls'
    mean |output| (the module docstring says why), on every axis.
    """
    x, y = batch
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

    handles = [m.register_forward_hook(make_hook(n)) for n, m in measured]
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


@dataclass(frozen=True)
class LadderRun:
    """How to train one rung of a coordinate check (the arguments every axis shares)."""

    batch: tuple[Tensor, Tensor]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    parametrization: str | Parametrization = "mup"
    hparams: HParams | None = None
    optimizer: str = "adam"
    lr: float = 1e-2
    steps: int = 5
    seed: int = 0
    tolerance: float = 0.15
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)


def coord_check_ladder(
    build: Callable[[int], nn.Module],
    base_shapes: BaseShapes,
    ladder: Sequence[int],
    run: LadderRun,
    *,
    axis: str = "width",
    measure: Callable[[nn.Module], list[tuple[str, nn.Module]]] = measured_modules,
    judge: str = ROLE_AWARE,
    fixed: dict[str, int] | None = None,
) -> CoordCheckResult:
    """The coordinate check along any ladder axis, written once (TP5, Appendix D).

    For each rung v of `ladder`: build `build(v)` (torch's RNG seeded with `run.seed` first),
    `mucore.parametrize` it (seed `run.seed`), build the µP optimizer, then for t = 1..steps:
    forward on the fixed batch while forward hooks record mean |output| of every module
    `measure` names, backward, step. Then fit, per (module, step), the slope of log2(value)
    against log2(rung) and judge it (`summarize`): by role (`ROLE_AWARE`, the width rules) or
    flat (`FLAT`, every |slope| within the tolerance).

    Raises:
        ValueError: fewer than two rungs, rungs not increasing, steps < 1, a bad tolerance, or
            `build` makes modules with different names at different rungs.
    """
    rungs = _check_ladder(ladder, axis)
    if run.steps < 1:
        raise ValueError(f"steps must be >= 1, got {run.steps}")
    if not (math.isfinite(run.tolerance) and run.tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {run.tolerance}")
    param = get_parametrization(run.parametrization)
    per_rung: dict[int, dict[tuple[str, int], float]] = {}
    module_order: list[str] = []
    roles: dict[str, str] = {}
    for v in rungs:
        torch.manual_seed(run.seed)  # any randomness the build uses beyond parametrize
        model = build(v)
        measured = measure(model)
        names = [n for n, _ in measured]
        if not module_order:
            module_order = names
            roles = module_roles(model, base_shapes) if judge == ROLE_AWARE else {}
        elif names != module_order:
            extra = sorted(set(names) ^ set(module_order))[:5]
            raise ValueError(
                f"the factory builds different modules at {axis} {v} ({extra}): it must build "
                f"the same modules with the same names at every {axis}"
            )
        model.to(run.batch[0].device).train()
        setup = parametrize(model, base_shapes, param, run.hparams or HParams(), seed=run.seed)
        opt = build_optimizer(model, setup, run.optimizer, run.lr, **run.optimizer_kwargs)
        per_rung[v] = _run_rung(model, measured, opt, run.batch, run.loss_fn, run.steps)
        del model
    records, slopes = _fit_slopes(rungs, module_order, run.steps, per_rung)
    return summarize(param.name, rungs, run.steps, run.tolerance, records, slopes, roles,
                     axis=axis, judge=judge, fixed=fixed)


def _fit_slopes(
    rungs: list[int], module_order: list[str], steps: int,
    per_rung: dict[int, dict[tuple[str, int], float]],
) -> tuple[list[CoordRecord], list[CoordSlope]]:
    """The long table and one slope per (module, step); +inf for a module some rungs lack."""
    records = [CoordRecord(v, name, t, per_rung[v][(name, t)])
               for v in rungs for name in module_order for t in range(1, steps + 1)
               if (name, t) in per_rung[v]]
    slopes: list[CoordSlope] = []
    for name in module_order:
        for t in range(1, steps + 1):
            present = [(name, t) in per_rung[v] for v in rungs]
            if not any(present):
                continue  # a module that never outputs a float tensor (e.g. an index op)
            if not all(present):
                slopes.append(CoordSlope(name, t, math.inf))
                continue
            vals = [per_rung[v][(name, t)] for v in rungs]
            slopes.append(CoordSlope(name, t, log2_slope(rungs, vals)))
    return records, slopes


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
    """Run a coordinate check over width (TP5, Section 5 and Appendix D).

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
        tolerance: largest slope still counted as width-independent (and the margin of every
            other rule of `summarize`); 0.15 is looser than the reference package's ratio test
            (within 1/1.2..1.2 per width doubling, i.e. |slope| <= 0.26) yet well below SP's
            0.5..1.
        optimizer_kwargs: extra keyword arguments for `mucore.build_optimizer`.

    Returns:
        A `CoordCheckResult` (`axis` "width") with the long table, the slopes and the
        role-aware verdict (`summarize`: the readout may shrink at init, nothing may grow,
        features may not vanish once trained).

    Raises:
        ValueError: fewer than two widths, widths not increasing, steps < 1, or the factory
            builds different modules at different widths.
    """
    run = LadderRun(batch, loss_fn, parametrization, hparams, optimizer, lr, steps, seed,
                    tolerance, dict(optimizer_kwargs or {}))
    return coord_check_ladder(factory, base_shapes, widths, run)


def coord_check_depth(
    factory: Callable[[int, int], nn.Module],
    base_shapes: BaseShapes,
    depths: Sequence[int],
    width: int,
    batch: tuple[Tensor, Tensor],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    parametrization: str | Parametrization = "completep",
    hparams: HParams | None = None,
    *,
    optimizer: str = "adam",
    lr: float = 1e-2,
    steps: int = 5,
    seed: int = 0,
    tolerance: float = 0.15,
) -> CoordCheckResult:
    """Coordinate check across `depths` at one `width` (the module docstring's depth ladder).

    The modules every depth shares are measured (`shared_modules`) and judged flat: the depth
    rules promise every one stays Θ(1) in depth from init on, so the verdict passes when
    max |slope| <= tolerance over every (module, step).

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
    prefix = base_shapes.block_prefix
    if prefix is None:
        raise ValueError(
            "base shapes know no depth: infer them with infer_base_shapes(factory, base_width, "
            "base_depth=...) and a factory(width, depth)"
        )
    run = LadderRun(batch, loss_fn, parametrization, hparams, optimizer, lr, steps, seed,
                    tolerance)
    return coord_check_ladder(lambda d: factory(width, d), base_shapes, depths, run,
                              axis="depth", measure=lambda m: shared_modules(m, prefix),
                              judge=FLAT, fixed={"width": int(width)})


def summarize(
    param: str,
    widths: list[int],
    steps: int,
    tolerance: float,
    records: list[CoordRecord],
    slopes: list[CoordSlope],
    roles: dict[str, str] | None = None,
    *,
    axis: str = "width",
    judge: str = ROLE_AWARE,
    fixed: dict[str, int] | None = None,
) -> CoordCheckResult:
    """Turn slopes into a verdict: pass iff no module breaks a rule.

    `judge=FLAT` (the depth ladder) holds every (module, step) to |s| <= tol: `no_growth` above,
    `no_shrink` below, `finite` as in rule 1. The depth rules (CompleteP, Dey et al. 2025;
    depth-µP, Yang et al. 2023) keep every activation the depths share Θ(1) in depth from init
    on; the readout's init shrink below is a width fact (Θ(1/sqrt(m))), with no depth analogue.
    `widths` holds the ladder's rungs on any axis. The default (`ROLE_AWARE`) is the width rule:

    With tol the tolerance, each (module, step) slope s is judged by what µP promises
    (TP5, Yang et al., 2022, Table 8; `RULES` holds the one-line form of each rule):

    1. finite: s is not finite (NaN, or a module zero at some widths only) -> fail.
    2. no_growth: s > +tol at any step, any role -> fail. Nothing grows with width.
    3. features_move: a feature module (not the readout) with s < -tol at step >= 2 -> fail.
       Features must stay Θ(1) once training starts. Step 1 (the model at init) is not judged
       for shrinking.
    4. The readout at step 1 may shrink at any rate: µP's output tends to 0 at init. Under
       Table 8 it is Θ(1/sqrt(m)) (slope -1/2; finite widths measure -0.5 to -0.75), exactly 0
       with a zero-initialised readout (slope 0).
    5. readout_moves: the readout at step >= 2 with s < -1/2 - tol -> fail. The learned part
       of the output is Θ(1) and the init part shrinks like 1/sqrt(m), so their sum shrinks at
       most like the init part while the learned part takes over (the slope climbs to 0). A
       readout multiplier that is too small (alpha_out / m^2, say) breaks it.
    6. A readout still below -tol at the last step is a note, not a failure: its init part
       still dominates (zero the readout, or run more steps, to see the learned output flat).

    Modules missing from `roles` are judged as features. `offenders` lists the modules that
    break a rule, worst (largest excess over the allowed range) first.
    """
    role_of = roles or {}
    violations: list[tuple[float, CoordViolation]] = []
    worst: dict[str, float] = {}
    for s in slopes:
        a = abs(s.slope) if not math.isnan(s.slope) else math.inf
        worst[s.module] = max(worst.get(s.module, 0.0), a)
        role = role_of.get(s.module, FEATURE)
        broken = (_flat_rule(s.slope, tolerance) if judge == FLAT
                  else _broken_rule(role, s.step, s.slope, tolerance))
        if broken is not None:
            rule, excess = broken
            violations.append((excess, CoordViolation(
                s.module, role, s.step, s.slope, rule, _violation_message(role, s, rule, axis))))
    violations.sort(key=lambda ev: -ev[0])
    offenders: list[str] = []
    for _, v in violations:
        if v.module not in offenders:
            offenders.append(v.module)
    last = {s.module: s.slope for s in slopes if s.step == steps}
    notes = [
        f"'{m}' (readout) still shrinks at step {steps} (slope {slope:+.2f}): its init noise "
        "(Θ(1/sqrt(m)) under Table 8) still dominates; zero-init the readout or run more steps "
        "to see the learned output flat"
        for m, slope in last.items()
        if role_of.get(m) == READOUT and steps >= 2 and m not in offenders and slope < -tolerance
    ]
    return CoordCheckResult(
        axis=axis,
        fixed=dict(fixed or {}),
        param=param,
        ladder=list(widths),
        steps=steps,
        tolerance=tolerance,
        records=records,
        slopes=slopes,
        max_abs_slope=max(worst.values(), default=0.0),
        verdict="fail" if offenders else "pass",
        offenders=offenders,
        roles=dict(role_of),
        violations=[v for _, v in violations],
        notes=notes,
    )


def _broken_rule(role: str, step: int, slope: float, tol: float) -> tuple[str, float] | None:
    """The rule (and by how much) a slope breaks, per `summarize`'s numbered list; or None."""
    if not math.isfinite(slope):
        return "finite", math.inf
    if slope > tol:
        return "no_growth", slope - tol
    if role == READOUT:
        floor = READOUT_INIT_SLOPE - tol
        if step >= 2 and slope < floor:
            return "readout_moves", floor - slope
        return None
    if step >= 2 and slope < -tol:
        return "features_move", -tol - slope
    return None


def _flat_rule(slope: float, tol: float) -> tuple[str, float] | None:
    """The rule a slope breaks on a flat-judged ladder (`summarize`, `judge=FLAT`); or None."""
    if not math.isfinite(slope):
        return "finite", math.inf
    if slope > tol:
        return "no_growth", slope - tol
    if slope < -tol:
        return "no_shrink", -tol - slope
    return None


def _violation_message(role: str, s: CoordSlope, rule: str, axis: str = "width") -> str:
    """One sentence: which module, what it did, which µP rule that breaks."""
    what = f"'{s.module}' ({role}) at step {s.step}"
    if rule == "finite":
        return (f"{what}: the activation is not finite, or zero at some {axis}s only; "
                f"{RULES[rule]}")
    per_doubling = 2.0**s.slope
    trend = "grows" if s.slope > 0 else "shrinks"
    return (
        f"{what} {trend} x{per_doubling:.2f} per {axis} doubling (slope {s.slope:+.2f}); "
        f"breaks '{rule}': {RULES[rule]}"
    )
