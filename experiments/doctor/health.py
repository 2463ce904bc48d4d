"""The doctor's health checks: the model runs on the task, nothing in it is dead, and
parametrizing changed only what µP prescribes.

1. `probe_task`: one forward and loss of the base-width model on two examples of the task,
   before anything is measured. A model that cannot take the task's inputs (an LM fed the
   digits' float pixels: its embedding refuses them) or whose output does not fit the targets
   (shape, vocabulary) is bad input: a `UserError` naming --task (exit 2, no traceback).
2. `init_changes` ("init_kept"): every parameter of the smallest model before and after
   `mucore.parametrize`. µP (TP5, Yang et al., 2022, Table 8) re-draws the matrices (their
   std depends on width) and keeps vector-like parameters (gains, biases, tokens, position
   tables) as the base model has them: `mucore.init_std` is None for those. A kept parameter
   whose values changed was changed by mucore, not by the model's code, so the ablation
   blames mucore for it (`restoring_own_init`), never the user.
3. `dead_finding` ("dead"): modules whose output is exactly zero at every width and step of
   the dynamic run, norm gains (the 1-D `weight` of a norm-like layer) that are all zero
   after parametrize or never move in training, and other parameters that never move (no
   gradient reaches them).

Functions return data and never print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

import mucore
from experiments.errors import UserError
from mucore.check import Finding

# Examples in the task probe: enough to exercise every shape, cheap at any width.
PROBE_BATCH = 2
# Names shown in a finding's message before "...".
MAX_NAMED = 4
# Fewer steps cannot tell a dead module or parameter from a zero-initialised one.
MIN_STEPS_FOR_MOTION = 3


def probe_task(factory: Callable[[int], nn.Module], batch: tuple[Tensor, Tensor],
               loss_fn: Callable[[Tensor, Tensor], Tensor], width: int, model: str,
               task: str) -> None:
    """Run the model at `width` once on `batch` and take the loss.

    Raises:
        UserError: the forward or the loss fails, or the output is not a tensor; the message
            names the inputs, the error and --task.
    """
    x, y = batch
    what = f"inputs {str(x.dtype).removeprefix('torch.')} {tuple(x.shape)}, targets {tuple(y.shape)}"
    hint = ("pick the task the model is written for with --task (spec: task.name): a "
            "language model takes token ids (--task bytes), an image classifier images "
            "(--task digits)")
    net = factory(width)
    with torch.no_grad():
        try:
            out = net(x)
        except Exception as exc:
            raise UserError(f"model '{model}' cannot run on task '{task}' ({what}): "
                            f"{type(exc).__name__}: {_first_line(exc)}{_vocab_note(net, x)}: "
                            f"{hint}") from None
        if not isinstance(out, Tensor):
            raise UserError(f"model '{model}' returns a {type(out).__name__}, not a tensor of "
                            "logits: return the logits from forward (transformers: "
                            "`.logits` of its output)")
        try:
            loss_fn(out, y)
        except Exception as exc:
            raise UserError(f"model '{model}' outputs {tuple(out.shape)} but task '{task}' has "
                            f"targets {tuple(y.shape)} ({type(exc).__name__}: "
                            f"{_first_line(exc)}): {hint}") from None


def _vocab_note(net: nn.Module, x: Tensor) -> str:
    """Why token ids may not fit: an embedding with fewer rows than the task's largest id."""
    if x.is_floating_point() or x.numel() == 0:
        return ""
    top = int(x.max())
    small = [f"'{n}' ({m.num_embeddings} rows)" for n, m in net.named_modules()
             if isinstance(m, nn.Embedding) and m.num_embeddings <= top]
    if not small:
        return ""
    return (f" (the task's token ids reach {top}, but embedding {small[0]} is smaller: size "
            "the vocabulary from the task, task.n_outputs)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


class InitChange(NamedTuple):
    """A parameter µP keeps as the model initialises it, changed by `mucore.parametrize`."""

    param: str
    own: float  # mean |value| of the model's own init
    after: float  # mean |value| after parametrize


def _is_gain(name: str, p: Tensor) -> bool:
    """A norm-like layer's multiplicative gain: a 1-D parameter named `weight`."""
    return p.dim() == 1 and name.rpartition(".")[2] == "weight"


@torch.no_grad()
def init_changes(factory: Callable[[int], nn.Module], shapes: mucore.BaseShapes,
                 table: mucore.Parametrization, hparams: mucore.HParams, width: int,
                 seed: int) -> list[InitChange]:
    """Parameters that `mucore.parametrize` changed although µP keeps their own init."""
    model = factory(width)
    own = {mucore.canonical_name(n): p.detach().clone() for n, p in model.named_parameters()}
    setup = mucore.parametrize(model, shapes, table, hparams, seed=seed)
    out = []
    for raw, p in model.named_parameters():
        name = mucore.canonical_name(raw)
        if mucore.init_std(setup.param(name), setup) is not None:
            continue  # µP re-draws it: a change is the rule
        if not torch.equal(p.detach(), own[name]):
            out.append(InitChange(name, own[name].abs().mean().item(),
                                  p.detach().abs().mean().item()))
    return out


def restoring_own_init(factory: Callable[[int], nn.Module], names: set[str]
                       ) -> Callable[[int], nn.Module]:
    """The factory whose models put back their own init of `names` at the first forward
    (after `mucore.parametrize` ran): the model as µP's rule says it should be."""
    def build(width: int) -> nn.Module:
        model = factory(width)
        own = {n: p.detach().clone() for n, p in model.named_parameters()
               if mucore.canonical_name(n) in names}
        done: list[bool] = []

        @torch.no_grad()
        def restore(module: nn.Module, _args: Any) -> None:
            if done:
                return
            params = dict(module.named_parameters())
            for n, value in own.items():
                params[n].copy_(value)
            done.append(True)

        model.register_forward_pre_hook(restore)
        return model
    return build


def init_finding(changes: list[InitChange], n_params: int) -> Finding:
    """"init_kept": parametrize changed nothing µP keeps (pass), or what it changed (fail)."""
    evidence: dict[str, Any] = {"changed": [c._asdict() for c in changes]}
    if not changes:
        return Finding("init_kept", "pass", f"mucore.parametrize kept the model's own init of "
                       f"every vector-like parameter and re-drew only the matrices µP "
                       f"prescribes ({n_params} parameters)", evidence=evidence)
    worst = changes[0]
    return Finding(
        "init_kept", "fail",
        f"mucore.parametrize changed {len(changes)} parameters whose µP rule is 'as the model "
        f"initialises them' (e.g. '{worst.param}': mean |value| {worst.own:.3g} -> "
        f"{worst.after:.3g}): the fault is in mucore, not in the model's code",
        "report it to mucore with this finding; until it is fixed, copy those parameters' own "
        "values back after mucore.parametrize", evidence)


@dataclass
class MotionWatcher:
    """Forward pre-hook on the root module: every parameter's values at the first forward
    (right after `mucore.parametrize`) and which have changed by a later forward."""

    first: dict[str, Tensor] = field(default_factory=dict)
    moved: set[str] = field(default_factory=set)
    forwards: int = 0

    @torch.no_grad()
    def __call__(self, module: nn.Module, _args: Any) -> None:
        self.forwards += 1
        for raw, p in module.named_parameters():
            name = mucore.canonical_name(raw)
            if self.forwards == 1:
                self.first[name] = p.detach().clone()
            elif name not in self.moved and not torch.equal(p, self.first[name]):
                self.moved.add(name)


def _names(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def dead_modules(records: list[mucore.CoordRecord]) -> list[str]:
    """Modules whose recorded output is exactly zero at every width and step."""
    nonzero: dict[str, bool] = {}
    for r in records:
        nonzero[r.module] = nonzero.get(r.module, False) or r.value != 0.0
    return [m for m, alive in nonzero.items() if not alive]


def dead_finding(records: list[mucore.CoordRecord], steps: int, motion: MotionWatcher,
                 changes: list[InitChange]) -> Finding:
    """"dead": zero outputs, zero or frozen gains, parameters that never move (see module
    docstring); a zero gain that parametrize made zero is blamed on mucore."""
    zeroed_by_mucore = {c.param for c in changes if c.after == 0.0}
    zero_gains = [n for n, v in motion.first.items() if _is_gain(n, v) and not v.any()]
    watch = steps >= MIN_STEPS_FOR_MOTION and motion.forwards >= MIN_STEPS_FOR_MOTION
    frozen = [n for n in motion.first if watch and n not in motion.moved]
    frozen_gains = [n for n in frozen if _is_gain(n, motion.first[n])]
    dead = dead_modules(records) if steps >= 2 else []
    evidence = {"dead_modules": dead, "zero_gains": zero_gains, "frozen": frozen,
                "zeroed_by_parametrize": sorted(zeroed_by_mucore & set(zero_gains))}
    problems = []
    if zero_gains:
        who = ("mucore.parametrize set them to zero (the model's own init did not)"
               if set(zero_gains) <= zeroed_by_mucore else "they start at zero")
        problems.append(f"norm gains {_names(zero_gains)} are all zero: {who}, so their "
                        "layers output nothing")
    if frozen_gains:
        problems.append(f"norm gains {_names(frozen_gains)} never move in training")
    if dead:
        problems.append(f"{len(dead)} modules output exactly zero at every width and step "
                        f"({_names(dead)})")
    if problems:
        fix = ("a mucore fault: see 'init_kept'" if zero_gains and set(zero_gains) <=
               zeroed_by_mucore else "start norm gains at one and check that every layer "
               "feeds the output (no multiplier or mask of zero)")
        return Finding("dead", "fail", "; ".join(problems), fix, evidence)
    if frozen:
        return Finding("dead", "warn", f"{len(frozen)} parameters never move in training "
                       f"({_names(frozen)}): no gradient reaches them",
                       "remove unused parameters, or check that they feed the output", evidence)
    return Finding("dead", "pass", "every module's output and every parameter is alive "
                   "(non-zero outputs, gains non-zero and moving)", evidence=evidence)
