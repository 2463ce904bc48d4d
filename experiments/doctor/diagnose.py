"""The µP doctor for zoo and registered models: static checks, dynamic checks, ablation.

1. Build the model family (bad input, e.g. an unknown model, a width it cannot take or a build
   that raises, is a `UserError`: the CLI exits 2), and run it once on two examples of the
   task (`experiments.doctor.health.probe_task`): a model/task mismatch (dtype, shape,
   vocabulary) is bad input too, named with --task. A family whose parameters cannot be given
   µP roles fails the "roles" check.
2. Static (`mucore.check`): the widest model on the meta device, parametrized without drawing
   weights, with the optimizer mucore builds for it. A model `mucore.parametrize` refuses (a
   plain nn.Linear head under µP) fails the "parametrize" check, and the static checks of the
   bare model name the culprit ("readout").
3. Dynamic (`experiments.doctor.dynamic`, when nothing failed so far, or only the readout): a
   few dozen steps (30 by default: output growth can appear late) at every width, with the
   readout *not* zero-initialised (a user's model keeps its own init). "coord_check": every
   module's activation size, the logits included, judged by the role-aware verdict;
   "update_size": every weight's |dW|/|W| slope against the one µP prescribes for its role.
   A plain nn.Linear head trains as it would in the user's code: without a multiplier.
   With them, the health checks (`experiments.doctor.health`): "init_kept" (parametrize
   changed nothing µP keeps as the model has it; when it did, mucore is at fault) and "dead"
   (outputs identically zero, norm gains zero or frozen, parameters that never move).
4. Ablation (`experiments.doctor.ablation`, µP only, when a dynamic check failed): one
   ingredient at a time switched to µP's value; the one that makes both checks pass is named
   with its symptom and fix ("ablation"). Under SP a failing dynamic check is what SP does: a
   warning, not a fault, and no ablation.

The verdict is "healthy" unless a finding failed. Functions return data and never print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import mucore
from experiments.coordcheck.check import (
    check_run_args,
    coord_batch,
    default_batch,
    default_task,
    validate_widths,
)
from experiments.doctor.ablation import (
    ablate,
    ablation_finding,
    plain_output_layers,
    with_rule,
)
from experiments.doctor.dynamic import (
    DYNAMIC_LR,
    DYNAMIC_STEPS,
    Trial,
    run_trial,
    update_finding,
)
from experiments.doctor.health import (
    PROBE_BATCH,
    dead_finding,
    init_changes,
    init_finding,
    probe_task,
)
from experiments.doctor.spectral import norm_finding
from experiments.errors import UserError
from experiments.models import (
    CustomModelConfig,
    ModelConfig,
    check_task,
    check_widths,
    model_factory,
)
from experiments.models.custom import custom_problems
from experiments.tasks import TaskConfig, load_task, task_info
from mucore.check import Finding
from mucore.context import make_setup
from mucore.roles import Role

# What to change when the coordinate check breaks a rule, by the rule the worst module broke.
_COORD_FIXES: dict[str, str] = {
    "no_growth": "an activation grows with width: check that the head is mucore.Readout (output "
    "multiplier alpha_out / m), that the optimizer comes from mucore.build_optimizer (hidden Adam "
    "LR / m), that hidden weights are drawn by mucore.parametrize (fan-in init), and that "
    "attention with a growing head dim uses mucore.attention_scale (1/d_head)",
    "features_move": "a feature shrinks once training starts: its layer learns too slowly at "
    "large width (an LR or forward multiplier scaled down twice?)",
    "readout_moves": "the output shrinks after updates: the readout's multiplier or LR is scaled "
    "down too far (alpha_out / m is the rule, with Adam LR constant)",
    "finite": "an activation is not finite (or zero at some widths only): lower the LR, or "
    "check the model at the widest width",
}


@dataclass
class DoctorReport:
    """The doctor's findings on one model (the `doctor --json` contract).

    Attributes:
        model: the model's name (zoo kind or registered name).
        param: the parametrization checked.
        findings: the static findings, then the coordinate check's.
    """

    model: str
    param: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "problems" if any(f.status == "fail" for f in self.findings) else "healthy"

    def to_dict(self) -> dict[str, Any]:
        """{verdict, model, param, findings: [{check, status, message, fix, evidence}]}."""
        return {"verdict": self.verdict, "model": self.model, "param": self.param,
                "findings": [f.to_dict() for f in self.findings]}


def model_family(cfg: ModelConfig, task: TaskConfig | None, widths: list[int],
                 base_width: int) -> Callable[[int], nn.Module]:
    """The model factory, after refusing bad input (UserError). µP problems of a registered
    model (no readout, say) are left to the checks: they are findings, not bad input."""
    info = task_info(task or default_task(cfg))
    errors = check_task(cfg, info) + check_widths(cfg, info, [*widths, base_width])
    if not errors and isinstance(cfg, CustomModelConfig):
        # Problems with the name, options or widths are bad input; problems of the model itself
        # ("model": no readout, nothing grows) are what the checks diagnose, and a build that
        # raises raises again (UserError, naming file and line) when the checks build it.
        errors = [msg for fld, msg in custom_problems(cfg, info, widths, base_width)
                  if fld != "model"]
    if errors:
        raise UserError("; ".join(errors))
    return model_factory(cfg, info)


def static_findings(factory: Callable[[int], nn.Module], param: str, width: int,
                    base_width: int, optimizer: str, lr: float,
                    optimizer_options: dict[str, Any] | None = None) -> list[Finding]:
    """`mucore.check` of the model at `width` (meta device) with mucore's own optimizer."""
    try:
        shapes = mucore.infer_base_shapes(factory, base_width, width)
    except mucore.ShapeInferenceError as exc:
        return [Finding("roles", "fail", f"µP cannot assign every parameter a role: {exc}",
                        "make every matrix grow with width in at least one dimension, "
                        "and build the same parameters at every width")]
    with torch.device("meta"):
        model = factory(width)
    try:
        setup = mucore.parametrize(model, shapes, param, reinit=False)
    except ValueError as exc:
        # Check the model against the rules parametrize would have applied (roles known, layers
        # untouched): the readout check then names the culprit by its role.
        unapplied = make_setup(shapes.info_for(model), param, mucore.HParams(), shapes)
        # The attention scales parametrize sets without touching a layer (transformers'
        # `scaling`): set them, so the attention check judges the model, not the refusal.
        mucore.configure_attention(model, unapplied)
        skip = {"metadata", "multipliers"}  # nothing was applied: both would only echo that
        rest = [f for f in mucore.check(model, setup=unapplied).findings if f.check not in skip]
        return [Finding("parametrize", "fail", f"mucore.parametrize refuses the model: {exc}",
                        "see the 'readout' finding"), *rest]
    # The optimizer mucore builds for the table (eps scaled: the model is on trial, not eps).
    opt = mucore.build_optimizer(model, setup, optimizer, lr, scale_eps=True,
                                 **(optimizer_options or {}))
    return mucore.check(model, opt, setup=setup).findings


