"""The batch-size and horizon part of an HP bundle: the target's (batch, steps) and the
optimizer settings the sweep's scaling rule moves there.

A sweep with a batch ladder (`batch_sizes`, `base_batch_size`) or a horizon ladder (`horizons`,
`base_horizon`; `experiments.spec.batch_horizon`) measures the optimum of the *base* settings
under its `scaling` rule (`experiments.spec.scaling`): every run trains the grid LR moved by the
rule at its own ratio k. A bundle for a target batch B and horizon S therefore carries the
transferred base LR moved the same way, at

    k_batch = B / base_batch_size,   k_horizon = S / base_horizon,

so the SDE square-root rule (Malladi et al., 2022) gives LR x sqrt(k_batch), 1 - beta x
k_batch and eps / sqrt(k_batch), and a power rule LR x k^X (Shen et al., 2024).

Units, as the sweep's: `--target-steps S` is the horizon in optimizer steps *at the base batch
size*; at batch B the target trains S x base_batch_size / B steps (the examples seen fixed, like
every rung of a batch ladder), which the bundle records as `train_steps` and `verify` trains.

Refused (exit 2): a target on an axis the sweep has no ladder on, unless `--force` (then the
spec's own batch_size / steps stand in for the base, the rule is unmeasured and the bundle
records forced: true); a target off the base whose axis verdict is not confirmed, unless
`--force` (`check_ladder_verdict`); a rule with no entry for the optimizer, a rule that breaks at
the target's ratio, or a (batch, horizon) whose steps are not whole. Bundles of sweeps without
these ladders carry none of the fields below, so their bytes and hash are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from experiments.analysis import TransferReport
from experiments.analysis.axes import Axis, get_axis
from experiments.analysis.exponent_schema import FITTED
from experiments.bundle.ladder import check_ladder_verdict, ladder_target
from experiments.bundle.rule_choice import check_rule_choice, chosen_scaling, parse_rule
from experiments.errors import UserError
from experiments.models import ModelConfig
from experiments.spec.run import OptimizerConfig
from experiments.spec.scaling import PowerRule, ScalingConfig, scaled_settings
from mucore.scaling import OptimizerSettings, ScalingAxis, ScalingRule

# Bundle and evidence fields a bundle without batch/horizon targets leaves out.
TRAINING_BUNDLE_FIELDS = frozenset({"base_batch_size", "target_batch_size", "base_horizon",
                                    "target_horizon", "train_steps", "scaling", "batch",
                                    "horizon"})


@dataclass(frozen=True)
class TrainingTarget:
    """The bundle's target along the batch and horizon axes (None: no ladder, no target).

    Attributes:
        base_batch, target_batch: the batch the LR is tuned at and the target's batch.
        base_horizon, target_horizon: the same for the horizon (steps at the base batch).
        train_steps: the optimizer steps the target trains at its batch (None: the spec's).
        forced_axes: axes targeted with `--force` although the sweep has no ladder on them.
    """

    base_batch: int | None = None
    target_batch: int | None = None
    base_horizon: int | None = None
    target_horizon: int | None = None
    train_steps: int | None = None
    forced_axes: tuple[str, ...] = ()

    @property
    def is_set(self) -> bool:
        """Whether the bundle records a batch or horizon target at all."""
        return self.base_batch is not None or self.base_horizon is not None

    def ratios(self) -> tuple[float, float]:
        """(k_batch, k_horizon); 1 on an axis without a target."""
        return (_ratio(self.target_batch, self.base_batch),
                _ratio(self.target_horizon, self.base_horizon))


def _ratio(target: int | None, base: int | None) -> float:
    return 1.0 if target is None or base is None else target / base


def _axis_target(spec: dict[str, Any], model: ModelConfig, axis: Axis, target: int | None,
                 fallback: str, force: bool) -> tuple[int | None, int | None, bool]:
    """(base, target, forced) on `axis`: the ladder's (`ladder_target`), or with `force` and no
    ladder the spec's `fallback` field (batch_size, steps) as the base."""
    if spec.get(axis.spec_values) or target is None:
        return (*ladder_target(spec, model, axis, target), False)
    if not force:
        raise UserError(
            f"{axis.target_flag} {target} needs a sweep with a {axis.word} ladder, and sweep "
            f"'{spec.get('name', '')}' has no {axis.spec_values}: drop {axis.target_flag}, sweep "
            f"{axis.spec_values} (e.g. {axis.spec_values}: {axis.example}), or pass --force to "
            f"export at it unmeasured (the spec's {fallback} as the base; recorded as forced)")
    if target < 1:
        raise UserError(f"{axis.target_flag} must be >= 1, got {target}")
    return int(spec[fallback]), target, True


def training_target(spec: dict[str, Any], model: ModelConfig, target_batch: int | None,
                    target_steps: int | None, force: bool = False) -> TrainingTarget:
    """The bundle's (batch, horizon) target and the steps it trains (module docstring).

    Raises:
        UserError: a target without a ladder on its axis (without `force`), a target below 1,
            or a batch that cannot see the horizon's examples in whole steps.
    """
    bb, tb, fb = _axis_target(spec, model, get_axis("batch"), target_batch, "batch_size", force)
    bh, th, fh = _axis_target(spec, model, get_axis("horizon"), target_steps, "steps", force)
    forced = tuple(a for a, f in (("batch", fb), ("horizon", fh)) if f)
    if bb is None and bh is None:
        return TrainingTarget()
    horizon = th if th is not None else int(spec["steps"])
    if bb is None or tb is None:
        return TrainingTarget(bb, tb, bh, th, horizon, forced)
    steps = horizon * bb / tb  # the examples of `horizon` steps at the base batch
    if steps != int(steps):
        raise UserError(
            f"--target-batch {tb} cannot see the examples of {horizon} steps at the base batch "
            f"{bb} in whole steps ({horizon} x {bb} / {tb} = {steps:g}): pick --target-steps a "
            f"multiple of {tb // math.gcd(tb, bb)}")
    return TrainingTarget(bb, tb, bh, th, int(steps), forced)


def check_training_verdicts(report: TransferReport, target: TrainingTarget,
                            force: bool, chosen: ChosenRules | None = None) -> bool:
    """Refuse a target off the base batch or horizon whose verdict is not confirmed (unless
    `force`); returns whether the export goes past such a refusal (recorded as forced).

    On an axis whose rule the export chose (`chosen`, `--batch-rule`), the rule's priced
    regret is the evidence instead of the verdict (`experiments.bundle.rule_choice`)."""
    refused = bool(target.forced_axes)
    for name, base, value in (("batch", target.base_batch, target.target_batch),
                              ("horizon", target.base_horizon, target.target_horizon)):
        if name in target.forced_axes:
            continue
        if chosen is not None and name in chosen.choices:
            refused |= check_rule_choice(report, chosen.parametrization, name,
                                         chosen.choices[name], chosen.exponent(name), base,
                                         value, force)
            continue
        check_ladder_verdict(report, get_axis(name), base, value, force)
        section = report.ladders.get(name)
        if base is not None and value != base and (section is None
                                                   or section.verdict != "confirmed"):
            refused = True
    return refused


@dataclass(frozen=True)
class ChosenRules:
    """Rules the export applies in place of the sweep's (`export --batch-rule ...`).

    Attributes:
        scaling: the scaling config applied (the sweep's, with the chosen axes replaced).
        choices: axis -> the parsed choice (`rule_choice.parse_rule`: a name, a power, fitted).
        parametrization: the exported parametrization (whose fitted exponent `fitted` reads).
        swept: the sweep's own scaling config.
        extra_lr_exp: axis -> LR exponent applied on top of `scaling` (`fitted`: the drift).
    """

    scaling: ScalingConfig
    choices: dict[str, str | PowerRule]
    parametrization: str
    swept: ScalingConfig
    extra_lr_exp: dict[str, float]

    def exponent(self, axis: str) -> float:
        """The LR exponent applied along `axis` (the rule's plus any extra)."""
        rule = self.scaling.rule(axis)
        base = rule.exponent if rule.exponent is not None else _lr_exponent(rule)
        return base + self.extra_lr_exp.get(axis, 0.0)


def choose_rules(spec: dict[str, Any], report: TransferReport, parametrization: str,
                 rules: dict[str, str] | None) -> ChosenRules | None:
    """The export's rules (None: the sweep's) from `--batch-rule` / `--horizon-rule` text.

    Raises:
        UserError: an unknown rule, or `fitted` without a fitted exponent.
    """
    if not rules:
        return None
    swept = _stored_scaling(spec)
    choices = {axis: parse_rule(axis, text) for axis, text in rules.items()}
    scaling, extra = chosen_scaling(swept, report, parametrization, choices)
    return ChosenRules(scaling, choices, parametrization, swept, extra)


def _lr_exponent(rule: ScalingRule) -> float:
    return max((r.lr_exp for r in rule.rows.values()), key=abs)


def _stored_scaling(spec: dict[str, Any]) -> ScalingConfig:
    try:
        return ScalingConfig.model_validate(spec.get("scaling") or {})
    except ValueError as exc:
        raise UserError(f"the sweep's stored scaling block is not usable ({exc}): re-create "
                        "the sweep from a valid spec") from None


def _rule_record(rule: ScalingRule, k: float) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule.name, "k": k, "summary": rule.summary}
    if rule.exponent is not None:
        out["exponent"] = rule.exponent
    if rule.citation:
        out["citation"] = rule.citation
    return out


