"""The sweep spec: one pydantic model behind the dashboard form, YAML files, the CLI and the store.

    spec = load_spec("experiments/configs/quick.yaml")   # or SweepSpec.model_validate(data)
    runs = spec.expand()                                  # list[RunConfig], one per run
    plan = spec.estimate()                                # runs, params, FLOPs, memory
    sweep_id = create_sweep(Store(db_path), spec)          # experiments.sweep.submit

A sweep trains one model family at every width of a ladder, in every parametrization, over a
learning-rate grid (TP5, Yang et al., 2022: under µP the optimal LR stays put as width grows;
under SP it drifts). Runs are the cross product

    widths x parametrizations x lrs x seeds x hparam_grid

`hparam_grid` sweeps other global µP knobs (e.g. `{output_mult: [0.5, 1, 2]}`); each of its
combinations is crossed with the whole LR grid, so the LR is re-tuned for every knob setting.

Validation collects every problem as a pydantic error located at the field it concerns
(`widths`, `task`, `lr_grid.step`, ...), with a message that names the field and the fix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from experiments.device import bf16_ok, device_problem, memory_limit
from experiments.errors import FieldError, UserError
from experiments.files import read_structured
from experiments.models.configs import CustomModelConfig, MLPConfig, ModelConfig
from experiments.models.configs import depth_kinds as depth_kinds
from experiments.models.configs import zoo_labels as zoo_labels

# The dashboard reads parametrization traits (labels, the tables with depth rules, the
# registered names) through this torch-free module: re-exported with `as`.
from experiments.models.parametrizations import depth_rule_names as depth_rule_names
from experiments.models.parametrizations import find_parametrization, resolve_parametrization
from experiments.models.parametrizations import parametrization_label as parametrization_label
from experiments.models.parametrizations import (
    parametrization_short_label as parametrization_short_label,
)
from experiments.spec.batch_horizon import (
    n_training_rungs,
    run_length_problems,
    training_problems,
    training_rungs,
)
from experiments.spec.estimate import SweepEstimate, memory_bytes
from experiments.spec.estimate import estimate as estimate_sweep
from experiments.spec.ladder import at_depth, ladder_problems, resolved_base_depth, sweep_depths
from experiments.spec.run import (
    GLOBAL_KNOBS,
    HParamsConfig,
    OptimizerConfig,
    Precision,
    RunConfig,
)
from experiments.spec.scaling import ScalingConfig, scaling_problems
from experiments.spec.schedule import schedule_problems
from experiments.spec.search import SearchConfig, search_problems, walked_ladder
from experiments.tasks.config import TaskConfig
from mucore.optimizers import MUON_ADJUSTMENTS as MUON_ADJUSTMENTS
from mucore.optimizers import optimizer_names as optimizer_names
from mucore.optimizers import settings_family
from mucore.parametrizations import parametrization_names as parametrization_names

MAX_RUNS = 20_000
# A spec may list any registered parametrization (mucore's tables and the user's, see
# experiments.models.parametrizations); the default sweep compares SP with µP. Tables with depth
# rules (CompleteP, depth-µP) serve depth transfer; on a width ladder alone they train as µP.
ParamName = str
PARAMETRIZATIONS: tuple[ParamName, ...] = ("sp", "mup")


def parametrization_choices() -> list[str]:
    """The tables a spec may list, the default ones (SP, µP) first, then the rest A-Z."""
    return [*PARAMETRIZATIONS, *(n for n in parametrization_names() if n not in PARAMETRIZATIONS)]


# Fields added after specs were first hashed: left out of `spec_hash` at these defaults so the
# hash of every spec written before them is unchanged.
HASH_NEUTRAL_DEFAULTS: dict[str, Any] = {"precision": "fp32", "compile": False,
                                         "depths": None, "base_depth": None,
                                         "batch_sizes": None, "base_batch_size": None,
                                         "horizons": None, "base_horizon": None,
                                         "search": SearchConfig().model_dump(mode="json"),
                                         "scaling": ScalingConfig().model_dump(mode="json"),
                                         "noise_scale": False}


class LRGrid(BaseModel):
    """A log2-spaced learning-rate grid: 2**log2_min, 2**(log2_min + step), ..., 2**log2_max.

    Attributes:
        log2_min: log2 of the smallest LR.
        log2_max: log2 of the largest LR (included when the steps land on it).
        step: spacing in log2 units (1 = powers of two, 0.5 = sqrt(2) apart).
    """

    model_config = ConfigDict(extra="forbid")

    log2_min: float = Field(default=-14.0, allow_inf_nan=False)
    log2_max: float = Field(default=-4.0, allow_inf_nan=False)
    step: float = Field(default=1.0, allow_inf_nan=False)

    @field_validator("step")
    @classmethod
    def _positive_step(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"lr_grid.step must be > 0, got {v:g}: use e.g. 1 or 0.5")
        return v

    @model_validator(mode="after")
    def _nonempty(self) -> LRGrid:
        if self.log2_min > self.log2_max:
            raise ValueError(
                f"lr_grid is empty: log2_min {self.log2_min:g} > log2_max {self.log2_max:g}; "
                "swap them"
            )
        if self.log2_max > 10 or self.log2_min < -60:
            raise ValueError(
                f"lr_grid spans 2^{self.log2_min:g}..2^{self.log2_max:g}: keep log2 LRs in "
                "[-60, 10] (typical Adam LRs are 2^-14..2^-2)"
            )
        return self

    def log2_values(self) -> list[float]:
        """The grid points in log2 units, rounded to 1e-9 so 0.1-steps do not drift."""
        n = int(math.floor((self.log2_max - self.log2_min) / self.step + 1e-9)) + 1
        return [round(self.log2_min + i * self.step, 9) for i in range(n)]


class SweepSpec(BaseModel):
    """A µTransfer sweep.

    Attributes:
        name: a label for the sweep (shown in the dashboard and `sweep status`).
        model: the zoo model, picked by `kind` (mlp, gpt, llama, cnn), or a registered model
            (`kind: custom`, its `name` and `options`; see experiments.models.registry).
        task: the dataset (digits, bytes, synthetic, synthetic-lm, file, tokens).
        widths: the width ladder, strictly increasing.
        base_width: the proxy width where µP equals SP; must be one of the widths.
        depths: a depth ladder, strictly increasing (gpt, llama, residual mlp): runs
            then cover every depth too, each at `model.depth` = that depth. None: width only.
        base_depth: the proxy depth where CompleteP / depth-µP equal µP; must be one of the
            depths (default: the model's `depth`). See experiments.spec.ladder.
        batch_sizes: a batch-size ladder, strictly increasing: runs then cover every batch
            size at fixed examples (tokens) seen: steps = horizon x base_batch_size / batch.
            None: every run trains `batch_size`. See experiments.spec.batch_horizon.
        base_batch_size: the batch the ladder is measured against and the grid LR is tuned
            at; must be on it (default: its first rung). Rungs at another batch train with the
            `scaling.batch` rule applied at k = batch / base.
        horizons: a horizon ladder, strictly increasing, in optimizer steps at the base batch
            size (the batch is held fixed along it); replaces `steps`. None: every run is
            `steps` long (at the base batch).
        base_horizon: the horizon the ladder is measured against and the grid LR is tuned at;
            must be on it (default: its first rung). Rungs of another length train with the
            `scaling.horizon` rule applied at k = horizon / base.
        parametrizations: which parametrizations to train ("sp", "mup").
        optimizer: optimizer settings (the LR comes from the grid).
        lr_grid: a log2 grid of learning rates (give exactly one of lr_grid and lrs).
        lrs: an explicit list of learning rates (give exactly one of lr_grid and lrs).
        hparams: fixed global µP knobs (init_std, output_mult, attn_mult, input_mult, zero inits).
        hparam_grid: global knobs to sweep too, e.g. {output_mult: [0.5, 1, 2]}; crossed with
            the LR grid, overriding the same keys of hparams.
        seeds: init and batch seeds; every run is repeated per seed.
        steps: optimizer steps per run (at the base batch size of a batch ladder; unused with
            a horizon ladder).
        batch_size: examples (sequences for LM tasks) per step (unused with a batch ladder).
        log_every: steps per logged train-loss window (<= steps).
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
        precision: "fp32" (default), or "bf16": forward and loss under bfloat16 autocast
            (parameters and optimizer state stay fp32). Changes results slightly.
        compile: train through `torch.compile` (default false). Needs a working C/C++
            compiler (and Triton on GPUs); a run that cannot compile fails saying so.
        search: how the LR grid is searched: `{kind: grid}` (default, every LR at every
            width) or `{kind: adaptive, full_widths: 1, bracket: 3}` (experiments.sweep.adaptive).
        scaling: the batch and horizon rules the grid LR is moved by (`{batch: none|sqrt|
            linear|{power: X}, horizon: none|{power: X}}`, default none; see
            experiments.spec.scaling). Refused when the optimizer has no entry for a rule.
        noise_scale: record each run's gradient noise scale (the critical batch meter,
            experiments.doctor.noise_scale) as metric `noise_scale` at its log points.
    """

    model_config = ConfigDict(extra="forbid")
    # List fields whose choices a registry supplies at run time (the Setup form's multiselect):
    # mucore's tables and any the user registered in this process.
    FIELD_OPTIONS: ClassVar[dict[str, Callable[[], list[str]]]] = {
        "parametrizations": parametrization_choices,
    }

    name: str = Field(default="sweep", min_length=1, max_length=200)
    model: ModelConfig = Field(default_factory=MLPConfig)
    task: TaskConfig = Field(default_factory=lambda: TaskConfig(name="digits"))
    widths: list[int] = Field(default_factory=lambda: [64, 128, 256, 512])
    base_width: int = Field(default=64, ge=1)
    depths: list[int] | None = None
    base_depth: int | None = Field(default=None, ge=1)
    # --- Batch and horizon ladders (experiments.spec.batch_horizon) -------------------------
    # One block, so that a merge with other work on these axes (scaling rules) stays easy.
    batch_sizes: list[int] | None = None
    base_batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    horizons: list[int] | None = None
    base_horizon: int | None = Field(default=None, ge=1, le=10_000_000)
    # --- end of batch and horizon ladders ---------------------------------------------------
    parametrizations: list[ParamName] = Field(
        default_factory=lambda: list(PARAMETRIZATIONS)
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    lr_grid: LRGrid | None = None
    lrs: list[float] | None = None
    hparams: HParamsConfig = Field(default_factory=HParamsConfig)
    hparam_grid: dict[str, list[float]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0])
    steps: int = Field(default=300, ge=1, le=10_000_000)
    batch_size: int = Field(default=64, ge=1, le=1_000_000)
    log_every: int = Field(default=10, ge=1)
    device: str = "auto"
    precision: Precision = "fp32"
    compile: bool = False
    search: SearchConfig = Field(default_factory=SearchConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    noise_scale: bool = False

    @field_validator("name")
    @classmethod
    def _name_printable(cls, v: str) -> str:
        if not v.strip() or any(ord(c) < 32 for c in v):
            raise ValueError("name must be non-blank text on one line: e.g. name: quick-mlp")
        return v.strip()

    @field_validator("widths")
    @classmethod
    def _widths_increase(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("widths is empty: give a ladder like [64, 128, 256, 512]")
        for w in v:
            if w < 1:
                raise ValueError(f"widths must be >= 1: got {w}; use e.g. [64, 128, 256]")
        for prev, cur in itertools.pairwise(v):
            if cur <= prev:
                raise ValueError(
                    f"widths must increase: got {cur} after {prev}; sort the ladder and drop "
                    "repeats"
                )
        return v

    @field_validator("parametrizations")
    @classmethod
    def _params_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("parametrizations is empty: use [sp, mup] (or one of them)")
        if len(set(v)) != len(v):
            raise ValueError(f"parametrizations has repeats {v}: list each once")
        for name in v:
            try:
                resolve_parametrization(name)
            except UserError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("lrs")
    @classmethod
    def _lrs_positive(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("lrs is empty: give learning rates like [1e-3, 3e-3] or use lr_grid")
        for i, lr in enumerate(v):
            if not (math.isfinite(lr) and lr > 0):
                raise ValueError(
                    f"lrs[{i}] must be a finite number > 0, got {lr!r}: remove or fix it"
                )
        if len(set(v)) != len(v):
            raise ValueError("lrs has repeats: list each learning rate once")
        return sorted(v)

    @field_validator("hparam_grid")
    @classmethod
    def _grid_known(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for key, values in v.items():
            if key not in GLOBAL_KNOBS:
                raise ValueError(
                    f"hparam_grid key '{key}' is not a sweepable knob: use one of "
                    f"{list(GLOBAL_KNOBS)} (sweep the LR with lr_grid)"
                )
            if not values:
                raise ValueError(f"hparam_grid.{key} is empty: give values like [0.5, 1, 2]")
            for x in values:
                if not (math.isfinite(x) and x > 0):
                    raise ValueError(
                        f"hparam_grid.{key} values must be finite numbers > 0, got {x!r}"
                    )
            if len(set(values)) != len(values):
                raise ValueError(f"hparam_grid.{key} has repeats {values}: list each once")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds_unique(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("seeds is empty: use e.g. [0] or [0, 1]")
        if len(set(v)) != len(v):
            raise ValueError(f"seeds has repeats {v}: list each seed once")
        if any(s < 0 for s in v):
            raise ValueError(f"seeds must be >= 0, got {v}")
        return v

    @field_validator("device")
    @classmethod
    def _device_ok(cls, v: str) -> str:
        problem = device_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(cls, data: Any, handler: Any) -> SweepSpec:
        spec: SweepSpec = handler(data)
        problems = check_spec(spec)
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{msg}", {"msg": msg}),
                        loc=tuple(loc.split(".")) if loc else (),
                        input=_value_at(spec, loc),
                    )
                    for loc, messages in problems.items()
                    for msg in messages
                ],
            )
        return spec

    # --- Derived views ------------------------------------------------------------------------

    def log2_lrs(self) -> list[float]:
        """The learning rates in log2 units, ascending."""
        if self.lr_grid is not None:
            return self.lr_grid.log2_values()
        return [math.log2(lr) for lr in (self.lrs or [])]

    def lrs_resolved(self) -> list[float]:
        """The learning rates, ascending (2**x for a grid; the list as given, sorted, for lrs)."""
        if self.lr_grid is not None:
            return [2.0**x for x in self.lr_grid.log2_values()]
        return list(self.lrs or [])

    def hparam_combos(self) -> list[dict[str, float]]:
        """Every combination of `hparam_grid` values (one empty dict when it is empty)."""
        keys = sorted(self.hparam_grid)
        return [dict(zip(keys, values, strict=True)) for values in
                itertools.product(*(self.hparam_grid[k] for k in keys))]

    def n_runs(self) -> int:
        """How many runs `expand` makes (without building them)."""
        return (len(self.widths) * len(sweep_depths(self)) * n_training_rungs(self)
                * len(self.parametrizations)
                * len(self.log2_lrs())
                * len(self.seeds) * len(self.hparam_combos()))

    def expand(self) -> list[RunConfig]:
        """One `RunConfig` per run, ordered width, depth, batch, horizon, parametrization,
        knobs, seed, LR."""
        runs = []
        base_hp = self.hparams.model_dump()
        base_depth = resolved_base_depth(self)
        for width, depth, rung, param, combo, seed, lr in itertools.product(
            self.widths, sweep_depths(self), training_rungs(self), self.parametrizations,
            self.hparam_combos(), self.seeds, self.lrs_resolved(),
        ):
            runs.append(
                RunConfig(
                    sweep_name=self.name,
                    model=at_depth(self.model, depth),
                    task=self.task,
                    width=width,
                    base_width=self.base_width,
                    base_depth=base_depth,
                    parametrization=param,
                    optimizer=self.optimizer,
                    lr=lr,
                    hparams=HParamsConfig(**{**base_hp, **combo}),
                    seed=seed,
                    steps=rung.steps,
                    batch_size=rung.batch_size,
                    base_batch_size=rung.base_batch_size,
                    horizon=rung.horizon,
                    base_horizon=rung.base_horizon,
                    log_every=self.log_every,
                    device=self.device,
                    precision=self.precision,
                    compile=self.compile,
                    scaling=self.scaling,
                    noise_scale=self.noise_scale,
                )
            )
        return runs

    def estimate(self) -> SweepEstimate:
        """Runs, parameters per width, compute and memory: the "before launch" numbers.

        See `experiments.spec.estimate` (it builds models, so torch loads on this call).
        """
        return estimate_sweep(self)

    def to_yaml(self) -> str:
        """The spec as YAML (fields in declaration order; `load_spec` reads it back)."""
        # The default search is left out, so specs written before it print as they did.
        # The default search and scaling are left out, so specs written before them print as
        # they did.
        exclude = {name for name, block in (("search", self.search), ("scaling", self.scaling))
                   if block.is_default()}
        data = self.model_dump(mode="json", exclude_none=True, exclude=exclude or None)
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def run_key(run: RunConfig) -> str:
    """A readable key, unique within a sweep: `w256-mup-lr2^-8-s0[-output_mult=2]`; a run of a
    depth ladder names its depth too: `w256-d8-mup-lr2^-8-s0`, a run of a batch ladder its batch
    size and one of a horizon ladder its steps: `w256-b32-s800-mup-lr2^-8-s0`."""
    depth = "" if run.base_depth is None else f"-d{getattr(run.model, 'depth', '')}"
    depth += "" if run.base_batch_size is None else f"-b{run.batch_size}"
    depth += "" if run.horizon is None else f"-s{run.steps}"
    key = (f"w{run.width}{depth}-{run.parametrization}-lr2^{math.log2(run.lr):.6g}"
           f"-s{run.seed}")
    defaults = HParamsConfig().model_dump()
    extra = [f"{k}={v:g}" for k, v in run.hparams.model_dump().items()
             if k in GLOBAL_KNOBS and v != defaults[k]]
    return "-".join([key, *extra])


def spec_log2_lrs(spec: SweepSpec) -> list[float]:
    """The spec's learning rates in log2 units (what the dashboard prints as 2^x)."""
    return spec.log2_lrs()


