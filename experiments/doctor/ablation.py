"""Ablation: when the dynamic check fails, find the one ingredient whose µP value fixes it.

The µP recipe (TP5, Yang et al., 2022, Table 8 and Section 4) has a handful of ingredients,
each one a field of the rules table (`mucore.Parametrization` is data) or, for a head that
is a plain nn.Linear, of the model:

1. readout multiplier: alpha_out / m on the readout input (`mucore.Readout`);
2. hidden LR scaling: Adam LR / m for hidden weights (`mucore.build_optimizer`);
3. init scaling: hidden std sigma/sqrt(fan_in), readout std constant (`mucore.parametrize`);
4. attention scale: 1/d_head when d_head grows (`mucore.attention_scale`);
5. input multiplier: constant in width (no x sqrt(d_model) on the embeddings);
6. Muon's hidden LR correction: / sqrt(m) with torch's "match_rms_adamw" adjustment;
0. own init kept: vector-like parameters as the model initialises them. This one is mucore's
   job, not the user's: when `mucore.parametrize` changed such a parameter
   (`experiments.doctor.health.init_changes`), the ablation puts the model's own values back,
   and a fix found that way is blamed on mucore, never on the model's code.

`ablate` re-runs the trial once per ingredient that differs from µP's value, with only that
one switched to µP's, and reports the ingredients whose switch alone makes the dynamic check
pass: the culprit, named with the symptom it caused and the fix. Functions return data and
never print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

import mucore
from experiments.doctor.dynamic import LOGIT_NAMES, DynamicResult, Trial, run_trial
from experiments.doctor.health import init_changes, restoring_own_init
from experiments.doctor.spectral import MATCH_RMS_FIX, norm_message, uncorrected_match_rms
from mucore.check import Finding
from mucore.coord import READOUT
from mucore.parametrizations import MUP, Parametrization, RoleRule
from mucore.roles import Role


def with_rule(table: Parametrization, role: Role, name: str = "", **changes: Any
              ) -> Parametrization:
    """`table` with some fields of one role's rule changed (a deliberately modified table)."""
    rules = dict(table.rules)
    rules[role] = replace(rules[role], **changes)
    return replace(table, rules=rules, name=name or f"{table.name}*")


def _copy_rules(table: Parametrization, roles: tuple[Role, ...],
                pick: Callable[[RoleRule, RoleRule], RoleRule]) -> Parametrization:
    """`table` whose rules for `roles` are `pick(own rule, µP's rule)`."""
    rules = dict(table.rules)
    for role in roles:
        rules[role] = pick(rules[role], MUP.rules[role])
    return replace(table, rules=rules)


def plain_output_layers(model: nn.Module, shapes: mucore.BaseShapes) -> list[str]:
    """Names of plain nn.Linear layers that hold an output-role weight (a readout that cannot
    apply alpha_out / m)."""
    out = []
    for name, module in model.named_modules():
        if type(module) is nn.Linear:
            key = mucore.canonical_name(f"{name}.weight" if name else "weight")
            param = shapes.params.get(key)
            if param is not None and param.role is Role.OUTPUT:
                out.append(mucore.canonical_name(name))
    return out


def as_readouts(factory: Callable[[int], nn.Module], shapes: mucore.BaseShapes
                ) -> Callable[[int], nn.Module]:
    """The factory with every plain nn.Linear head replaced by a `mucore.Readout` (same
    weights, same names): the model as it would be with µP's readout layer."""
    def build(width: int) -> nn.Module:
        model = factory(width)
        for name in plain_output_layers(model, shapes):
            old = model.get_submodule(name)
            assert isinstance(old, nn.Linear)
            new = mucore.Readout(old.in_features, old.out_features, bias=old.bias is not None)
            new.load_state_dict(old.state_dict())
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, new)
        return model
    return build


@dataclass(frozen=True)
class Ingredient:
    """One µP ingredient the ablation can switch.

    Attributes:
        key: short id ("readout_mult", "hidden_lr", "init", "attention", "input_mult").
        label: plain words.
        differs: whether a trial's value differs from µP's.
        to_mup: the trial with this ingredient (only) at µP's value.
        culprit: `(trial, symptom) -> message` naming what is wrong, the symptom and the fix.
        fix: what to change in the user's code.
    """

    key: str
    label: str
    differs: Callable[[Trial], bool]
    to_mup: Callable[[Trial], Trial]
    culprit: Callable[[Trial, str], str]
    fix: str


def _heads(trial: Trial) -> str:
    model = trial.factory(trial.widths[0])
    names = plain_output_layers(model, trial.shapes) or [
        n.rpartition(".")[0] or n for n, b in trial.shapes.params.items()
        if b.role is Role.OUTPUT and len(b.base_shape) >= 2]
    return ", ".join(f"`{n}`" for n in names) or "the head"


