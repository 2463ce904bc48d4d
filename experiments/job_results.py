"""The results of the engine's jobs as typed objects: the doctor, the coordinate check,
`describe` and `verify`, each parsed once from the JSON its command writes.

The dashboard runs these commands in background processes (`python -m experiments ... --json
FILE`) and reads FILE back. The JSON is the contract (documented in the README, used by scripts);
these types read it and never change it, so a page or chart names a field, not a string key, and
a renamed field fails here, in one place, instead of in every page that read it.

Each type has `from_json(data)`, taking the parsed document (`json.loads` of the file). Nothing
here imports torch: the service re-exports these types for the pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from experiments.bundle.forecast_check import ForecastCheck

Status = Literal["pass", "warn", "fail"]
Axis = Literal["width", "depth"]


@dataclass(frozen=True)
class ModuleSlope:
    """Slope of log2 mean |activation| against log2 of the ladder axis, for one module and step.

    Attributes:
        module: the module's canonical name.
        step: the recorded step (1 is the forward at init).
        slope: the least-squares slope (+inf where a value is not finite, or zero at some
            sizes only).
    """

    module: str
    step: int
    slope: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModuleSlope:
        """One `{module, step, slope}` entry."""
        return cls(str(data["module"]), int(data["step"]), float(data["slope"]))


@dataclass(frozen=True)
class WeightUpdate:
    """The update-size check's verdict on one weight (the doctor's `update_size` evidence).

    Attributes:
        param: the parameter's name.
        role: its µP role.
        slope: measured slope of log2 |dW|/|W| against log2 width.
        expected: the slope µP prescribes for the role.
        ok: whether the measured slope is within tolerance of the expected one.
    """

    param: str
    role: str
    slope: float
    expected: float
    ok: bool


@dataclass(frozen=True)
class AblationTry:
    """One µP ingredient switched on by the doctor's ablation, and how far the worst
    measurement then stayed out of range (`excess`, 0 when `healthy`)."""

    label: str
    excess: float
    healthy: bool


@dataclass(frozen=True)
class DoctorEvidence:
    """What a doctor finding measured; each part empty when the finding has none.

    Attributes:
        slopes: the coordinate check's activation slopes per module and step.
        roles: the coordinate check's role per module ("readout" or "feature").
        offenders: the modules that broke a rule of their role.
        tolerance: the coordinate check's tolerance on a slope (None: not a coord finding).
        judgements: the update-size check's verdict per weight.
        tried: the ablation's switches, in the order tried.
        before: the ablation's worst excess with nothing switched (None: not recorded).
    """

    slopes: tuple[ModuleSlope, ...] = ()
    roles: Mapping[str, str] = field(default_factory=dict)
    offenders: tuple[str, ...] = ()
    tolerance: float | None = None
    judgements: tuple[WeightUpdate, ...] = ()
    tried: tuple[AblationTry, ...] = ()
    before: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], check: str) -> DoctorEvidence:
        """The `evidence` object of the finding of `check`: its activation slopes, roles,
        offenders and tolerance are the "coord_check" finding's (the "update_size" finding's
        `slopes` are per weight, drawn from its `judgements`)."""
        coord = data if check == "coord_check" else {}
        tol = coord.get("tolerance")
        return cls(
            slopes=tuple(ModuleSlope.from_json(s) for s in coord.get("slopes") or ()),
            roles={str(k): str(v) for k, v in (coord.get("roles") or {}).items()},
            offenders=tuple(str(m) for m in coord.get("offenders") or ()),
            tolerance=None if tol is None else float(tol),
            judgements=tuple(WeightUpdate(str(j["param"]), str(j["role"]), float(j["slope"]),
                                          float(j["expected"]), bool(j["ok"]))
                             for j in data.get("judgements") or ()),
            tried=tuple(AblationTry(str(t["label"]), float(t["excess"]), bool(t["healthy"]))
                        for t in data.get("tried") or ()),
            before=None if data.get("before") is None else float(data["before"]),
        )


@dataclass(frozen=True)
class DoctorFinding:
    """One doctor finding, as the dashboard shows it.

    Attributes:
        param: the parametrization checked ("" for a finding about the model itself).
        check: the check's name ("readout", "attention", "metadata", ...).
        status: "pass", "warn" or "fail".
        message: what was found, in plain words.
        fix: what to change ("" when nothing needs to).
        evidence: what the check measured (empty for the static checks).
    """

    param: str
    check: str
    status: Status
    message: str
    fix: str = ""
    evidence: DoctorEvidence = field(default_factory=DoctorEvidence)


def _status(value: Any) -> Status:
    if value not in ("pass", "warn", "fail"):
        raise ValueError(f"a finding's status must be pass, warn or fail, got {value!r}")
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DoctorResult:
    """The `doctor --json` report: the verdict and every finding, in check order.

    Attributes:
        model: the model's name (zoo kind or registered name).
        param: the parametrization checked.
        verdict: "healthy" unless a finding failed, else "problems".
        findings: static findings first, then the dynamic ones.
    """

    model: str
    param: str
    verdict: str
    findings: tuple[DoctorFinding, ...]

    @property
    def healthy(self) -> bool:
        """No finding failed."""
        return self.verdict == "healthy"

    @property
    def problems(self) -> list[DoctorFinding]:
        """The findings that failed or warned, in check order."""
        return [f for f in self.findings if f.status != "pass"]

    @property
    def passed(self) -> list[DoctorFinding]:
        """The findings that passed, in check order."""
        return [f for f in self.findings if f.status == "pass"]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoctorResult:
        """The document `python -m experiments doctor --json` writes."""
        param = str(data["param"])
        findings = tuple(
            DoctorFinding(param, str(f["check"]), _status(f["status"]), str(f["message"]),
                          str(f.get("fix") or ""),
                          DoctorEvidence.from_json(f.get("evidence") or {}, str(f["check"])))
            for f in data.get("findings") or ())
        return cls(str(data["model"]), param, str(data["verdict"]), findings)


@dataclass(frozen=True)
class CoordPoint:
    """One row of the coordinate check's long table: mean |output| of `module` at `step` for
    the model whose ladder value (its width, or its depth for a depth check) is `size`."""

    size: int
    module: str
    step: int
    value: float


@dataclass(frozen=True)
class CoordCheckReport:
    """The `coord-check --json` document of a width or a depth check.

    Attributes:
        axis: "width" (the model at several widths) or "depth" (several depths, one width).
        param: the parametrization checked.
        verdict: "pass" or "fail".
        max_abs_slope: the largest |slope|.
        tolerance: the verdict's tolerance on a slope.
        ladder: the widths, or the depths, checked (increasing).
        width: the one width of a depth check (None for a width check).
        steps: recorded steps.
        slopes: one slope per (module, step), against log2 of the axis.
        points: the long table, one row per (ladder value, module, step).
        offenders: the modules whose slopes broke the verdict.
        violations: each broken rule in plain words (width checks).
        notes: caveats of the verdict.
    """

    axis: Axis
    param: str
    verdict: str
    max_abs_slope: float
    tolerance: float
    ladder: tuple[int, ...]
    width: int | None
    steps: int
    slopes: tuple[ModuleSlope, ...]
    points: tuple[CoordPoint, ...]
    offenders: tuple[str, ...] = ()
    violations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """The verdict is "pass"."""
        return self.verdict == "pass"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoordCheckReport:
        """The document `python -m experiments coord-check --json` writes (either axis): its
        `modules` are the slopes, its `records` the long table keyed by the axis's name."""
        axis: Axis = "depth" if data.get("axis") == "depth" else "width"
        ladder = data["depths"] if axis == "depth" else data["widths"]
        return cls(
            axis=axis, param=str(data["param"]), verdict=str(data["verdict"]),
            max_abs_slope=float(data["max_abs_slope"]), tolerance=float(data["tolerance"]),
            ladder=tuple(int(v) for v in ladder),
            width=int(data["width"]) if axis == "depth" else None, steps=int(data["steps"]),
            slopes=tuple(ModuleSlope.from_json(s) for s in data["modules"]),
            points=tuple(CoordPoint(int(r[axis]), str(r["module"]), int(r["step"]),
                                    float(r["value"])) for r in data["records"]),
            offenders=tuple(str(m) for m in data.get("offenders") or ()),
            violations=tuple(str(v["message"]) for v in data.get("violations") or ()),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


@dataclass(frozen=True)
class DescribedParam:
    """One row of `describe`: what µP does to one parameter (`mucore.DescribeRow`'s fields).

    `depth_mult` (m_L) and `branch_mult` (m_L^(-alpha)) are None outside the residual blocks,
    and for a table without depth rules or a model described without a depth. `update` says,
    under Muon, which optimizer trains the parameter ("muon" or "adamw"); None otherwise.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    width_mult: float
    init: str
    init_std: float
    forward_mult: float
    lr_mult: float
    depth_mult: float | None = None
    branch_mult: float | None = None
    update: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DescribedParam:
        """One entry of the `rows` list."""
        depth, branch, update = data.get("depth_mult"), data.get("branch_mult"), data.get("update")
        return cls(str(data["name"]), tuple(int(s) for s in data["shape"]), str(data["role"]),
                   float(data["width_mult"]), str(data["init"]), float(data["init_std"]),
                   float(data["forward_mult"]), float(data["lr_mult"]),
                   None if depth is None else float(depth),
                   None if branch is None else float(branch),
                   None if update is None else str(update))


@dataclass(frozen=True)
class DescribeTable:
    """The `describe --json` document: one model's µP table at one width (and depth).

    Attributes:
        model: the model's name.
        param: the parametrization.
        width, base_width: the described width and the width where µP equals SP.
        optimizer: the optimizer the LR multipliers are for.
        depth, base_depth: the described depth and the depth rules' base (None: width only).
        rows: one per parameter, in model order.
    """

    model: str
    param: str
    width: int
    base_width: int
    optimizer: str
    rows: tuple[DescribedParam, ...]
    depth: int | None = None
    base_depth: int | None = None

    @property
    def knows_depth(self) -> bool:
        """Some row carries a depth multiplier (a table with depth rules, given a depth)."""
        return any(r.depth_mult is not None for r in self.rows)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DescribeTable:
        """The document `python -m experiments describe --json` writes."""
        depth, base_depth = data.get("depth"), data.get("base_depth")
        return cls(str(data["model"]), str(data["param"]), int(data["width"]),
                   int(data["base_width"]), str(data["optimizer"]),
                   tuple(DescribedParam.from_json(r) for r in data["rows"]),
                   None if depth is None else int(depth),
                   None if base_depth is None else int(base_depth))


class VerifyPoint(BaseModel):
    """One LR of the bracket (or the SP baseline).

    Attributes:
        parametrization: "mup" or "sp".
        offset_steps: k, the distance from the transferred LR in grid steps (None: baseline).
        log2_lr: the LR trained, log2.
        loss: seed-mean final loss (None when any seed diverged).
        seed_losses: per-seed final losses (None for a diverged seed).
        states: per-seed run states.
    """

    parametrization: str
    offset_steps: int | None
    log2_lr: float
    loss: float | None
    seed_losses: list[float | None]
    states: list[str]


class VerifyReport(BaseModel):
    """What `python -m experiments verify` writes.

    Attributes:
        target_width: the width trained.
        target_depth: the depth trained (a depth ladder's bundle; None: width only).
        parametrization: the bundle's parametrization.
        transferred_log2_lr: the bundle's LR, log2.
        step: the bracket spacing (the sweep's LR grid step), log2.
        bracket: points on each side of the transferred LR.
        opt_log2_lr: the target's own optimum over the bracket (None when all diverged).
        opt_refined: whether the parabola refined it.
        opt_at_edge: "lower"/"upper" when the best bracket point is at the bracket's edge.
        within_one_step: |transferred - optimum| <= one grid step, and the transferred LR
            did not diverge (a diverged LR is never called within one step).
        transferred_loss: seed-mean loss at the transferred LR (None if it diverged).
        best_log2_lr: the best bracket point.
        best_loss: its seed-mean loss.
        loss_gap: transferred_loss - best_loss (None if the transferred LR diverged).
        points: every bracket point.
        sp_baseline: SP at its extrapolated LR, when the bundle's evidence has an SP drift.
        sp_gap: SP baseline loss - transferred loss (positive: µTransfer did better).
        loss: the loss column compared ("final_train_loss" or "final_val_loss").
        seeds: seeds trained per point.
        steps: optimizer steps per run.
        batch_size: examples per step of every run (the bundle's target batch, else the
            sweep's); None in reports written before it was recorded.
        device: the device runs trained on.
        wall_s: total wall time.
        warnings: plain-words caveats.
        forecast: the measured loss at the transferred LR against the bundle's best-loss
            forecast (`experiments.bundle.forecast_check`); None when the bundle has none at the
            target (made before forecasts, or the forecast refused; a warning says which).
    """

    target_width: int
    target_depth: int | None = None
    parametrization: str
    transferred_log2_lr: float
    step: float
    bracket: int
    opt_log2_lr: float | None
    opt_refined: bool
    opt_at_edge: str | None
    within_one_step: bool
    transferred_loss: float | None
    best_log2_lr: float | None
    best_loss: float | None
    loss_gap: float | None
    points: list[VerifyPoint]
    sp_baseline: VerifyPoint | None = None
    sp_gap: float | None = None
    loss: str
    seeds: list[int]
    steps: int
    batch_size: int | None = None
    device: str
    wall_s: float
    warnings: list[str] = Field(default_factory=list)
    forecast: ForecastCheck | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerifyReport:
        """The document `python -m experiments verify --json` writes (or the store keeps)."""
        return cls.model_validate(data)

    def to_contract_json(self) -> dict[str, Any]:
        """The `verify --json` document (every field; the contract keys at the top level)."""
        return self.model_dump(mode="json")

    def summary(self) -> str:
        """Human lines: the bracket table and the outcome."""
        depth = "" if self.target_depth is None else f", depth {self.target_depth}"
        if self.batch_size is not None:
            depth += f", batch {self.batch_size} x {self.steps} steps"
        lines = [f"target width {self.target_width}{depth}, {self.parametrization}, transferred LR "
                 f"2^{self.transferred_log2_lr:.3g}, bracket ±{self.bracket} x {self.step:g}"]
        for p in self.points:
            loss = "diverged" if p.loss is None else f"{p.loss:.4f}"
            lines.append(f"  {p.offset_steps:+d}  2^{p.log2_lr:.3g}  {loss}")
        opt = "none" if self.opt_log2_lr is None else f"2^{self.opt_log2_lr:.3g}"
        gap = "n/a" if self.loss_gap is None else f"{self.loss_gap:.4f}"
        within = str(self.within_one_step)
        if self.transferred_loss is None:
            within += " (the transferred LR diverged)"
        lines.append(f"target optimum {opt}; within one grid step: {within}; "
                     f"loss gap to the best bracket point {gap}")
        if self.sp_baseline is not None:
            sp = self.sp_baseline
            loss = "diverged" if sp.loss is None else f"{sp.loss:.4f}"
            lines.append(f"SP baseline at its extrapolated LR 2^{sp.log2_lr:.3g}: {loss}")
        if self.forecast is not None:
            lines.append(f"loss forecast: {self.forecast.sentence()}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)