def spec_hash(spec: SweepSpec) -> str:
    """A short content hash of everything that changes results (not `name`, not `device`).

    Two specs with equal hashes train the same runs; a store can use it to spot duplicates.
    Fields in `HASH_NEUTRAL_DEFAULTS` count only when they differ from their default.
    """
    data = spec.model_dump(mode="json", exclude={"name", "device"})
    data["optimizer"] = spec.optimizer.dump()
    for key, default in HASH_NEUTRAL_DEFAULTS.items():
        if data.get(key) == default:
            data.pop(key)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _value_at(spec: SweepSpec, loc: str) -> Any:
    value: Any = spec
    for part in loc.split(".") if loc else ():
        value = getattr(value, part, None)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


# --- Cross-field checks ----------------------------------------------------------------------


def _rung_scaling_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    """`scaling_problems` at every (batch, horizon) rung, each message once: the SDE rule can
    hold at the base and break at the largest batch."""
    out: list[tuple[str, str]] = []
    if training_problems(spec):
        return out  # a bad ladder has no rungs to check (it is reported at its field)
    for rung in training_rungs(spec):
        view = SimpleNamespace(optimizer=spec.optimizer, scaling=spec.scaling,
                               batch_size=rung.batch_size, steps=rung.steps,
                               horizon=rung.horizon, base_batch_size=rung.base_batch_size,
                               base_horizon=rung.base_horizon)
        out += [p for p in scaling_problems(view) if p not in out]
    return out