def _readout_differs(t: Trial) -> bool:
    out = t.table.rules[Role.OUTPUT].forward_exp != MUP.rules[Role.OUTPUT].forward_exp
    return out or bool(plain_output_layers(t.factory(t.widths[0]), t.shapes))


def _readout_to_mup(t: Trial) -> Trial:
    table = with_rule(t.table, Role.OUTPUT, t.table.name,
                      forward_exp=MUP.rules[Role.OUTPUT].forward_exp)
    return t.with_(table=table, factory=as_readouts(t.factory, t.shapes))


def _hidden_lr_to_mup(t: Trial) -> Trial:
    lr = MUP.rules[Role.HIDDEN].lr_exp
    return t.with_(table=with_rule(t.table, Role.HIDDEN, t.table.name, lr_exp=dict(lr)))


def _init_to_mup(t: Trial) -> Trial:
    return t.with_(table=_copy_rules(t.table, (Role.INPUT, Role.HIDDEN, Role.OUTPUT),
                                     lambda own, mup: replace(own, init=mup.init)))


def _init_differs(t: Trial) -> bool:
    return any(t.table.rules[r].init != MUP.rules[r].init for r in (Role.HIDDEN, Role.OUTPUT,
                                                                    Role.INPUT))


def changed_by_parametrize(t: Trial) -> list[str]:
    """Parameters `mucore.parametrize` changed although µP keeps the model's own init."""
    return [c.param for c in init_changes(t.factory, t.shapes, t.table, t.hparams,
                                          t.widths[0], t.seed)]


def _own_init_to_mup(t: Trial) -> Trial:
    return t.with_(factory=restoring_own_init(t.factory, set(changed_by_parametrize(t))))


def _own_init_culprit(t: Trial, s: str) -> str:
    names = changed_by_parametrize(t)
    shown = ", ".join(f"'{n}'" for n in names[:3]) + (" ..." if len(names) > 3 else "")
    return (f"mucore.parametrize overwrote {shown}, which µP keeps as the model initialises "
            f"them: {s}; putting the model's own values back flattens them: the fault is in "
            "mucore, not in the model's code")


def _muon_corrected(t: Trial) -> Trial:
    return t.with_(optimizer_options={**t.optimizer_options, "hidden_lr_correction": True})


INGREDIENTS: tuple[Ingredient, ...] = (
    Ingredient(
        "own_init", "own init of vector-like parameters",
        lambda t: bool(changed_by_parametrize(t)), _own_init_to_mup, _own_init_culprit,
        "a mucore fault (see 'init_kept'): report it; until it is fixed, copy those "
        "parameters' own values back after mucore.parametrize"),
    Ingredient(
        "readout_mult", "readout multiplier", _readout_differs, _readout_to_mup,
        lambda t, s: f"{_heads(t)} is not a readout: {s}; setting its forward multiplier to "
        "1/m (mucore.Readout) flattens them",
        "make the head a mucore.Readout (its input is multiplied by alpha_out / m); for a "
        "model you did not write (transformers), call mucore.replace_readout(model, "
        "'lm_head') in its factory"),
    Ingredient(
        "hidden_lr", "hidden LR scaling",
        lambda t: t.table.rules[Role.HIDDEN].lr_exp != MUP.rules[Role.HIDDEN].lr_exp,
        _hidden_lr_to_mup,
        lambda t, s: f"hidden weights train with an LR that is not scaled with width: {s}; "
        "dividing their Adam LR by m flattens them",
        "build the optimizer with mucore.build_optimizer (hidden Adam LR = lr / m)"),
    Ingredient(
        "muon_hidden_lr", "Muon hidden LR correction",
        lambda t: uncorrected_match_rms(t.optimizer_options), _muon_corrected,
        lambda t, s: f"Muon's 'match_rms_adamw' updates grow like sqrt(m) in spectral norm: {s}; "
        "dividing the hidden LR by sqrt(m) flattens them", MATCH_RMS_FIX),
    Ingredient(
        "init", "init scaling", _init_differs, _init_to_mup,
        lambda t, s: f"weights are drawn with SP's width-independent std, not µP's: {s}; "
        "drawing hidden weights with std sigma/sqrt(fan_in) flattens them",
        "let mucore.parametrize draw the weights (hidden std sigma/sqrt(fan_in), readout "
        "std constant) instead of a fixed std"),
    Ingredient(
        "attention", "attention scale",
        lambda t: t.table.attention_inverse != MUP.attention_inverse,
        lambda t: t.with_(table=replace(t.table, attention_inverse=MUP.attention_inverse)),
        lambda t, s: f"attention scores are scaled by 1/sqrt(d_head) while d_head grows: {s}; "
        "scaling them by 1/d_head flattens them",
        "scale q.k by mucore.attention_scale (alpha_attn * sqrt(d_head0) / d_head)"),
    Ingredient(
        "input_mult", "input multiplier",
        lambda t: t.table.rules[Role.INPUT].forward_exp != MUP.rules[Role.INPUT].forward_exp,
        lambda t: t.with_(table=with_rule(t.table, Role.INPUT, t.table.name,
                                          forward_exp=MUP.rules[Role.INPUT].forward_exp)),
        lambda t, s: f"the input multiplier changes with width: {s}; keeping it constant "
        "(alpha_in) flattens them",
        "do not scale embeddings by a width-dependent factor (e.g. sqrt(d_model)); use "
        "mucore.InputScale"),
)