def moved_settings(
    spec: dict[str, Any], opt: OptimizerConfig, log2_lr: float, target: TrainingTarget,
    chosen: ChosenRules | None = None,
) -> tuple[float, float, OptimizerConfig, dict[str, Any] | None]:
    """(LR, log2 LR, optimizer block, scaling record) at the target: the base LR, betas and eps
    moved by the sweep's rule (or the `chosen` one) at the target's ratios; unchanged (record
    None) without a target.

    Raises:
        UserError: the stored `scaling` block is invalid, its rule has no entry for the
            optimizer (e.g. `sqrt` for SGD), or it breaks at the target's ratio.
    """
    if not target.is_set:
        return 2.0**log2_lr, log2_lr, opt, None
    scaling = _stored_scaling(spec) if chosen is None else chosen.scaling
    kb, kh = target.ratios()
    base = OptimizerSettings(2.0**log2_lr, opt.betas, opt.eps)
    try:
        moved = scaled_settings(opt.name, base, scaling, kb, kh)
    except ValueError as exc:
        raise UserError(f"cannot move the LR to the target: {exc}; export for the base batch "
                        "and steps, or sweep under a rule the optimizer has") from None
    extra = {} if chosen is None else chosen.extra_lr_exp
    factor = kb ** extra.get("batch", 0.0) * kh ** extra.get("horizon", 0.0)
    if factor != 1.0:  # `fitted`: the measured drift on top of the swept rule
        moved = replace(moved, lr=moved.lr * factor)
    record: dict[str, Any] = {
        "base": {"lr": base.lr, "log2_lr": log2_lr, "betas": list(base.betas), "eps": base.eps},
    }
    for axis, k, b in ((ScalingAxis.BATCH, kb, target.base_batch),
                       (ScalingAxis.HORIZON, kh, target.base_horizon)):
        if b is not None:
            record[axis.value] = _rule_record(scaling.rule(axis), k)
            if chosen is not None and axis.value in chosen.choices:  # not the sweep's rule
                fitted = chosen.choices[axis.value] == FITTED
                record[axis.value]["chosen"] = "fitted" if fitted else "named"
                record[axis.value]["swept_under"] = chosen.swept.rule(axis).label
                record[axis.value]["lr_exponent"] = chosen.exponent(axis.value)
    new_opt = opt.model_copy(update={"betas": moved.betas, "eps": moved.eps})
    # At k = 1 the LR is the base's: keep its log2 exactly rather than round-trip it.
    return moved.lr, log2_lr if moved.lr == base.lr else math.log2(moved.lr), new_opt, record