def _length_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    """The ladder rungs, then the shortest run against the log window, the warm-up and (when
    those fit) the schedule's decay."""
    rung_errors = training_problems(spec)
    if rung_errors:
        return rung_errors
    out = run_length_problems(spec, spec.log_every, spec.optimizer.warmup_steps,
                              warms_up=spec.optimizer.schedule != "constant")
    if any(f != "log_every" for f, _ in out):
        return out  # the warm-up does not fit: the decay cannot either
    shortest = min(r.steps for r in training_rungs(spec))
    field = "horizons" if spec.horizons else "batch_sizes" if spec.batch_sizes else "steps"
    return out + schedule_problems(spec.optimizer, shortest, steps_field=field)


def check_spec(spec: SweepSpec) -> dict[str, list[str]]:
    """Problems that need several fields (or the machine) to see, by dotted field path.

    Part of `SweepSpec` validation (so a spec object is normally clean); callable on its own,
    e.g. to re-check a stored spec on another machine.

    Returns:
        {field path: [messages]}; "" is the whole spec. Empty when the spec can run.
    """
    problems: dict[str, list[str]] = {}
    for loc, msg in [*_field_problems(spec), *_model_problems(spec)]:
        problems.setdefault(loc, []).append(msg)
    return problems


def _refused_optimizer(spec: SweepSpec) -> list[tuple[str, str]]:
    """Parametrizations whose table refuses the optimizer's family (the depth tables refuse SGD)."""
    family = settings_family(spec.optimizer.name, spec.optimizer.model_dump())
    out = []
    for name in spec.parametrizations:
        table = find_parametrization(name)
        refused = None if table is None else table.unsupported.get(family)
        if refused:
            out.append(("parametrizations", f"parametrization {name} cannot train with optimizer "
                        f"{spec.optimizer.name}: {refused}"))
    return out