@dataclass(frozen=True)
class AblationTry:
    """One ingredient switched to µP's value: what the dynamic check said then.

    Attributes:
        key, label: the ingredient.
        healthy: both dynamic checks passed.
        cleared: none of the modules and weights that failed before fails now (others may:
            at small widths a noisy module can cross the tolerance once the big error is gone).
        excess: how far the worst measurement stayed outside its range.
    """

    key: str
    label: str
    healthy: bool
    cleared: bool
    excess: float


def culprits(result: DynamicResult) -> set[str]:
    """The modules and weights a dynamic result fails on."""
    return (set(result.coord.offenders) | {j.param for j in result.updates.failed}
            | {j.param for j in result.norms.failed})


def symptom(result: DynamicResult, logits_first: bool = False) -> str:
    """The worst thing the dynamic check saw, in words ("logits grow by x1.41 per width
    doubling"): the largest growth (the network output's first when `logits_first`), else
    the worst broken rule, else the worst update size."""
    coord = result.coord
    grows = sorted((v for v in coord.violations if v.rule == "no_growth"),
                   key=lambda v: -v.slope)
    heads = [v for v in grows if v.role == READOUT and not _is_scores(v.module)]
    if logits_first and heads:
        grows = heads
    if grows:
        v = grows[0]
        what = ("logits" if v in heads else f"attention scores '{v.module}'"
                if _is_scores(v.module) else f"the outputs of '{v.module}'")
        return f"{what} grow by x{2.0 ** v.slope:.2f} per width doubling"
    if coord.violations:
        return coord.violations[0].message
    failed = result.updates.failed
    if failed:
        j = failed[0]
        return (f"'{j.param}' updates change x{2.0 ** j.slope:.2f} per width doubling "
                f"where µP prescribes x{2.0 ** j.expected:.2f}")
    if result.norms.failed:
        return norm_message(result.norms.failed[0])
    return "nothing"


def _is_scores(module: str) -> bool:
    return module.rpartition(".")[2] in LOGIT_NAMES


def ablate(trial: Trial, before: DynamicResult) -> list[AblationTry]:
    """Re-run `trial` once per ingredient that differs from µP's value, that one switched."""
    failing = culprits(before)
    tries = []
    for ing in INGREDIENTS:
        if ing.differs(trial):
            after = run_trial(ing.to_mup(trial))
            tries.append(AblationTry(ing.key, ing.label, after.healthy,
                                     not failing & culprits(after), after.excess()))
    return tries


def ablation_finding(trial: Trial, result: DynamicResult, tries: list[AblationTry]
                     ) -> Finding:
    """Name the culprit: the ingredients whose µP value alone makes the dynamic checks pass
    (or, when none does, clears every module and weight that failed)."""
    # `before`: the worst excess with nothing switched, the bar each try is measured against.
    evidence = {"tried": [t.__dict__ for t in tries], "symptom": symptom(result),
                "before": result.excess()}
    by_key = {i.key: i for i in INGREDIENTS}
    fixes = [t for t in tries if t.healthy] or [t for t in tries if t.cleared]
    if fixes:
        ing = [by_key[t.key] for t in fixes]
        return Finding("ablation", "fail",
                       "; ".join(i.culprit(trial, symptom(result, i.key == "readout_mult"))
                                 for i in ing),
                       "; ".join(i.fix for i in ing), evidence)
    if not tries:
        return Finding("ablation", "warn", "every switchable ingredient (readout multiplier, "
                       "hidden LR, init, attention scale, input multiplier; mucore kept the "
                       "model's own init of its vector-like parameters) already has µP's "
                       f"value, yet {symptom(result)}: the cause is in the model's own code",
                       "look for width-dependent constants in the forward pass (a hand-written "
                       "attention scale, a multiplier, a custom init)", evidence)
    best = min(tries, key=lambda t: t.excess)
    mucore_part = ("; mucore.parametrize also changed parameters µP keeps (see 'init_kept'): "
                   "that is mucore's fault, not the model's" if any(t.key == "own_init"
                                                                   for t in tries) else "")
    return Finding("ablation", "warn", f"no single ingredient restores flat slopes "
                   f"({symptom(result)}); switching the {best.label} to µP's helps most"
                   f"{mucore_part}",
                   "switch every ingredient listed in the evidence to µP's value", evidence)
