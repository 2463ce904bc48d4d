"""The static µP doctor: is this model and its training setup really µP, and if not, what is missing?

The reference package's users report the same silent failures again and again (TP5, Yang et
al., 2022, and its issue tracker): a model that was never given base shapes and trains as SP,
a plain Linear readout, 1/sqrt(d) attention with a growing head dim, tied embeddings, an LR
scheduler that overwrites per-group LRs, weight decay coupled to the per-group LR, a fixed Adam
eps at large width, metadata lost under wrappers. `check` looks for each of them without
training (parameter names, module types, multipliers and optimizer groups only), so it runs in
well under a second even for a large model built on the meta device.

Each check yields a `Finding` (check, status pass|warn|fail, message, fix, evidence); the
`Diagnosis` is "healthy" when nothing fails. The checks, in order:

1. metadata: the model was parametrized (`mucore.parametrize` records its `MuSetup` on the
   model; or pass `setup=`), and every parameter name resolves in it. Metadata is name-keyed:
   torch.compile's `_orig_mod.` prefix is understood, deepcopy keeps it; a wrapper that renames
   parameters (DDP's `module.`) is caught.
2. parametrization: which table is in force (SP is reported as SP, not as broken µP) and the
   width multipliers.
3. readout: every output-like weight sits in a layer that applies the readout multiplier
   (`mucore.Readout` / `mucore.TiedReadout`).
4. multipliers: every module's forward constants (`mu_configure`) are the setup's (lost when
   weights are loaded into a fresh model without `parametrize(..., reinit=False)`).
5. attention: attention-like modules set their score scale from the table (`mu_configure`,
   or mucore sets transformers' `scaling`, `mucore.adapters`); an `nn.MultiheadAttention`
   whose head dim grows with width fails under µP (it takes no scale).
6. tied: weights shared between an embedding and a head go through `mucore.TiedReadout`.
7. optimizer: group LRs follow the table's per-parameter LR multipliers relative to each
   other; weight_decay: every decayed group shrinks alike per step (lr * wd equal); eps: Adam
   eps is one value or scaled by the table (a fixed eps at large width is a warning).
8. lr_schedule: the groups' LRs still follow their `lr_mult` (nothing set absolute LRs), and
   a few `scheduler.step()` calls on a copy keep the ratios.
"""

from __future__ import annotations

import copy
import math
import sys
import types
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from mucore.adapters import OWN_SCALING_ATTR, adapted_attention, attention_scaling
from mucore.context import MuContext, MuSetup
from mucore.init import SETUP_ATTR
from mucore.layers import MuConfigurable, Readout, TiedReadout
from mucore.optim import optimizer_class
from mucore.optimizers import get_optimizer, optimizer_family, optimizer_names, rule_family
from mucore.parametrizations import MUON_FAMILIES, OptimizerFamily
from mucore.roles import AttentionBase, Role, canonical_name

Status = Literal["pass", "warn", "fail"]

# Relative tolerance when comparing LR / weight-decay / eps ratios between groups.
_RTOL = 1e-6
# scheduler.step() calls made on a copy of the optimizer and scheduler.
SCHEDULER_STEPS = 3


@dataclass(frozen=True)
class Finding:
    """One check's outcome.

    Attributes:
        check: the check's name ("metadata", "readout", "optimizer", ...).
        status: "pass", "warn" (suspicious, not necessarily wrong) or "fail".
        message: what was found, naming the parameters or modules.
        fix: what to change ("" when nothing needs to).
        evidence: the numbers and names behind the message (plain JSON).
    """

    check: str
    status: Status
    message: str
    fix: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"check": self.check, "status": self.status, "message": self.message,
                "fix": self.fix, "evidence": self.evidence}