def _field_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    """(field, message) for field combinations that cannot run, whatever the machine."""
    out = []
    if spec.base_width not in spec.widths:
        out.append(("base_width", f"base_width {spec.base_width} is not in widths {spec.widths}: "
                    f"add it to the ladder or pick one of them (usually the smallest, "
                    f"{spec.widths[0]})"))
    if (spec.lr_grid is None) == (spec.lrs is None):
        which = "both" if spec.lr_grid is not None else "neither"
        out.append(("lr_grid", f"give exactly one of lr_grid and lrs, got {which}: e.g. "
                    "lr_grid: {log2_min: -14, log2_max: -4, step: 1}"))
    out += _refused_optimizer(spec)
    word, walked = walked_ladder(spec)
    out += search_problems(spec.search, len(walked), len(spec.log2_lrs()), word)
    out += ladder_problems(spec)
    out += _length_problems(spec)
    out += _rung_scaling_problems(spec)
    if spec.noise_scale and spec.batch_size < 2:
        out.append(("noise_scale", f"noise_scale needs two batch sizes within a step: "
                    f"batch_size {spec.batch_size} < 2; use batch_size >= 2 or noise_scale: false"))
    if spec.precision == "bf16" and not bf16_ok(spec.device):
        out.append(("precision", f"precision bf16 needs a GPU with bfloat16 support and device "
                    f"'{spec.device}' has none: use precision: fp32 (or device: cpu)"))
    defaults = HParamsConfig()
    for key in spec.hparam_grid:
        if spec.hparams.knob(key) != defaults.knob(key):
            out.append(("hparam_grid", f"hparam_grid sweeps {key} and hparams also sets it: "
                        f"remove hparams.{key}"))
    n = spec.n_runs()
    if n > MAX_RUNS:
        rungs = n_training_rungs(spec)
        out.append(("", f"too many runs: {len(spec.widths)} widths x "
                    + (f"{rungs} batch/horizon rungs x " if rungs > 1 else "")
                    + f"{len(spec.parametrizations)} parametrizations x {len(spec.log2_lrs())} lrs x "
                    f"{len(spec.seeds)} seeds x {len(spec.hparam_combos())} hparam_grid combos = "
                    f"{n:,} > {MAX_RUNS:,}: use fewer widths, seeds or a coarser lr_grid.step"))
    return out