def training_evidence(report: TransferReport, target: TrainingTarget) -> dict[str, Any]:
    """The batch and horizon sections of `analyze --json` behind the target (absent ones
    left out), for the bundle's evidence."""
    out: dict[str, Any] = {}
    for name, base in (("batch", target.base_batch), ("horizon", target.base_horizon)):
        section = report.ladders.get(name)
        if base is not None and section is not None:
            out[name] = section.to_contract_json()
    return out


def training_fields(target: TrainingTarget) -> dict[str, Any]:
    """The bundle's top-level batch/horizon fields (None where unset, then dropped)."""
    return {"base_batch_size": target.base_batch, "target_batch_size": target.target_batch,
            "base_horizon": target.base_horizon, "target_horizon": target.target_horizon,
            "train_steps": target.train_steps}


def drop_unset_training(data: dict[str, Any]) -> dict[str, Any]:
    """A serialized bundle (or evidence) without its batch/horizon fields when they are unset."""
    return {k: v for k, v in data.items()
            if not (k in TRAINING_BUNDLE_FIELDS and v is None)}


def training_words(bundle: Any) -> str | None:
    """One summary line: the batch/horizon move and the rule, or None without a target."""
    scaling = bundle.scaling
    if scaling is None:
        return None
    parts = []
    for name, base, value in (("batch", bundle.base_batch_size, bundle.target_batch_size),
                              ("horizon", bundle.base_horizon, bundle.target_horizon)):
        rec = scaling.get(name)
        if rec is not None:
            rule = rec["rule"] + (f"({rec['exponent']:g})" if "exponent" in rec else "")
            parts.append(f"{name} {base} -> {value} ({rule}, k={rec['k']:g})")
    base_log2 = scaling["base"]["log2_lr"]
    return (f"{'; '.join(parts)}: trains {bundle.train_steps} steps; lr 2^{base_log2:.3g} -> "
            f"2^{bundle.log2_lr:.3g}, betas {tuple(bundle.optimizer.get('betas', ()))}, eps "
            f"{bundle.optimizer.get('eps')}")