@dataclass
class Diagnosis:
    """All findings of `check`; `verdict` is "healthy" unless some finding failed."""

    findings: list[Finding]
    parametrization: str | None = None

    @property
    def verdict(self) -> str:
        return "problems" if self.failed() else "healthy"

    def failed(self) -> list[Finding]:
        """The failing findings, in check order."""
        return [f for f in self.findings if f.status == "fail"]

    def finding(self, check: str) -> Finding:
        """The (first) finding of one check; KeyError if that check did not run."""
        for f in self.findings:
            if f.check == check:
                return f
        raise KeyError(f"check '{check}' did not run; ran {[f.check for f in self.findings]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: {verdict, parametrization, findings: [...]}."""
        return {"verdict": self.verdict, "parametrization": self.parametrization,
                "findings": [f.to_dict() for f in self.findings]}


def setup_of(model: nn.Module) -> MuSetup | None:
    """The `MuSetup` that `mucore.parametrize` recorded on `model` (compiled models included),
    or None when the model was never parametrized."""
    for m in (model, getattr(model, "_orig_mod", None)):
        found = getattr(m, SETUP_ATTR, None) if m is not None else None
        if isinstance(found, MuSetup):
            return found
    return None


def check(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    setup: MuSetup | None = None,
) -> Diagnosis:
    """Check a model (and optionally its optimizer and LR scheduler) for µP, without training.

    Args:
        model: the model as it will be trained (compiled models accepted).
        optimizer: its optimizer; checked against the table's per-group LR, weight-decay and
            eps multipliers.
        scheduler: its LR scheduler (a torch `LRScheduler`); stepped a few times on a copy.
        setup: the `MuSetup` from `mucore.parametrize`; default the one it recorded on `model`.

    Returns:
        A `Diagnosis`: one `Finding` per check, verdict "healthy" or "problems".
    """
    setup = setup or setup_of(model)
    findings = [_check_metadata(model, setup), _check_tied(model, setup)]
    if setup is None or findings[0].status == "fail":
        findings.append(_check_readout_structure(model))
        if optimizer is not None:
            findings.append(Finding("optimizer", "warn", "not checked: the model has no µP "
                                    "metadata to compare its groups with",
                                    "parametrize the model first (see 'metadata')"))
        return Diagnosis(findings, setup.parametrization.name if setup else None)
    findings += [
        _check_parametrization(setup),
        _check_readout(model, setup),
        _check_multipliers(model, setup),
        _check_attention(model, setup),
    ]
    if optimizer is not None:
        findings += _check_optimizer(model, setup, optimizer)
        findings.append(_check_schedule(model, setup, optimizer, scheduler))
    return Diagnosis(findings, setup.parametrization.name)


# -- 1. metadata, 2. parametrization -----------------------------------------------------------

_PARAMETRIZE_FIX = (
    "shapes = mucore.infer_base_shapes(factory, base_width); "
    "setup = mucore.parametrize(model, shapes, 'mup') before building the optimizer"
)


def _check_metadata(model: nn.Module, setup: MuSetup | None) -> Finding:
    if setup is None:
        return Finding(
            "metadata", "fail",
            "no µP metadata: mucore.parametrize was never called on this model (or the model was "
            "rebuilt since), so it trains as SP whatever the optimizer does",
            _PARAMETRIZE_FIX, {"parametrized": False})
    names = {canonical_name(n) for n, _ in model.named_parameters()}
    missing = sorted(names - set(setup.info))
    extra = sorted(set(setup.info) - names)
    if missing or extra:
        wrapped = bool(missing) and all(n.startswith("module.") for n in missing)
        return Finding(
            "metadata", "fail",
            f"the setup does not describe this model: parameters without metadata {missing[:5]}, "
            f"metadata without parameters {extra[:5]}"
            + (" (a wrapper such as DDP prefixed every name with 'module.')" if wrapped else ""),
            "parametrize this very model (same factory and knobs as the base shapes); a wrapper "
            "that renames parameters (DDP's 'module.') must be unwrapped first",
            {"missing": missing[:20], "extra": extra[:20]})
    roles: dict[str, int] = {}
    for info in setup.info.values():
        roles[info.role.value] = roles.get(info.role.value, 0) + 1
    return Finding("metadata", "pass",
                   f"all {len(names)} parameters have µP metadata and a role ({roles})",
                   evidence={"parametrized": True, "roles": roles})


def _check_parametrization(setup: MuSetup) -> Finding:
    mults = [info.width_mult for info in setup.info.values()]
    m_max = max(mults, default=1.0)
    table = setup.parametrization
    evidence = {"parametrization": table.name, "version": table.version,
                "base_width": setup.base_shapes.base_width, "max_width_mult": m_max}
    if table.name == "sp":
        return Finding("parametrization", "pass",
                       f"SP ('{table.name}'): the standard parametrization, consistent as set up; "
                       "its optimal LR drifts with width (use 'mup' for µTransfer)",
                       evidence=evidence)
    note = " (at the base width µP equals SP: width rules only show at m > 1)" if m_max == 1 else ""
    return Finding("parametrization", "pass",
                   f"'{table.name}' ({table.version}), width multipliers up to m = {m_max:g}{note}",
                   evidence=evidence)


# -- 3. readout --------------------------------------------------------------------------------

def _owner_modules(model: nn.Module) -> Iterable[tuple[str, nn.Module, str]]:
    """(module name, module, canonical parameter name) for every directly owned parameter."""
    for mod_name, module in model.named_modules():
        for p_name, _ in module.named_parameters(recurse=False):
            yield canonical_name(mod_name), module, canonical_name(
                f"{mod_name}.{p_name}" if mod_name else p_name)


def _check_readout(model: nn.Module, setup: MuSetup) -> Finding:
    rule = setup.parametrization.rule(Role.OUTPUT)
    needs_mult = rule.forward_exp != 0.0 or setup.hparams.output_mult != 1.0
    readouts: list[tuple[str, nn.Module]] = []
    plain: list[tuple[str, nn.Module]] = []
    for mod_name, module, name in _owner_modules(model):
        info = setup.info.get(name)
        if info is None or info.role is not Role.OUTPUT:
            continue
        (readouts if isinstance(module, MuConfigurable) else plain).append((mod_name, module))
    tied = [canonical_name(n) for n, m in model.named_modules() if isinstance(m, TiedReadout)]
    names = sorted({n for n, _ in readouts} | set(tied))
    if plain and needs_mult:
        mod_name, module = plain[0]
        return Finding(
            "readout", "fail",
            f"'{mod_name}' holds an output-like weight (width-like fan_in, finite fan_out) but is "
            f"a plain {type(module).__name__}: it cannot apply the readout multiplier "
            "alpha_out / m, so the logits grow with width",
            f"replace '{mod_name}' with mucore.Readout(in_features, out_features)",
            {"plain": [n for n, _ in plain], "readouts": names})
    if not names and not plain:
        return Finding(
            "readout", "fail" if needs_mult else "warn",
            "no readout found: no parameter is output-like (width-like fan_in, finite fan_out) "
            "and there is no mucore.TiedReadout",
            "give the model an output layer mucore.Readout(width, n_outputs) (or TiedReadout for "
            "tied embeddings); a head whose output size grows with width is not a readout",
            {"readouts": []})
    return Finding("readout", "pass",
                   f"readout {names or [n for n, _ in plain]} applies the output rule "
                   f"(forward_exp {rule.forward_exp:g}, alpha_out {setup.hparams.output_mult:g})",
                   evidence={"readouts": names or [n for n, _ in plain]})


def _check_readout_structure(model: nn.Module) -> Finding:
    """Without metadata: is there a mucore readout at all, and which Linear is the likely head?"""
    mods = list(model.named_modules())
    if any(isinstance(m, Readout | TiedReadout) for _, m in mods):
        return Finding("readout", "pass", "the model has a mucore.Readout / TiedReadout head")
    linears = [canonical_name(n) for n, m in mods if type(m) is nn.Linear]
    head = linears[-1] if linears else None
    where = f"; the last nn.Linear, '{head}', looks like the head" if head else ""
    return Finding(
        "readout", "fail",
        f"no mucore.Readout or TiedReadout in the model{where}: a plain Linear readout trains as "
        "SP (its logits grow with width)",
        f"replace {repr(head) if head else 'the output layer'} with mucore.Readout(in, out)",
        {"likely_head": head})


# -- 4. multipliers, 5. attention, 6. tied -----------------------------------------------------

def _numeric_state(module: nn.Module) -> dict[str, float]:
    # Plain float/int attributes (bools excluded): where mucore layers keep their constants.
    return {k: v for k, v in vars(module).items() if type(v) in (int, float)}


def _check_multipliers(model: nn.Module, setup: MuSetup) -> Finding:
    """Re-run every module's `mu_configure` against the setup and compare the constants it would
    set with the ones the module holds (restoring them afterwards: the check changes nothing)."""
    names = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    ctx = MuContext(setup, names=names)
    stale: list[dict[str, Any]] = []
    n_modules = 0
    for mod_name, module in model.named_modules():
        if not isinstance(module, MuConfigurable):
            continue
        assert isinstance(module, nn.Module)  # named_modules yields modules
        n_modules += 1
        name = canonical_name(mod_name)
        before = _numeric_state(module)
        try:
            module.mu_configure(ctx, name)
            after = _numeric_state(module)
        except (KeyError, ValueError) as exc:
            stale.append({"module": name, "error": str(exc)})
            continue
        finally:
            module.__dict__.update(before)
        stale += [{"module": name, "attribute": k, "has": before[k], "expected": v}
                  for k, v in after.items()
                  if k in before and not math.isclose(before[k], v, rel_tol=1e-9)]
    if stale:
        s = stale[0]
        what = (f"'{s['module']}'.{s['attribute']} is {s['has']:g} but the setup gives "
                f"{s['expected']:g}" if "attribute" in s else f"'{s['module']}': {s['error']}")
        return Finding(
            "multipliers", "fail",
            f"forward multipliers do not match the setup: {what} ({len(stale)} in all); a model "
            "loaded from a state_dict (or built fresh) keeps the layers' defaults",
            "call mucore.parametrize(model, shapes, param, hparams, reinit=False) after building "
            "or loading the model (multipliers are module constants, not saved in state_dicts)",
            {"stale": stale[:20]})
    return Finding("multipliers", "pass",
                   f"the forward constants of {n_modules} mu_configure modules match the setup",
                   evidence={"modules": n_modules})


def _is_attention(name: str, module: nn.Module) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    return isinstance(module, nn.MultiheadAttention) or (
        not isinstance(module, nn.Linear | nn.Dropout)
        and ("attention" in type(module).__name__.lower()
             or last in ("attn", "attention", "self_attn")))


def _check_attention(model: nn.Module, setup: MuSetup) -> Finding:
    found = [(canonical_name(n), m) for n, m in model.named_modules() if _is_attention(n, m)]
    adapted = {name: (module, base) for name, module, base in adapted_attention(model, setup)}
    configured = [n for n, m in found if isinstance(m, MuConfigurable)]
    scaled = [n for n, (_, base) in adapted.items() if base.scaling is not None]
    unscaled = [n for n, m in found if not isinstance(m, MuConfigurable) and n not in adapted]
    evidence: dict[str, Any] = {"configured": configured, "adapted": scaled,
                                "unscaled": unscaled}
    if not found and not adapted:
        return Finding("attention", "pass", "no attention modules", evidence=evidence)
    problem = _adapted_attention_problem(adapted, setup, evidence)
    if problem is not None:
        return problem
    if not setup.parametrization.attention_inverse:
        return Finding("attention", "pass",
                       f"'{setup.parametrization.name}' keeps 1/sqrt(d_head) scores "
                       f"({len(found) + len(scaled)} attention modules)", evidence=evidence)
    if unscaled:
        return Finding(
            "attention", "warn",
            f"attention {unscaled[:5]} does not set its score scale from the table (no "
            "mu_configure, no `scaling` and `head_dim` mucore can set): it keeps 1/sqrt(d_head), "
            "which is µP only while the head dim stays fixed as width grows",
            "if heads widen with width, compute scores with F.scaled_dot_product_attention("
            "scale=self.scale) and set self.scale in mu_configure via mucore.attention_scale",
            evidence)
    return Finding("attention", "pass",
                   f"{len(configured)} attention modules set their scale via mu_configure, "
                   f"{len(scaled)} take it from mucore (transformers' `scaling`)",
                   evidence=evidence)


def _adapted_attention_problem(adapted: dict[str, tuple[nn.Module, AttentionBase]],
                               setup: MuSetup, evidence: dict[str, Any]) -> Finding | None:
    """A failing finding for an attention module the base shapes recorded: an
    `nn.MultiheadAttention` whose head dim grows under µP (it takes no scale), or a module
    whose `scaling` is not the table's (parametrized under other knobs, or reset since)."""
    for name, (module, base) in adapted.items():
        head_dim = int(getattr(module, "head_dim", base.head_dim))
        if base.scaling is None:
            if setup.parametrization.attention_inverse and head_dim != base.head_dim:
                return Finding(
                    "attention", "fail",
                    f"'{name}' is an nn.MultiheadAttention whose head dim grows with width "
                    f"({base.head_dim} at the base width, {head_dim} here): it always scales "
                    "scores by 1/sqrt(d_head) and takes no other scale, so under µP (1/d_head) "
                    "its attention logits grow with width",
                    "keep its head dim fixed (num_heads = width // head_dim, e.g. "
                    "nn.TransformerEncoderLayer(width, nhead=width // 64)), or use an attention "
                    "module that takes a scale (F.scaled_dot_product_attention(scale=...) set in "
                    "mu_configure via mucore.attention_scale)",
                    {**evidence, "module": name, "head_dim": head_dim,
                     "base_head_dim": base.head_dim})
            continue
        own = module.__dict__.get(OWN_SCALING_ATTR)
        want = attention_scaling(own, head_dim, base, setup) if own is not None else None
        has = getattr(module, "scaling", None)
        if want is None or not isinstance(has, float) or not math.isclose(has, want,
                                                                            rel_tol=1e-9):
            return Finding(
                "attention", "fail",
                f"'{name}'.scaling is {has!r} but the '{setup.parametrization.name}' table gives "
                f"{want!r} (head dim {head_dim}, {base.head_dim} at the base width)",
                "call mucore.parametrize(model, shapes, param, hparams, reinit=False) on this "
                "very model (it sets the attention scale; a fresh or reloaded model has its own)",
                {**evidence, "module": name, "has": has, "expected": want})
    return None


def _check_tied(model: nn.Module, setup: MuSetup | None) -> Finding:
    by_tensor: dict[int, list[str]] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        names = by_tensor.setdefault(id(p), [])
        if canonical_name(n) not in names:
            names.append(canonical_name(n))
    shared = [names for names in by_tensor.values() if len(names) > 1]
    tied = [(canonical_name(n), m) for n, m in model.named_modules() if isinstance(m, TiedReadout)]
    if shared:
        sp = setup is not None and setup.parametrization.name == "sp"
        first = shared[0]
        return Finding(
            "tied", "warn" if sp else "fail",
            f"'{first[0]}' is shared with {first[1:]} by plain attribute sharing: mucore sees one "
            "input-like tensor and the head reusing it applies no readout multiplier "
            "(alpha_out / m), so the tied logits grow with width under µP",
            f"drop the shared attribute and make the head mucore.TiedReadout(<the embedding of "
            f"'{first[0]}'>); TP5's rule: the tensor stays input-like, the readout applies "
            "alpha_out / m", {"shared": shared})
    if not tied:
        return Finding("tied", "pass", "no tied weights")
    owner = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    weights = [owner.get(id(m.weight), "?") for _, m in tied]
    if setup is not None:
        unmarked = [w for w in weights if w not in setup.info or not
                    setup.info[w].base.is_tied_readout]
        if unmarked:
            return Finding(
                "tied", "fail",
                f"tied weights {unmarked} are not marked as tied in the base shapes: they were "
                "inferred from a model without the TiedReadout, so their init is the embedding's",
                "rebuild the base shapes with mucore.infer_base_shapes from the tied model's "
                "factory, then parametrize again", {"tied": weights})
    return Finding("tied", "pass",
                   f"tied embedding {weights} handled by TiedReadout {[n for n, _ in tied]}: "
                   "one input-like tensor, alpha_out / m on the readout", evidence={"tied": weights})


# -- 8. optimizer, 9. lr_schedule --------------------------------------------------------------

_OPTIMIZER_FIX = (
    "build it with mucore.build_optimizer(model, setup, '{opt}', lr) or pass "
    "mucore.param_groups(model, setup, '{opt}', lr) to your optimizer class"
)


_MATCH_RMS_FIX = (
    "Muon with adjust_lr_fn='match_rms_adamw' scales hidden updates by 0.2 sqrt(max(fan_out, "
    "fan_in)), so µP divides the hidden LR by sqrt(m): build it with mucore.build_optimizer("
    "model, setup, 'muon', lr, adjust_lr_fn='match_rms_adamw') and hidden_lr_correction on")


@dataclass(frozen=True)
class _Slot:
    """One parameter as the optimizer holds it."""

    name: str
    role: str
    width_mult: float
    expected_lr_mult: float
    eps_divisor: float
    group: dict[str, Any]


def _registered_name(cls: type) -> str | None:
    """The registry name whose torch class is `cls` (None when none is)."""
    for name in optimizer_names():
        try:
            if optimizer_class(get_optimizer(name)) is cls:
                return name
        except ValueError:  # an entry whose class cannot be imported here
            continue
    return None


def _family(optimizer: torch.optim.Optimizer) -> tuple[OptimizerFamily, str]:
    """The µP rule family and registry name of a built optimizer, by its class (a subclass
    counts as its registered base). An unregistered class is read as SGD-like when its name
    says so, else as Adam-like, the common case of entry-wise normalised updates."""
    for cls in type(optimizer).__mro__:
        name = _registered_name(cls)
        if name is not None:
            # Muon's hidden rule follows the adjustment it applies (`mucore.rule_family`):
            # judged by what it does, not by how it was asked to be built.
            adjust = getattr(optimizer, "adjust_lr_fn", None)
            family = optimizer_family(name)
            if family in MUON_FAMILIES and adjust is not None:
                return rule_family(name, adjust), name
            return family, name
    if "sgd" in type(optimizer).__name__.lower():
        return OptimizerFamily.SGD, "sgd"
    return OptimizerFamily.ADAM, "adam"


def _slots(model: nn.Module, setup: MuSetup, optimizer: torch.optim.Optimizer,
           family: OptimizerFamily) -> tuple[list[_Slot], list[str]]:
    """The optimizer's parameters with what the table expects of them, and the trainable
    parameters it lacks."""
    names = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    seen: set[int] = set()
    slots = []
    for g in optimizer.param_groups:
        for p in g["params"]:
            name = names.get(id(p))
            if name is None:
                continue  # not the model's (an extra learnable scalar, say)
            seen.add(id(p))
            info = setup.info[name]
            slots.append(_Slot(name, info.role.value, info.width_mult,
                               setup.parametrization.lr_mult(info, family),
                               setup.parametrization.eps_divisor(info), g))
    missing = [names[id(p)] for _, p in model.named_parameters()
               if p.requires_grad and id(p) not in seen]
    return slots, missing


def _odd_one(values: list[float]) -> int | None:
    """Index of the first value that differs (relatively) from values[0]; None if all agree."""
    for i, v in enumerate(values):
        if not math.isclose(v, values[0], rel_tol=_RTOL):
            return i
    return None


def _check_optimizer(model: nn.Module, setup: MuSetup,
                     optimizer: torch.optim.Optimizer) -> list[Finding]:
    family, opt = _family(optimizer)
    try:
        slots, missing = _slots(model, setup, optimizer, family)
    except ValueError as exc:  # the table refuses this optimizer family
        return [Finding("optimizer", "fail", str(exc), "use an optimizer the table supports")]
    if not slots:
        return [Finding("optimizer", "fail", "the optimizer holds none of the model's parameters",
                        "build the optimizer from this model's parameters")]
    findings = [_check_lr_ratios(slots, setup, opt, missing)]
    if family is OptimizerFamily.MUON_RMS and findings[0].status == "fail":
        findings[0] = replace(findings[0], message=findings[0].message.split(" (one LR")[0],
                              fix=_MATCH_RMS_FIX)
    findings.append(_check_weight_decay(slots, opt))
    has_eps = any("eps" in s.group for s in slots)  # Lion has none
    if family is OptimizerFamily.ADAM and setup.parametrization.name != "sp" and has_eps:
        findings.append(_check_eps(slots, opt))
    return findings


def _check_lr_ratios(slots: list[_Slot], setup: MuSetup, opt: str,
                     missing: list[str]) -> Finding:
    # A group built by mucore says its multiplier; any other group's multiplier is its LR.
    actual = [float(s.group.get("lr_mult", s.group["lr"])) for s in slots]
    ratios = [a / s.expected_lr_mult for a, s in zip(actual, slots, strict=True)]
    odd = _odd_one(ratios)
    evidence: dict[str, Any] = {"optimizer": opt, "missing": missing[:20]}
    if odd is not None:
        ref, bad = slots[0], slots[odd]
        has = actual[odd] / actual[0]
        want = bad.expected_lr_mult / ref.expected_lr_mult
        evidence.update(param=bad.name, reference=ref.name, lr_ratio=has, expected_ratio=want)
        return Finding(
            "optimizer", "fail",
            f"group LRs do not follow the '{setup.parametrization.name}' table ({opt}): "
            f"'{bad.name}' ({bad.role}, m = {bad.width_mult:g}) trains at x{has:g} the LR of "
            f"'{ref.name}' ({ref.role}), where the table prescribes x{want:g}"
            + (" (one LR for every parameter: a plain optimizer over model.parameters())"
               if len(set(actual)) == 1 else ""),
            _OPTIMIZER_FIX.format(opt=opt), evidence)
    if missing:
        return Finding("optimizer", "warn",
                       f"trainable parameters missing from the optimizer: {missing[:5]}",
                       "add them (or set requires_grad=False if they are frozen on purpose)",
                       evidence)
    return Finding("optimizer", "pass",
                   f"{len(slots)} parameters carry the table's LR multipliers ({opt})",
                   evidence=evidence)


def _check_weight_decay(slots: list[_Slot], opt: str) -> Finding:
    decayed = [s for s in slots if s.group.get("weight_decay", 0.0)]
    if not decayed:
        return Finding("weight_decay", "pass", "no weight decay")
    # Per-step shrink of a weight: lr_g * wd_g (AdamW; Adam's L2 scales the same way).
    shrink = [float(s.group["lr"]) * float(s.group["weight_decay"]) for s in decayed]
    odd = _odd_one(shrink)
    if odd is None:
        return Finding("weight_decay", "pass",
                       f"every decayed group shrinks alike per step (lr * wd = {shrink[0]:.3g})",
                       evidence={"lr_times_wd": shrink[0]})
    ref, bad = decayed[0], decayed[odd]
    return Finding(
        "weight_decay", "fail",
        f"weight decay is coupled to the per-group LR: '{bad.name}' ({bad.role}) shrinks "
        f"x{shrink[odd] / shrink[0]:g} as fast per step as '{ref.name}' ({ref.role}), so the "
        "decay of hidden weights weakens as width grows",
        f"pass weight_decay to mucore.build_optimizer(model, setup, '{opt}', lr, weight_decay=wd, "
        "wd_mode='coupled' | 'independent'), which sets each group's decay so lr * wd is equal",
        {"param": bad.name, "reference": ref.name, "ratio": shrink[odd] / shrink[0]})


def _check_eps(slots: list[_Slot], opt: str) -> Finding:
    eps = [float(s.group.get("eps", 0.0)) for s in slots]
    m_max = max(s.eps_divisor for s in slots)
    if _odd_one(eps) is None:
        if m_max > 1:
            return Finding(
                "eps", "warn",
                f"one Adam eps ({eps[0]:g}) for every group: hidden gradients shrink like 1/m "
                f"(here up to m = {m_max:g}), so a fixed eps weighs more as width grows",
                f"mucore.build_optimizer(model, setup, '{opt}', lr, scale_eps=True) divides eps "
                "by the table's divisor (Everett et al., 2024)", {"eps": eps[0], "max_divisor": m_max})
        return Finding("eps", "pass", f"one Adam eps ({eps[0]:g}); no group needs scaling")
    scaled = [e * s.eps_divisor for e, s in zip(eps, slots, strict=True)]
    odd = _odd_one(scaled)
    if odd is None:
        return Finding("eps", "pass", "Adam eps scaled by the table's divisor (scale_eps)")
    bad = slots[odd]
    return Finding(
        "eps", "fail",
        f"Adam eps differs between groups but not as the table scales it: '{bad.name}' has "
        f"{eps[odd]:g}, expected {scaled[0] / bad.eps_divisor:g}",
        f"use mucore.build_optimizer(..., scale_eps=True) or one eps for all ('{opt}')",
        {"param": bad.name, "eps": eps[odd]})


def _lr_drift(slots: list[_Slot]) -> tuple[_Slot, float] | None:
    """A parameter whose group LR no longer equals (global LR) * lr_mult, relative to the first
    one: mucore groups say their lr_mult, so an LR set absolutely shows."""
    with_mult = [s for s in slots if "lr_mult" in s.group]
    if len(with_mult) < 2:
        return None
    scale = [float(s.group["lr"]) / float(s.group["lr_mult"]) for s in with_mult]
    odd = _odd_one(scale)
    return None if odd is None else (with_mult[odd], scale[odd] / scale[0])


def _check_schedule(model: nn.Module, setup: MuSetup, optimizer: torch.optim.Optimizer,
                    scheduler: Any) -> Finding:
    family, opt = _family(optimizer)
    fix = ("schedule relatively: mucore.relative_schedule(optimizer, factor) (LambdaLR scales each "
           "group's own LR); never set group['lr'] to one value, nor give OneCycleLR/CyclicLR a "
           "single max_lr/base_lr")
    try:
        before = _lr_drift(_slots(model, setup, optimizer, family)[0])
    except ValueError:
        return Finding("lr_schedule", "warn", "not checked: the table refuses this optimizer")
    if before is not None:
        s, r = before
        return Finding("lr_schedule", "fail",
                       f"group LRs were overwritten: '{s.name}' trains at x{r:g} its group's "
                       "lr_mult relative to the others (something set absolute LRs)", fix,
                       {"param": s.name, "ratio": r})
    if scheduler is None:
        return Finding("lr_schedule", "pass", "group LRs still follow their lr_mult "
                       "(no scheduler given to step)")
    copied = _stepped_copy(model, optimizer, scheduler)
    if copied is None:
        return Finding("lr_schedule", "warn",
                       f"could not copy and step {type(scheduler).__name__} (it may need "
                       "arguments, like ReduceLROnPlateau); its LR ratios were not checked", fix)
    ratios = [float(a["lr"]) / float(b["lr"]) if float(b["lr"]) else math.nan
              for a, b in zip(copied.param_groups, optimizer.param_groups, strict=True)]
    odd = _odd_one([r for r in ratios if not math.isnan(r)] or [1.0])
    drift = _lr_drift(_slots(model, setup, copied, family)[0])
    if odd is None and drift is None:
        return Finding("lr_schedule", "pass",
                       f"{type(scheduler).__name__} keeps the group LR ratios over "
                       f"{SCHEDULER_STEPS} steps", evidence={"factors": ratios})
    return Finding("lr_schedule", "fail",
                   f"{type(scheduler).__name__} breaks the per-group LR ratios: after "
                   f"{SCHEDULER_STEPS} steps the groups' LRs changed by factors {ratios[:6]}",
                   fix, {"factors": ratios})


def _stepped_copy(model: nn.Module, optimizer: torch.optim.Optimizer,
                  scheduler: Any) -> torch.optim.Optimizer | None:
    """A copy of the optimizer after SCHEDULER_STEPS steps of a copy of the scheduler. The
    parameters and the optimizer state are shared, not copied (only the scheduler steps, which
    touches group LRs alone), so a large model costs no memory; the originals are untouched."""
    memo: dict[int, Any] = {id(p): p for p in model.parameters()}
    memo.update({id(p): p for g in optimizer.param_groups for p in g["params"]})
    memo.update({id(v): v for state in optimizer.state.values() for v in state.values()
                 if isinstance(v, torch.Tensor)})
    try:
        opt_copy, sched_copy = copy.deepcopy((optimizer, scheduler), memo)
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore")
            for _ in range(SCHEDULER_STEPS):
                sched_copy.step()
    except Exception:  # noqa: BLE001 - any scheduler that cannot be copied is reported, not raised
        return None
    return opt_copy if isinstance(opt_copy, torch.optim.Optimizer) else None


class _CheckModule(types.ModuleType):
    """This module, callable. `mucore.check` is the function `check` when reached through the
    package's lazy exports, but the import system binds the *submodule* to `mucore.check` when
    `import mucore.check` or `from mucore.check import ...` runs first; calling it then still
    calls `check`."""

    def __call__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        setup: MuSetup | None = None,
    ) -> Diagnosis:
        return check(model, optimizer, scheduler, setup)


sys.modules[__name__].__class__ = _CheckModule