def coord_finding(result: mucore.CoordCheckResult, param: str) -> Finding:
    """The coordinate check as one finding (SP failing it is expected: a warning)."""
    evidence = {"widths": result.widths, "steps": result.steps, "tolerance": result.tolerance,
                "max_abs_slope": result.max_abs_slope, "offenders": result.offenders,
                "violations": [v._asdict() for v in result.violations[:10]],
                "notes": result.notes, "roles": result.roles,
                "slopes": [s._asdict() for s in result.slopes]}
    if result.verdict == "pass":
        note = f"; {result.notes[0]}" if result.notes else ""
        return Finding("coord_check", "pass",
                       f"activation sizes keep µP's promises at widths {result.widths} over "
                       f"{result.steps} steps{note}", evidence=evidence)
    worst = result.violations[0]
    if not mucore.get_parametrization(param).width_stable:
        label = mucore.get_parametrization(param).display_short_label
        return Finding("coord_check", "warn",
                       f"{label}: activations change with width, as {label}'s do "
                       f"({worst.message})",
                       "use --param mup for hyperparameters that transfer across width",
                       evidence)
    return Finding("coord_check", "fail",
                   f"{len(result.offenders)} modules break µP's rules; worst: {worst.message}",
                   _COORD_FIXES.get(worst.rule, ""), evidence)


