"""HP bundles: the transferred hyperparameters of a sweep, as a versioned, hashed file.

Tensor Programs V (Yang et al., 2022), Algorithm 1 (µTransfer): tune on the proxy ladder, copy
to the target. `export_bundle` analyses a sweep (`experiments.analysis.analyze`), picks the
transferred global HPs (µP: the stable optimum of every swept HP; the spec's value for the
others), and writes everything needed to reproduce the target's setup:

- the spec, the parametrization and its rules version, the base shapes (role and base dims
  of every parameter), the global HPs, the LR and the optimizer settings;
- the per-parameter table at the target width (role, init std, forward and LR multipliers,
  absolute LR), from `mucore.describe`;
- the evidence: sweep id, per-width optima, drift, verdict, warnings, whether the export was
  forced past a "not confirmed" verdict, library versions;
- a content hash (sha256 of the canonical JSON of all the rest; see `mucore.bundle`).

    bundle = export_bundle(store, sweep_id, target_width=2048)
    write_bundle(bundle, "bundle.json")                  # or .yaml / .yml
    bundle = read_bundle("bundle.json")                  # validates schema and hash
    model, opt = apply(bundle, target_model(bundle))    # mucore.apply_bundle underneath
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn

import mucore
from experiments.analysis import DriftResult, TransferReport, analyze
from experiments.analysis.outcome import Verdict
from experiments.bundle.ladder import (
    at_target_depth,
    bundle_depths,
    bundle_shapes,
    check_depth_verdict,
    drop_unset_depth,
    refusal_words,
)
from experiments.bundle.training import (
    check_training_verdicts,
    choose_rules,
    drop_unset_training,
    moved_settings,
    training_evidence,
    training_fields,
    training_target,
    training_words,
)
from experiments.errors import UserError
from experiments.files import MAX_BUNDLE_BYTES, is_yaml, read_structured
from experiments.models import ModelConfig, build_model
from experiments.models.parametrizations import resolve_parametrization
from experiments.spec.run import GLOBAL_KNOBS, HParamsConfig, OptimizerConfig
from experiments.tasks import TaskConfig, TaskInfo, task_info
from mucore.bundle import (
    BUNDLE_KIND,
    SCHEMA_VERSION,
    BundleError,
    BundleKind,
    SchemaVersion,
    content_hash,
)
from mucore.summary import OPTIONAL_FIELDS, DescribeRow
from mucore.version import __version__ as LIBRARY_VERSION

if TYPE_CHECKING:
    import pandas as pd

    from experiments.store import Store


# A pydantic dataclass over `mucore.DescribeRow`: its fields (in order) are the describe row's,
# then `lr`, so a field added to the describe table reaches every bundle with no edit here.
@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ParamRow(DescribeRow):
    """One parameter of the target model: its `mucore.DescribeRow` at the target width (see
    that class for the fields), plus its absolute learning rate.

    Attributes:
        lr: the absolute learning rate of its optimizer group (the bundle's lr x lr_mult).
    """

    # Keyword-only: it follows the describe row's optional depth fields.
    lr: float = dataclasses.field(kw_only=True)

    @model_serializer(mode="wrap")
    def _drop_unset_depth(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Width-only rows carry no depth fields, so their bundles keep their bytes.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in OPTIONAL_FIELDS and v is None)}


class WidthEvidence(BaseModel):
    """One width's optimum (log2 units) in the evidence."""

    model_config = ConfigDict(extra="forbid")

    width: int
    opt_log2: float | None
    ci_low: float | None
    ci_high: float | None
    best_loss: float | None


class DriftEvidence(BaseModel):
    """One HP's drift in one parametrization, as exported."""

    model_config = ConfigDict(extra="forbid")

    drift_slope: float | None
    drift_ci: list[float] | None
    predicted_log2: float | None
    extrapolated: bool
    widths: list[WidthEvidence]


class Evidence(BaseModel):
    """Why these HPs: the analysis the export was based on.

    Attributes:
        sweep_id: the sweep in the store.
        sweep_name: its name.
        spec_hash: the store's hash of the spec, when known.
        loss: the loss column the optima were taken on.
        tolerance: the drift tolerance of the verdict (log2 per width doubling).
        verdict: "confirmed", "not_confirmed" or "inconclusive".
        reason: the verdict's reason.
        warnings: the analysis warnings.
        forced: exported although the verdict was not confirmed (`--force`).
        drift: per HP ("lr", "output_mult", ...), per parametrization, the optima and drift.
        n_runs: runs analysed.
        versions: library, mucore rules, torch, python.
        depth: a depth ladder's depth section (`analyze --json`'s `depth`); absent otherwise.
        forecast: per parametrization, the best-loss forecast at the target width the export
            was made with (`analyze --json`'s `forecast`); absent in bundles made before the
            forecast existed, so their bytes and hashes are unchanged.
        batch, horizon: a batch / horizon ladder's section (`analyze --json`'s `batch`,
            `horizon`) behind a bundle with that target; absent otherwise
            (`experiments.bundle.training`).
    """

    model_config = ConfigDict(extra="forbid")

    sweep_id: int | None
    sweep_name: str
    spec_hash: str | None = None
    loss: str
    tolerance: float
    verdict: Verdict
    reason: str
    warnings: list[str]
    forced: bool
    drift: dict[str, dict[str, DriftEvidence]]
    n_runs: int
    versions: dict[str, str]
    depth: dict[str, Any] | None = None
    forecast: dict[str, Any] | None = None
    batch: dict[str, Any] | None = None
    horizon: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_depth(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = drop_unset_training(drop_unset_depth(handler(self)))
        return {k: v for k, v in data.items() if not (k == "forecast" and v is None)}

    def forecast_at_target(self, parametrization: str, width: int) -> dict[str, Any] | None:
        """The recorded forecast row (`{width, loss, ci_low, ci_high, ...}`) of
        `parametrization` at `width`, or None (no forecast recorded, refused, other width)."""
        f = (self.forecast or {}).get(parametrization) or {}
        return next((a for a in f.get("at", []) if a.get("width") == width), None)


class HPBundle(BaseModel):
    """A versioned HP bundle. `content_hash` covers every other field.

    Attributes:
        kind: always `mucore.bundle.BUNDLE_KIND` ("mutransfer-hp-bundle").
        schema_version: `mucore.bundle.SCHEMA_VERSION`, bumped on any incompatible change.
        created: ISO 8601 UTC time the newest run behind the evidence finished (the export
            time when built without a store), so re-exporting gives identical bytes.
        spec: the sweep spec (as stored).
        model: the model config (from the spec), to rebuild the target.
        task: the task config (from the spec).
        parametrization: "mup" (or "sp" for a baseline bundle).
        rules_version: the mucore rules version of that parametrization.
        base_width: the proxy width the base shapes are measured at.
        base_shapes: `mucore.BaseShapes.to_dict()`: role and base dims of every parameter.
        hparams: `mucore.HParams` dict: the transferred global HPs (sigma, alpha_out, ...).
        lr: the transferred global learning rate.
        log2_lr: log2 of `lr`.
        optimizer: the optimizer settings (name, betas, eps, weight decay, schedule, ...).
        target_width: the width the table below is computed at.
        param_table: per-parameter µP facts at the target width.
        evidence: the analysis behind the choice.
        content_hash: sha256 of the canonical JSON of everything else.
        base_depth: a depth ladder's base depth (the base shapes know its blocks); absent for
            a width-only sweep (`experiments.bundle.ladder`).
        target_depth: the depth `model` and the table are at; absent for a width-only sweep.
        base_batch_size, target_batch_size: a batch ladder's base and the target's batch;
            absent without a batch target (`experiments.bundle.training`).
        base_horizon, target_horizon: a horizon ladder's base and the target's horizon, in
            steps at the base batch (`--target-steps`); absent without a horizon target.
        train_steps: the optimizer steps the target trains at its batch (target horizon x base
            batch / target batch); absent without a batch or horizon target.
        scaling: the rule that moved `lr`, `optimizer.betas` and `optimizer.eps` from the
            transferred base settings to the target: `{base: {lr, log2_lr, betas, eps},
            batch: {rule, k, summary, ...}, horizon: {...}}`; absent without a target.
    """

    model_config = ConfigDict(extra="forbid")

    kind: BundleKind = BUNDLE_KIND
    schema_version: SchemaVersion = SCHEMA_VERSION
    created: str
    spec: dict[str, Any]
    model: dict[str, Any]
    task: dict[str, Any]
    parametrization: str
    rules_version: str
    base_width: int
    base_shapes: dict[str, Any]
    hparams: dict[str, Any]
    lr: float = Field(gt=0)
    log2_lr: float
    optimizer: dict[str, Any]
    target_width: int = Field(ge=1)
    param_table: list[ParamRow]
    evidence: Evidence
    content_hash: str = ""
    base_depth: int | None = None
    target_depth: int | None = Field(default=None, ge=1)
    base_batch_size: int | None = Field(default=None, ge=1)
    target_batch_size: int | None = Field(default=None, ge=1)
    base_horizon: int | None = Field(default=None, ge=1)
    target_horizon: int | None = Field(default=None, ge=1)
    train_steps: int | None = Field(default=None, ge=1)
    scaling: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _drop_unset_depth(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return drop_unset_training(drop_unset_depth(handler(self)))

    def body(self) -> dict[str, Any]:
        """The plain-JSON form (what is written, hashed and handed to mucore)."""
        return self.model_dump(mode="json")

    def with_hash(self) -> HPBundle:
        """A copy whose `content_hash` matches its content."""
        return self.model_copy(update={"content_hash": content_hash(self.body())})

    def model_config_obj(self) -> ModelConfig:
        """The model config as the zoo's pydantic model."""
        return TypeAdapter(ModelConfig).validate_python(self.model)

    def task_config(self) -> TaskConfig:
        """The task config as the zoo's pydantic model."""
        return TaskConfig.model_validate(self.task)

    def summary(self) -> str:
        """A few human lines: what, for which width, the verdict, the evidence."""
        ev = self.evidence
        hp = ", ".join(f"{k}={v:g}" for k, v in self.hparams.items() if isinstance(v, float))
        model = self.model.get("name") or self.model.get("kind")  # a registered model's name
        lines = [
            f"HP bundle (schema {self.schema_version}), created {self.created}",
            f"sweep {ev.sweep_id} '{ev.sweep_name}': {model} on "
            f"{self.task.get('name')}, base width {self.base_width}, target width "
            f"{self.target_width}" + ("" if self.target_depth is None else
                                      f", base depth {self.base_depth}, target depth "
                                      f"{self.target_depth}"),
            f"parametrization {self.parametrization} (rules {self.rules_version}), optimizer "
            f"{self.optimizer.get('name')}, lr {self.lr:.4g} (2^{self.log2_lr:.3g}), {hp}",
            f"verdict: {ev.verdict}{' (export forced)' if ev.forced else ''}: {ev.reason}",
        ]
        if ev.depth is not None:
            lines.append(f"depth verdict: {ev.depth.get('verdict')}: {ev.depth.get('reason')}")
        moved = training_words(self)
        if moved is not None:
            lines.append(moved)
        for name, section in (("batch", ev.batch), ("horizon", ev.horizon)):
            if section is not None:
                lines.append(f"{name} verdict: {section.get('verdict')}: "
                             f"{section.get('reason')}")
        lr = ev.drift.get("lr", {})
        for param, d in lr.items():
            if d.drift_slope is not None and d.drift_ci is not None:
                lines.append(f"  {param} LR drift {d.drift_slope:+.3f} log2/doubling, 95% CI "
                             f"[{d.drift_ci[0]:+.3f}, {d.drift_ci[1]:+.3f}]")
        row = ev.forecast_at_target(self.parametrization, self.target_width)
        if row is not None and row.get("ci_low") is not None:
            lines.append(f"loss forecast at width {self.target_width}: {row['loss']:.4g} "
                         f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}] ({ev.loss})")
        lines += [f"warning: {w}" for w in ev.warnings]
        lines.append(f"{len(self.param_table)} parameters; content hash {self.content_hash[:16]}")
        return "\n".join(lines)


# --- Building ----------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    return {
        "mutransfer": LIBRARY_VERSION,
        "mucore_rules": ",".join(f"{n}={mucore.get_parametrization(n).version}"
                                 for n in mucore.parametrization_names()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _parts(spec: dict[str, Any]) -> tuple[ModelConfig, TaskConfig, OptimizerConfig,
                                          HParamsConfig, int]:
    """The spec blocks the bundle needs, validated one by one (no device or memory checks:
    a bundle exported on a GPU machine must still load on a laptop)."""
    try:
        model = TypeAdapter(ModelConfig).validate_python(spec["model"])
        # The data fingerprint stays in the stored spec: a bundle is portable, and its target
        # is rebuilt wherever the data is now (another machine gives the files other mtimes).
        block = spec["task"]
        task = TaskConfig.model_validate(
            {**block, "fingerprint": None} if isinstance(block, dict) else block)
        opt = OptimizerConfig.model_validate(spec.get("optimizer", {}))
        hp = HParamsConfig.model_validate(spec.get("hparams", {}))
        base_width = int(spec["base_width"])
    except (KeyError, ValidationError) as exc:
        raise UserError(f"the sweep's stored spec is not usable for a bundle ({exc}): re-create "
                        "the sweep from a valid spec") from None
    return model, task, opt, hp, base_width


def _meta_model(model_cfg: ModelConfig, info: TaskInfo, width: int) -> nn.Module:
    with torch.device("meta"):
        return build_model(model_cfg, info, width)


def param_table(
    model_cfg: ModelConfig,
    info: TaskInfo,
    shapes: mucore.BaseShapes,
    parametrization: str,
    hparams: mucore.HParams,
    optimizer: str,
    lr: float,
    width: int,
    settings: Mapping[str, Any] | None = None,
) -> list[ParamRow]:
    """The per-parameter µP table at `width` (TP5, Table 8), with absolute LRs.

    Built on the meta device, so any target width costs no memory. `settings`: the optimizer
    block (Muon's adjustment changes the hidden LR; its rows say which optimizer trains them).
    """
    model = _meta_model(model_cfg, info, width)
    setup = mucore.parametrize(model, shapes, parametrization, hparams, reinit=False)
    return [ParamRow(**row.to_dict(), lr=lr * row.lr_mult)
            for row in mucore.describe(setup, optimizer, settings)]


def _evidence_drift(report: TransferReport) -> dict[str, dict[str, DriftEvidence]]:
    out: dict[str, dict[str, DriftEvidence]] = {}
    for hp, by_param in {"lr": report.lr, **report.hparams}.items():
        out[hp] = {
            p: DriftEvidence(
                drift_slope=d.drift_slope,
                drift_ci=d.drift_ci,
                predicted_log2=d.predicted_log2,
                extrapolated=d.extrapolated,
                widths=[WidthEvidence(width=w.width, opt_log2=w.opt_log2, ci_low=w.ci_low,
                                      ci_high=w.ci_high, best_loss=w.best_loss)
                        for w in d.widths],
            )
            for p, d in by_param.items()
        }
    return out


def transferred_log2_lr(
    report: TransferReport, target_width: int, parametrization: str = "mup", force: bool = False
) -> float:
    """The LR a bundle for `target_width` carries (log2), once the report allows an export.

    Raises:
        UserError: a target width below 1; the sweep has no runs or no LR optimum at any width
            for `parametrization` (nothing to export, `force` or not); the verdict is not
            confirmed and not `force`.
    """
    if target_width < 1:
        raise UserError(f"--target-width must be >= 1, got {target_width}")
    lr_drift = report.lr.get(parametrization)
    if lr_drift is None:
        have = sorted(report.lr)
        raise UserError(f"the sweep has no {parametrization} runs to export (its "
                        f"parametrizations are {have or 'none'}): pass --parametrization with "
                        "one of them")
    log2_lr = lr_drift.predict(target_width)
    if log2_lr is None:
        # Said plainly, --force or not: forcing overrides a verdict, it cannot invent an LR.
        raise UserError(f"nothing to export: no {parametrization} width has an LR optimum "
                        f"({_no_optimum_words(lr_drift)}), so there is no LR to transfer, even "
                        "with --force; lower the LR grid (add smaller LRs) or finish the sweep, "
                        "then export again")
    # Checked after the above, so --force is offered only when it would export something.
    if report.verdict != "confirmed" and not force:
        raise UserError(refusal_words("transfer", report.verdict, report.reason,
                                      report.next_step))
    return float(log2_lr)


def exported_parametrization(report: TransferReport, parametrization: str | None) -> str:
    """Whose HPs a bundle carries: the one asked for; else µP when the sweep trained it, else
    the sweep's only parametrization (a CompleteP-only depth sweep exports CompleteP's).

    Raises:
        UserError: none asked for and the sweep trained several, none of them µP.
    """
    if parametrization is not None:
        return parametrization
    have = sorted(report.lr)
    if "mup" in have or not have:
        return "mup"  # no runs: `transferred_log2_lr` says so
    if len(have) == 1:
        return have[0]
    raise UserError(f"the sweep trained {', '.join(have)} and no mup: pass --parametrization "
                    "with the one whose HPs to export")


def _no_optimum_words(drift: DriftResult) -> str:
    """Per width, why it has no optimum: "width 32: every run diverged; width 64: ..."."""
    why = {"all_diverged": "every run diverged", "no_data": "no run finished"}
    return "; ".join(f"width {w.width}: {why.get(w.status, w.status)}" for w in drift.widths) \
        or "no runs"


def transferred_hparams(
    report: TransferReport,
    spec_hparams: HParamsConfig,
    target_width: int,
    parametrization: str = "mup",
) -> mucore.HParams:
    """The global µP knobs a bundle carries (TP5, Section 6: the transferable HPs).

    Every knob of `experiments.spec.run.GLOBAL_KNOBS` that the sweep swept takes the report's
    prediction at `target_width` for `parametrization` (µP: its stable optimum); the others keep
    the spec's values. A knob added to `mucore.HParams` is transferred with no edit here.
    """
    values = spec_hparams.model_dump()
    for knob in GLOBAL_KNOBS:
        drift = report.hparams.get(knob, {}).get(parametrization)
        log2_value = None if drift is None else drift.predict(target_width)
        if log2_value is not None:
            values[knob] = 2.0**log2_value
    return mucore.HParams.from_dict(values)


def _evidence(
    spec: dict[str, Any],
    report: TransferReport,
    sweep_id: int | None,
    spec_hash: str | None,
    forced: bool,
    training: dict[str, Any] | None = None,
) -> Evidence:
    return Evidence(
        sweep_id=sweep_id,
        sweep_name=str(spec.get("name", "")),
        spec_hash=spec_hash,
        loss=report.loss,
        tolerance=report.tolerance,
        verdict=report.verdict,
        reason=report.reason,
        warnings=list(report.warnings),
        forced=forced,
        drift=_evidence_drift(report),
        n_runs=report.n_runs,
        versions=_versions(),
        depth=None if report.depth is None else report.depth.to_contract_json(),
        forecast={p: f.contract_json() for p, f in report.forecast.items()} or None,
        **(training or {}),
    )


def build_bundle(
    spec: dict[str, Any],
    report: TransferReport,
    target_width: int,
    *,
    sweep_id: int | None = None,
    spec_hash: str | None = None,
    parametrization: str | None = None,
    force: bool = False,
    created: datetime | None = None,
    target_depth: int | None = None,
    target_batch: int | None = None,
    target_steps: int | None = None,
    rules: dict[str, str] | None = None,
) -> HPBundle:
    """Assemble (and hash) a bundle from a spec and its analysis.

    The transferred HPs: the LR (`transferred_log2_lr`) and every swept global knob
    (`transferred_hparams`) take the analysis's prediction at `target_width` for
    `parametrization` (µP: the stable optimum, the mean of the per-width optima; SP: the drift
    line); unswept knobs keep the spec's values.

    Args:
        spec: the sweep spec as stored (a dict).
        report: `analyze(runs, target_width=target_width)`.
        target_width: the width of the model the bundle is for.
        sweep_id, spec_hash: the store's sweep id and spec hash (evidence).
        parametrization: which parametrization's HPs to export (None: mup, or the sweep's
            only one; `exported_parametrization`).
        force: export although the verdict is not confirmed (recorded as `forced`).
        created: export time (default now, UTC).
        target_depth: a depth ladder's target depth (default: its base depth; refused for a
            width-only sweep; `experiments.bundle.ladder`).
        target_batch, target_steps: a batch / horizon ladder's target batch and horizon (steps
            at the base batch); the LR, betas and eps are moved there by the sweep's scaling
            rule (default: the bases; `experiments.bundle.training`).
        rules: {axis: rule} applied instead of the sweep's on batch / horizon ("sqrt",
            "power:0.5", "fitted"; `experiments.bundle.rule_choice`).

    Raises:
        UserError: the verdict (or, off the base depth, the depth verdict) is not confirmed
            and not `force`; the sweep has no optimum for `parametrization`; the target width
            cannot be built; a target depth for a sweep without a depth ladder; a target
            batch or steps without that ladder (unless `force`), off a base whose verdict is
            not confirmed (unless `force`), or under a rule the optimizer has no entry for.
    """
    model_cfg, task_cfg, opt_cfg, hp_cfg, base_width = _parts(spec)
    parametrization = exported_parametrization(report, parametrization)
    base_depth, target_depth = bundle_depths(spec, model_cfg, target_depth)
    training = training_target(spec, model_cfg, target_batch, target_steps, force)
    # A depth (batch, horizon) ladder at one width claims no width transfer: exporting for that
    # same width needs only the ladder's verdict (checked below), not the width verdict one
    # width cannot confirm.
    same_width_only = (base_depth is not None or training.is_set) and list(
        spec.get("widths") or []) == [target_width]
    log2_lr = transferred_log2_lr(report, target_width, parametrization,
                                  force or same_width_only)
    check_depth_verdict(report, base_depth, target_depth, force)
    chosen = choose_rules(spec, report, parametrization, rules)
    training_refused = check_training_verdicts(report, training, force, chosen)
    info = task_info(task_cfg)
    hparams = transferred_hparams(report, hp_cfg, target_width, parametrization)
    shapes = bundle_shapes(model_cfg, info, base_width, base_depth)
    model_cfg = at_target_depth(model_cfg, target_depth)
    depth_refused = target_depth != base_depth and (
        report.depth is None or report.depth.verdict != "confirmed")
    width_refused = report.verdict != "confirmed" and not same_width_only
    forced = force and (width_refused or depth_refused or training_refused)
    lr, log2_lr, opt_cfg, scaling = moved_settings(spec, opt_cfg, log2_lr, training, chosen)
    bundle = HPBundle(
        created=(created or datetime.now(UTC)).isoformat(timespec="seconds"),
        spec=json.loads(json.dumps(spec, default=str)),
        model=model_cfg.model_dump(mode="json"),
        task=task_cfg.model_dump(mode="json"),
        parametrization=parametrization,
        rules_version=resolve_parametrization(parametrization).version,
        base_width=base_width,
        base_shapes=shapes.to_dict(),
        hparams=hparams.to_dict(),
        lr=lr,
        log2_lr=log2_lr,
        optimizer=opt_cfg.dump(),
        target_width=target_width,
        param_table=param_table(model_cfg, info, shapes, parametrization, hparams, opt_cfg.name,
                                lr, target_width, opt_cfg.model_dump()),
        evidence=_evidence(spec, report, sweep_id, spec_hash, forced,
                           training_evidence(report, training)),
        base_depth=base_depth,
        target_depth=target_depth,
        **training_fields(training),
        scaling=scaling,
    )
    return bundle.with_hash()


def export_bundle(
    store: Store,
    sweep_id: int,
    target_width: int,
    force: bool = False,
    *,
    tolerance: float = 0.25,
    loss: str = "auto",
    parametrization: str | None = None,
    target_depth: int | None = None,
    target_batch: int | None = None,
    target_steps: int | None = None,
    rules: dict[str, str] | None = None,
) -> HPBundle:
    """Analyse a stored sweep and build its bundle for `target_width` (and `target_depth`).

    Args:
        store: an `experiments.store.Store`.
        sweep_id: the sweep.
        target_width: the target model's width.
        force: export even when the verdict is not confirmed (recorded in the bundle).
        tolerance: the verdict's drift tolerance (log2 per width doubling).
        loss: the loss to optimise ("auto": validation where the task has a validation split;
            `experiments.analysis.loss_choice`).
        parametrization: whose HPs to export (None: mup, or the sweep's only one).
        target_depth: a depth ladder's target depth (`build_bundle`).
        target_batch, target_steps: the target's batch and horizon (`build_bundle`).
        rules: batch / horizon rules applied instead of the sweep's (`build_bundle`).

    Raises:
        UserError: unknown sweep, not confirmed without `force`, nothing to export, a target
            depth for a sweep without a depth ladder.
    """
    sweep = store.get_sweep(sweep_id)
    if sweep is None:
        raise UserError(f"no sweep {sweep_id} in the store: see `python -m experiments sweep "
                        "status` for the ids")
    runs = store.runs_frame(sweep_id)
    report = analyze(runs, tolerance=tolerance, loss=loss, target_width=target_width)
    return build_bundle(sweep.spec, report, target_width, sweep_id=sweep_id,
                        spec_hash=sweep.spec_hash, parametrization=parametrization,
                        force=force, created=_evidence_time(runs), target_depth=target_depth,
                        target_batch=target_batch, target_steps=target_steps, rules=rules)


def _evidence_time(runs: pd.DataFrame) -> datetime | None:
    """When the newest run behind the evidence finished (UTC), or None if none has.

    A bundle's `created` is this time rather than the wall clock so that exporting the same
    sweep for the same target twice, from the CLI or the dashboard, gives identical bytes.
    """
    if "finished_at" not in runs or runs["finished_at"].isna().all():
        return None
    newest = runs["finished_at"].dropna().max().to_pydatetime()
    # The store writes naive UTC timestamps.
    return newest.replace(tzinfo=UTC) if newest.tzinfo is None else newest.astimezone(UTC)


# --- Files -------------------------------------------------------------------------------------


def write_bundle(bundle: HPBundle, path: str | Path) -> Path:
    """Write the bundle as JSON, or YAML for a .yaml/.yml path; returns the path.

    Raises:
        UserError: the bundle's hash does not match its content (it was modified in memory).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(bundle_yaml(bundle) if is_yaml(p) else bundle_json(bundle), encoding="utf-8")
    return p


def _checked_body(bundle: HPBundle) -> dict[str, Any]:
    body = bundle.body()
    if content_hash(body) != bundle.content_hash:
        raise UserError("the bundle was changed after it was hashed: call bundle.with_hash()")
    return body


def bundle_json(bundle: HPBundle) -> str:
    """The bundle's JSON text, byte for byte what `write_bundle` puts in a .json file.

    Raises:
        UserError: the bundle's hash does not match its content.
    """
    return json.dumps(_checked_body(bundle), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def bundle_yaml(bundle: HPBundle) -> str:
    """The bundle's YAML text, what `write_bundle` puts in a .yaml/.yml file.

    Raises:
        UserError: the bundle's hash does not match its content.
    """
    return yaml.safe_dump(_checked_body(bundle), sort_keys=False, allow_unicode=True)


def parse_bundle(data: object, source: str = "bundle") -> HPBundle:
    """Verify a parsed bundle (hash, schema) and return it as an `HPBundle`.

    Raises:
        UserError: tampered (hash mismatch), unknown schema or invalid fields; the message
            says which and how to fix it.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source} is not an HP bundle (expected a mapping, got "
                        f"{type(data).__name__}): export one with `python -m experiments export`")
    try:
        mucore.load_bundle(data)
    except BundleError as exc:
        raise UserError(f"{source}: {str(exc).removeprefix('bundle: ')}") from None
    try:
        bundle = HPBundle.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise UserError(f"{source} is not a valid HP bundle ({problems}): re-export it") from None
    invalid = block_problems(bundle)
    if invalid:
        raise UserError(f"{source} is not a valid HP bundle ({'; '.join(invalid[:5])}): "
                        "re-export it with `python -m experiments export`")
    return bundle


def block_problems(bundle: HPBundle) -> list[str]:
    """"FIELD: message" for every invalid field of the blocks a bundle is rebuilt from (model,
    task, optimizer, hparams), checked as a spec's are; empty when all are valid.

    A bundle's hash proves it was not edited by accident, not that whoever hashed it wrote a
    valid model: `verify` and `target_model` build from these blocks, so they are checked
    here, with the field named, rather than failing deep inside a build.
    """
    checks: list[tuple[str, Callable[[], object], int]] = [
        # (block, validation, loc parts to drop: a model's first part is its kind's tag)
        ("model", lambda: TypeAdapter(ModelConfig).validate_python(bundle.model), 1),
        ("task", lambda: TaskConfig.model_validate(bundle.task), 0),
        ("optimizer", lambda: OptimizerConfig.model_validate(bundle.optimizer), 0),
        ("hparams", lambda: HParamsConfig.model_validate(bundle.hparams), 0),
    ]
    out = []
    for block, check, skip in checks:
        try:
            check()
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(x) for x in (block, *e["loc"][skip:]))
                out.append(f"{where}: {e['msg']}")
    return out


def read_bundle(path: str | Path) -> HPBundle:
    """Read and verify a bundle file: JSON for .json, YAML for .yaml/.yml (`read_structured`).

    Raises:
        UserError: missing or unparsable file, hash mismatch, or invalid schema.
    """
    p = Path(path)
    try:
        data = read_structured(p, "bundle", MAX_BUNDLE_BYTES)
    except UserError as exc:
        if not p.is_file():
            raise
        # The file is there but damaged: a bundle is exported, never written by hand.
        raise UserError(f"{exc}; re-export the bundle with `python -m experiments export`") from None
    return parse_bundle(data, source=f"bundle {p}")


# --- Using -------------------------------------------------------------------------------------


def target_model(bundle: HPBundle, width: int | None = None) -> nn.Module:
    """Build the bundle's model family at its target width (or `width`), on the CPU."""
    cfg = bundle.model_config_obj()
    return build_model(cfg, task_info(bundle.task_config()), width or bundle.target_width)


def apply(bundle: HPBundle, model: nn.Module, seed: int = 0) -> tuple[nn.Module,
                                                                      torch.optim.Optimizer]:
    """`mucore.apply_bundle` for an `HPBundle`; mismatches become `UserError`s.

    Raises:
        UserError: the model's parameter names, shapes or roles differ from the bundle's.
    """
    try:
        return mucore.apply_bundle(bundle.body(), model, seed=seed)
    except BundleError as exc:
        raise UserError(str(exc)) from None


def log2_grid_step(spec: dict[str, Any]) -> float:
    """The sweep's LR grid step in log2 units (median spacing for an explicit `lrs` list)."""
    grid = spec.get("lr_grid")
    if grid:
        return float(grid.get("step", 1.0))
    lrs = sorted(math.log2(x) for x in spec.get("lrs") or [])
    if len(lrs) < 2:
        return 1.0
    diffs = sorted(b - a for a, b in zip(lrs, lrs[1:], strict=False))
    return float(diffs[len(diffs) // 2])