def _model_problems(spec: SweepSpec) -> list[tuple[str, str]]:
    """(field, message) for a model that does not fit its task, its widths or the machine.

    These load the task and size the model, so torch is imported here, on use: importing
    this module stays torch-free for forms that only build specs.
    """
    from experiments.models.zoo import check_task, check_widths, count_params
    from experiments.tasks.loading import task_info

    try:
        info = task_info(spec.task)
    except UserError as exc:
        fallback = "task.path" if spec.task.path else "task"
        return [(exc.field if isinstance(exc, FieldError) else fallback, str(exc))]
    task_errors = check_task(spec.model, info)
    if task_errors:
        return [("task", msg) for msg in task_errors]
    if isinstance(spec.model, CustomModelConfig):  # a registered model: build it to check it
        from experiments.models.custom import custom_problems

        custom = custom_problems(spec.model, info, spec.widths, spec.base_width)
        if custom:
            return custom
    width_errors = check_widths(spec.model, info, spec.widths)
    if spec.base_width not in spec.widths:
        width_errors += check_widths(spec.model, info, [spec.base_width])
    if width_errors:
        return [("widths", msg) for msg in width_errors]
    widest = spec.widths[-1]
    # The largest run: the widest width at the deepest rung of a (valid) depth ladder and the
    # largest batch of a (valid) batch ladder.
    deepest = None if spec.depths is None or ladder_problems(spec) else max(spec.depths)
    largest = spec if deepest is None else spec.model_copy(
        update={"model": at_depth(spec.model, deepest)})
    if spec.batch_sizes and not training_problems(spec):
        largest = largest.model_copy(update={"batch_size": max(spec.batch_sizes)})
    need = memory_bytes(largest, info, widest, count_params(largest.model, info, widest))
    limit, where = memory_limit(spec.device)
    if need > limit:
        at = f"width {widest}" + ("" if deepest is None else f", depth {deepest}")
        return [("widths", f"estimated memory {need / 2**30:.1f} GiB at {at} "
                 f"(batch_size {largest.batch_size}) exceeds the {limit / 2**30:.1f} GiB {where}: "
                 "use smaller widths" + ("" if deepest is None else " or depths")
                 + " or a smaller batch_size")]
    return []


# --- Files and errors ------------------------------------------------------------------------


def format_validation_error(err: ValidationError) -> str:
    """Pydantic errors as "field.path: message" lines (list items as `widths[2]`)."""
    lines = []
    for e in err.errors():
        path = ""
        for part in e["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key: remove it (check the spelling against the documented keys)"
        elif e["type"] == "missing":
            msg = "required: add it"
        lines.append(f"{path}: {msg}" if path else msg)
    return "\n".join(lines)


def parse_spec(data: Any, source: str = "spec") -> SweepSpec:
    """Validate spec data (a dict from YAML, JSON or a form).

    Raises:
        UserError: the data is not a mapping or is invalid; the message lists every problem
            as "field: message" lines.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source} must be a mapping of spec keys (name, model, task, widths, "
                        f"...), got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"invalid {source}:\n{format_validation_error(exc)}") from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file (.json, else YAML).

    Raises:
        UserError: the file is missing or unreadable, has a syntax error (with its line), or
            the spec is invalid (every problem, one "field: message" line each).
    """
    return parse_spec(read_structured(path, "spec file"), source=f"spec {Path(path)}")