def run_doctor(
    cfg: ModelConfig,
    param: str,
    widths: Sequence[int],
    *,
    steps: int = DYNAMIC_STEPS,
    optimizer: str = "adam",
    lr: float = DYNAMIC_LR,
    seed: int = 0,
    base_width: int | None = None,
    task: TaskConfig | None = None,
    optimizer_options: dict[str, Any] | None = None,
) -> DoctorReport:
    """Diagnose a zoo or registered model: static checks, dynamic checks, ablation.

    Args:
        cfg: the model (`experiments.models.catalog.model_config(name, options)`).
        param: a registered parametrization ("mup", "sp", ...).
        widths: increasing widths of the dynamic checks (3-4); the static check uses the widest.
        steps, optimizer, lr, seed: the dynamic checks' training (`steps` >= 30 lets late
            output growth show).
        base_width: width where µP equals SP; default the first width.
        task: override the model's default task.
        optimizer_options: Muon's `adjust_lr_fn` / `hidden_lr_correction` (False: the
            diagnostic, deliberately wrong variant the update-norm check catches).

    Raises:
        UserError: bad input (unknown model, options, widths, parametrization, optimizer).
    """
    ws = validate_widths(widths)
    options = dict(optimizer_options or {})
    check_run_args(param, optimizer, steps, lr, options)
    base = ws[0] if base_width is None else int(base_width)
    if base < 1:
        raise UserError(f"--base-width must be >= 1, got {base}")
    factory = model_family(cfg, task, ws, base)
    name = cfg.name if isinstance(cfg, CustomModelConfig) else cfg.kind
    loaded = load_task(task or default_task(cfg))
    probe_task(factory, coord_batch(loaded, PROBE_BATCH, seed), loaded.loss, base, name,
               loaded.info.name)
    report = DoctorReport(name, param, static_findings(factory, param, ws[-1], base,
                                                       optimizer, lr, options))
    table = _dynamic_table(report.findings, factory, param, base, ws)
    if table is None:
        return report
    trial = _trial(cfg, task, factory, table, ws, base, steps=steps, optimizer=optimizer,
                   lr=lr, seed=seed).with_(optimizer_options=options)
    report.findings += dynamic_findings(trial, param)
    return report


def dynamic_findings(trial: Trial, param: str) -> list[Finding]:
    """The dynamic checks of one trial ("coord_check", "update_size"), the health checks
    ("init_kept", "dead": `experiments.doctor.health`) and, when `param` is not SP and a
    dynamic check failed, the ablation naming the culprit ("ablation")."""
    result = run_trial(trial)
    changes = init_changes(trial.factory, trial.shapes, trial.table, trial.hparams,
                           trial.widths[0], trial.seed)
    findings = [coord_finding(result.coord, param), update_finding(result.updates, param),
                norm_finding(result.norms, param, trial.optimizer, trial.optimizer_options),
                init_finding(changes, len(result.motion.first)),
                dead_finding(result.coord.records, trial.steps, result.motion, changes)]
    if mucore.get_parametrization(param).width_stable and not result.healthy:
        findings.append(ablation_finding(trial, result, ablate(trial, result)))
    return findings


def _dynamic_table(findings: list[Finding], factory: Callable[[int], nn.Module], param: str,
                   base: int, widths: list[int]) -> mucore.Parametrization | None:
    """The rules the dynamic checks train with, or None when a static failure rules them out.

    They run when nothing failed, or when only the readout did (the parametrize refusal and
    the readout finding): a plain nn.Linear head then trains as it would in the user's code,
    without the readout multiplier (the table's output forward exponent set to 0), and the
    ablation shows what `mucore.Readout` would change.
    """
    # A wrong optimizer group LR (Muon's uncorrected "match_rms_adamw") is what the dynamic
    # checks measure: they train with the same optimizer, so they still run.
    failed = {f.check for f in findings if f.status == "fail"} - {"optimizer"}
    table = mucore.get_parametrization(param)
    if not failed:
        return table
    if not failed <= {"parametrize", "readout"}:
        return None
    shapes = mucore.infer_base_shapes(factory, base, widths[-1] if widths[-1] != base
                                      else 2 * base)
    with torch.device("meta"):
        heads = plain_output_layers(factory(base), shapes)
    if not heads:
        return None
    return with_rule(table, Role.OUTPUT, f"{table.name} (plain head)", forward_exp=0.0)


def _trial(cfg: ModelConfig, task: TaskConfig | None, factory: Callable[[int], nn.Module],
           table: mucore.Parametrization, widths: list[int], base: int, *, steps: int,
           optimizer: str, lr: float, seed: int) -> Trial:
    """The dynamic checks' run: the coordinate check's task and fixed batch for the model."""
    loaded = load_task(task or default_task(cfg))
    batch = coord_batch(loaded, default_batch(cfg, loaded.info), seed)
    delta = next((w for w in widths if w != base), 2 * base)
    shapes = mucore.infer_base_shapes(factory, base, delta)
    return Trial(factory, shapes, table, widths, batch, loaded.loss, optimizer=optimizer,
                 lr=lr, steps=steps, seed=seed)
