"""Run settings: the one torch-free home of what a run is and what it returns.

The optimizer block, the global µP knobs, one resolved run (`RunConfig`, the job payload the
runner stores and workers train) and its result (`RunResult`) live here and nowhere else.
Importing this module does not import torch, so the spec, the dashboard form and validation
stay cheap.

The global knobs come from `mucore.HParams` (TP5, Yang et al., 2022, Section 6: the transferable
HPs besides the LR are sigma, alpha_out, alpha_attn and alpha_in). `GLOBAL_KNOBS` lists its
numeric fields: they are what `hparam_grid` may sweep, the columns `Store.runs_frame` extracts,
the HPs the analysis finds optima for and the values a bundle carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from experiments.errors import UserError
from experiments.models.configs import ModelConfig
from experiments.models.parametrizations import resolve_parametrization
from experiments.spec.scaling import ScalingConfig, ratios, scaled_settings
from experiments.states import OUTCOME_STATES, RunState
from experiments.tasks.config import TaskConfig
from mucore.hparams import KNOB_NAMES, HParams
from mucore.optimizers import build_kwargs, get_optimizer, optimizer_names, rule_family
from mucore.scaling import OptimizerSettings

# The sweepable global knobs: mucore's list (the numeric fields of mucore.HParams).
GLOBAL_KNOBS: tuple[str, ...] = KNOB_NAMES
# One-line help per knob (form tooltips and generated docs).
_KNOB_DOCS: dict[str, str] = {
    "init_std": "sigma, the global init scale",
    "output_mult": "alpha_out, the readout multiplier (µP divides it by the width mult)",
    "attn_mult": "alpha_attn, the attention score multiplier (attention models only)",
    "input_mult": "alpha_in, the input/embedding multiplier",
    "zero_readout": "initialise the readout to zero (network output is 0 at init)",
    "zero_query": "initialise the attention query to zero (attention models only)",
}

Precision = Literal["fp32", "bf16"]
# The wsd schedule's default decay share: the last 20% of the steps (Hägele et al., 2024,
# arXiv 2405.18392, find 10-20% enough to match cosine).
DEFAULT_DECAY_FRACTION = 0.2


class OptimizerConfig(BaseModel):
    """The spec's `optimizer:` block (mucore.build_optimizer arguments except the LR).

    Attributes:
        name: a registered optimizer (`mucore.optimizer_names()`: adam, adamw, sgd and any
            the user registered). µP's per-group LR rules differ between the Adam family and
            SGD (TP5, Table 8); the registry entry says which family it follows.
        betas: Adam/AdamW betas.
        eps: Adam/AdamW epsilon.
        momentum: SGD momentum.
        weight_decay: global weight decay (0 disables it).
        wd_mode: "coupled" keeps the per-step shrink lr x wd of the base model in every group
            (the reference package's choice); "independent" makes it wd per step, whatever the LR.
        scale_eps: divide Adam epsilon by the width mult for hidden weights (Everett et al.,
            2024): their gradients shrink with width, so a fixed epsilon would dominate.
        schedule: "constant" LR; linear warm-up then "cosine" decay to zero; or "wsd",
            warmup-stable-decay: warm-up, the full LR, then a linear decay to zero over the
            last `decay_fraction` of the steps (`mucore.warmup_stable_decay`).
        warmup_steps: warm-up steps of the cosine and wsd schedules.
        decay_fraction: the share of the steps the wsd schedule decays over, in (0, 1]
            (None: `DEFAULT_DECAY_FRACTION`); only with schedule wsd. Left out of dumps when
            None, so every spec, payload and bundle written before it reads the same.
        adjust_lr_fn: Muon's LR adjustment (other optimizers ignore it), "original" (default:
            update x sqrt(max(1, fan_out / fan_in)), hidden LR width-constant under µP) or
            "match_rms_adamw" (update x 0.2 sqrt(max(fan_out, fan_in)), AdamW's LR reusable;
            µP then divides the hidden LR by sqrt(m)). docs/optimizers.md derives both.
        hidden_lr_correction: Muon with "match_rms_adamw" only: false leaves out the hidden
            LR's / sqrt(m). A diagnostic (deliberately not µP), for showing what the doctor
            and the transfer plots catch; never for real training.
        muon_momentum: Muon's momentum (Nesterov), torch's default 0.95 (`momentum` is SGD's).
    """

    model_config = ConfigDict(extra="forbid")
    # Fields whose choices a registry supplies at run time (the Setup form's selectbox).
    FIELD_OPTIONS: ClassVar[dict[str, Callable[[], list[str]]]] = {"name": optimizer_names}
    # Short form labels (the field names are the spec's keys; "hidden lr correction" is cut
    # beside its checkbox at 1024 px).
    FIELD_LABELS: ClassVar[dict[str, str]] = {"hidden_lr_correction": "µP hidden LR",
                                              "adjust_lr_fn": "Muon LR adjust"}

    name: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    wd_mode: Literal["coupled", "independent"] = "coupled"
    scale_eps: bool = False
    schedule: Literal["constant", "cosine", "wsd"] = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    decay_fraction: float | None = Field(default=None, allow_inf_nan=False)
    adjust_lr_fn: Literal["original", "match_rms_adamw"] = "original"
    hidden_lr_correction: bool = True
    muon_momentum: float = Field(default=0.95, ge=0, lt=1)

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        get_optimizer(v)  # ValueError naming the registered optimizers
        return v

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"optimizer.betas must each be in [0, 1), got {list(v)}: use e.g. [0.9, 0.999]")
        return v

    @field_validator("decay_fraction")
    @classmethod
    def _fraction_in_range(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 < v <= 1.0:
            raise ValueError(f"optimizer.decay_fraction must be in (0, 1], got {v:g}: use e.g. "
                             f"{DEFAULT_DECAY_FRACTION} (the last 20% of the steps decay)")
        return v

    @model_validator(mode="after")
    def _fraction_needs_wsd(self) -> OptimizerConfig:
        if self.decay_fraction is not None and self.schedule != "wsd":
            raise ValueError(f"optimizer.decay_fraction is set but optimizer.schedule is "
                             f"{self.schedule}: set schedule: wsd or remove decay_fraction")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_fraction(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("decay_fraction", 0.0) is None:
            data.pop("decay_fraction")
        return data

    def resolved_decay_fraction(self) -> float:
        """The wsd decay fraction: `decay_fraction`, else `DEFAULT_DECAY_FRACTION`."""
        return DEFAULT_DECAY_FRACTION if self.decay_fraction is None else self.decay_fraction

    @model_validator(mode="after")
    def _muon_settings(self) -> OptimizerConfig:
        rule_family(self.name, self.adjust_lr_fn, self.hidden_lr_correction)  # Muon's only
        return self

    def dump(self) -> dict[str, Any]:
        """The block as JSON, the Muon settings left out at their defaults (so specs and
        bundles written before them hash and read as before)."""
        data = self.model_dump(mode="json")
        for key, default in OPTIMIZER_NEUTRAL_DEFAULTS.items():
            if data.get(key) == default:
                data.pop(key)
        return data

    def build_kwargs(self) -> dict[str, Any]:
        """`mucore.build_optimizer` keyword arguments (everything but the name and LR)."""
        return build_kwargs(self.name, self.model_dump())


# Optimizer fields added after specs were first hashed, with their defaults.
OPTIMIZER_NEUTRAL_DEFAULTS: dict[str, Any] = {"adjust_lr_fn": "original",
                                              "hidden_lr_correction": True,
                                              "muon_momentum": 0.95}


class _HParamsFields(BaseModel):
    """Behaviour shared by every `HParamsConfig` (its fields are generated from mucore.HParams)."""

    model_config = ConfigDict(extra="forbid")

    def knob(self, name: str) -> float:
        """The value of the global knob `name` (one of `GLOBAL_KNOBS`)."""
        return float(getattr(self, name))

    def knobs(self) -> dict[str, float]:
        """The numeric global knobs, in `GLOBAL_KNOBS` order."""
        return {name: self.knob(name) for name in GLOBAL_KNOBS}

    def to_mucore(self) -> HParams:
        """The `mucore.HParams` these values describe."""
        return HParams(**self.model_dump())


def _hparams_field(f: dataclasses.Field[Any]) -> tuple[Any, Any]:
    if f.name in GLOBAL_KNOBS:
        return (float, Field(default=f.default, gt=0, allow_inf_nan=False,
                             description=_KNOB_DOCS.get(f.name)))
    return (bool, Field(default=f.default, description=_KNOB_DOCS.get(f.name)))


# The spec's `hparams:` block: one field per field of `mucore.HParams`, same names, same
# defaults (floats must be finite and > 0). Generated, so a knob added to mucore.HParams reaches
# the spec, the grid keys, the store's runs frame, the analysis and the bundle with no edit here.
if TYPE_CHECKING:
    HParamsConfig = _HParamsFields
else:
    HParamsConfig = create_model(
        "HParamsConfig",
        __base__=_HParamsFields,
        __doc__="The spec's `hparams:` block: the global µP knobs of `mucore.HParams`.",
        **{f.name: _hparams_field(f) for f in dataclasses.fields(HParams)},
    )


class RunConfig(BaseModel):
    """One resolved run of a sweep; stored as JSON in the runs table (the job payload).

    Attributes:
        sweep_name: name of the sweep the run belongs to (for logs).
        model: the zoo model config.
        task: the task config.
        width: the run's width.
        base_width: the proxy width where µP equals SP (base shapes are measured there).
        base_depth: the proxy depth of a depth ladder: base shapes are then inferred
            with the depth factory at it, so CompleteP / depth-µP scale each residual branch and
            the block LRs by m_L = model.depth / base_depth. None: a width-only sweep (the run's
            depth, if any, is `model.depth`).
        parametrization: "sp", "mup" or any registered parametrization table.
        optimizer: optimizer settings.
        lr: the global learning rate.
        hparams: global µP knobs.
        seed: init and batch seed.
        steps: optimizer steps.
        batch_size: examples (sequences for LM tasks) per step.
        base_batch_size: the base of a batch ladder (`batch_size` is this run's rung); None
            without one. See experiments.spec.batch_horizon.
        horizon: the run's rung of a horizon ladder, in steps at the base batch size (`steps`
            is what it trains: horizon x base batch / batch); None without one.
        base_horizon: the base of a horizon ladder; None without one.
        log_every: steps per reported train-loss window.
        device: "auto", "cpu", "cuda" or "cuda:N".
        precision: "fp32", or "bf16" autocast of forward and loss (weights stay fp32).
        compile: train through `torch.compile(model)`.
        scaling: the batch and horizon rules; `lr` is the base LR (tuned at the ladders'
            bases) and the run trains with `effective_optimizer()`.
        noise_scale: record the gradient noise scale B_simple as metric `noise_scale` at every
            log point (experiments.doctor.noise_scale; one extra backward on a quarter batch
            per log point; losses unchanged).
    """

    model_config = ConfigDict(extra="forbid")

    sweep_name: str = ""
    model: ModelConfig
    task: TaskConfig
    width: int = Field(ge=1)
    base_width: int = Field(ge=1)
    base_depth: int | None = Field(default=None, ge=1)
    parametrization: str = "mup"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    lr: float = Field(gt=0, allow_inf_nan=False)
    hparams: HParamsConfig = Field(default_factory=HParamsConfig)
    seed: int = Field(default=0, ge=0)
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    # Batch and horizon ladders (experiments.spec.batch_horizon): None outside them.
    base_batch_size: int | None = Field(default=None, ge=1)
    horizon: int | None = Field(default=None, ge=1)
    base_horizon: int | None = Field(default=None, ge=1)
    log_every: int = Field(default=10, ge=1)
    device: str = "auto"
    precision: Precision = "fp32"
    compile: bool = False
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    noise_scale: bool = False

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        # mucore's tables, else the user's (a registered model's file or an entry point).
        try:
            resolve_parametrization(self.parametrization)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        self.effective_optimizer()  # ValueError: a rule the optimizer has no entry for
        return self

    def effective_optimizer(self) -> tuple[float, OptimizerConfig]:
        """The LR and optimizer block the run trains with: `lr` (the base LR) and the block's
        betas and eps moved by the scaling rules at k = batch_size / base_batch_size and
        steps / base_horizon (`experiments.spec.scaling`); unchanged at k = 1 or rules `none`.

        Raises:
            ValueError: a rule has no entry for the optimizer, or a beta falls below 0.
        """
        opt = self.optimizer
        base = OptimizerSettings(lr=self.lr, betas=opt.betas, eps=opt.eps)
        moved = scaled_settings(opt.name, base, self.scaling, *ratios(self))
        if (moved.betas, moved.eps) == (opt.betas, opt.eps):
            return moved.lr, opt
        return moved.lr, opt.model_copy(update={"betas": moved.betas, "eps": moved.eps})

    @model_serializer(mode="wrap")
    def _drop_unset_scaling(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Payloads of runs without scaling read exactly as before the rules existed.
        data: dict[str, Any] = handler(self)
        for key, default in _RUN_NEUTRAL_DEFAULTS.items():
            if key in data and data[key] == default:
                data.pop(key)
        return data


# RunConfig fields added after payloads were first stored: left out of dumps at these values.
_RUN_NEUTRAL_DEFAULTS: dict[str, Any] = {"scaling": {"batch": "none", "horizon": "none"},
                                         "base_batch_size": None, "base_horizon": None,
                                         "noise_scale": False}


class RunResult(BaseModel):
    """What a run returns (the job result stored beside the run).

    Attributes:
        state: "done", "diverged" (stopped by the blow-up rule) or "cancelled".
        final_train_loss: mean train loss over the last 10% of steps (for a stopped run: the
            mean of its last finite log window, or None).
        final_val_loss: val-set loss at the end (None when the run did not finish).
        steps_done: optimizer steps taken.
        wall_s: wall time of the whole run (setup, training, evaluation).
        samples_per_s: training throughput: examples per second, or tokens per second for LM
            tasks.
        device: where it trained, e.g. "cpu" or "cuda:0 (NVIDIA H100 ...)".
        peak_mem_bytes: torch.cuda.max_memory_allocated on a GPU; None on the CPU.
        initial_loss: loss of the first batch before any update.
        precision: the run's precision ("fp32" or "bf16").
        compiled: whether training went through torch.compile.
    """

    state: RunState
    final_train_loss: float | None
    final_val_loss: float | None
    steps_done: int
    wall_s: float
    samples_per_s: float
    device: str
    peak_mem_bytes: int | None
    initial_loss: float | None = None
    precision: Precision = "fp32"
    compiled: bool = False

    @field_validator("state")
    @classmethod
    def _an_outcome(cls, v: RunState) -> RunState:
        if v not in OUTCOME_STATES:
            raise ValueError(f"a run ends {[str(s) for s in OUTCOME_STATES]}, not {v!r}")
        return v
