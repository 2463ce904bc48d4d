"""Optimizer builders whose param groups carry the per-role µP LR multipliers.

TP5 (Yang et al., 2022), Table 8: with Adam the hidden weights' LR is divided by the width mult
m; with SGD the input-like, output and vector-like LRs are multiplied by m. The multipliers come
from the parametrization table, so this module never names a role.

Weight decay is explicit:
- "coupled" (the reference package's default): group weight_decay = wd / lr_mult, so PyTorch's
  per-step shrink lr_g * wd_g equals lr * wd in every group, as in the base model;
- "independent" (Wortsman et al., 2023): group weight_decay = wd / lr_g, so the per-step shrink
  is wd times the schedule factor, independent of the LR and the width.
The same two modes hold for Muon and Lion, whose decay is decoupled like AdamW's (p <- p (1 -
lr_g wd_g) before the update): "coupled" keeps every group's shrink at lr * wd, so the relative
pull of decay against a width-constant spectral update is the base model's; "independent"
makes it wd per step. Under Muon the hidden LR's own correction (/ sqrt(m) with
"match_rms_adamw") is part of lr_mult, so "coupled" divides it back out of the decay.
Both modes use the whole lr_mult, depth part included: under CompleteP / depth-µP "coupled"
scales a block's hidden-weight decay by m_N * m_L^(1 - alpha), keeping lr * wd fixed. For
CompleteP (alpha = 1) that is the paper's minimal implementation's lambda * m_N; for depth-µP
the implementation keeps lambda * m_N (its shrink falls like m_L^(-1/2)) and we keep lr * wd:
docs/depth.md has the comparison and its sources (Dey et al., 2025, arXiv 2505.01618).

LR schedules must scale groups relatively: `relative_schedule` wraps LambdaLR, which multiplies
each group's own initial LR.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from mucore.context import MuSetup
from mucore.muon import UPDATE_KEY
from mucore.optimizers import OptimizerEntry, get_optimizer, rule_family
from mucore.parametrizations import MUON_FAMILIES, OptimizerFamily, muon_owns
from mucore.roles import Role, canonical_name

WeightDecayMode = Literal["coupled", "independent"]


def optimizer_class(entry: OptimizerEntry) -> Callable[..., torch.optim.Optimizer]:
    """The torch class an optimizer entry names (imported on first use).

    Raises:
        ValueError: the dotted path does not name an importable class.
    """
    module, _, attr = entry.torch_class.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"optimizer '{entry.name}': cannot import {entry.torch_class}: "
                         f"{exc}") from None
    return cls  # type: ignore[no-any-return]


def param_groups(
    model: nn.Module,
    setup: MuSetup,
    optimizer: str,
    lr: float,
    *,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    wd_mode: WeightDecayMode = "coupled",
    decay_vectors: bool = False,
    scale_eps: bool = False,
    adjust_lr_fn: str | None = None,
    hidden_lr_correction: bool = True,
) -> list[dict]:
    """Group parameters by (role, LR mult, wd, eps); each group knows its names and multiplier.

    Args:
        model: the parametrized model (compiled models accepted).
        setup: from `mucore.parametrize`.
        optimizer: a registered optimizer name (`mucore.optimizer_names()`).
        lr: the global learning rate (the one tuned on the proxy).
        eps: Adam epsilon.
        weight_decay: global weight decay.
        wd_mode: "coupled" or "independent" (see module docstring).
        decay_vectors: also decay vector-like params (biases, norm gains); off by default.
        scale_eps: divide Adam eps by the table's eps divisor (Everett et al., 2024): hidden
            weights by m in every table, since their gradients shrink like 1/m and a fixed
            eps would dominate at large width; under CompleteP / depth-µP also input-like and
            output weights by m, and hidden weights inside the blocks by m * m_L^alpha.
        adjust_lr_fn: Muon only: torch's LR adjustment ("original" or "match_rms_adamw"); the
            hidden matrices' LR follows its rule (`mucore.rule_family`).
        hidden_lr_correction: Muon with "match_rms_adamw" only: False leaves out the hidden
            LR's / sqrt(m). Wrong on purpose: a diagnostic for tests and the doctor.

    Raises:
        ValueError: a bad LR or wd_mode, or the parametrization refuses the optimizer (the
            depth tables refuse SGD and Muon).
    """
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a finite number > 0, got {lr!r}")
    if wd_mode not in ("coupled", "independent"):
        raise ValueError(f"wd_mode must be 'coupled' or 'independent', got {wd_mode!r}")
    family = setup.parametrization.check_family(
        rule_family(optimizer, adjust_lr_fn, hidden_lr_correction))
    groups: dict[tuple, dict] = {}
    for raw_name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        info = setup.param(raw_name)
        lr_mult = setup.parametrization.lr_mult(info, family)
        update = _update(family, info.role, p.ndim)
        group_lr = lr * lr_mult
        wd = 0.0 if (info.role is Role.VECTOR and not decay_vectors) else weight_decay
        if wd and wd_mode == "coupled":
            wd = wd / lr_mult
        elif wd and wd_mode == "independent":
            wd = wd / group_lr
        group_eps = eps / setup.parametrization.eps_divisor(info) if scale_eps else eps
        key = (info.role.value, lr_mult, wd, group_eps, update)
        g = groups.setdefault(
            key,
            {
                "params": [],
                "param_names": [],
                "role": info.role.value,
                "lr_mult": lr_mult,
                "lr": group_lr,
                "weight_decay": wd,
                "eps": group_eps,
            },
        )
        if update:
            g[UPDATE_KEY] = update
        g["params"].append(p)
        g["param_names"].append(canonical_name(raw_name))
    takes_eps = "eps" in get_optimizer(optimizer).options
    for g in groups.values():
        # SGD and Lion take no eps; Muon's eps is its Newton-Schulz guard, not Adam's.
        if not takes_eps or g.get(UPDATE_KEY) == "muon":
            g.pop("eps")
    return list(groups.values())


def _update(family: OptimizerFamily, role: Role, ndim: int) -> str:
    """Which inner optimizer of `MuonAdamW` trains a parameter ("" for other optimizers)."""
    if family not in MUON_FAMILIES:
        return ""
    return "muon" if muon_owns(role, ndim) else "adamw"


def build_optimizer(
    model: nn.Module,
    setup: MuSetup,
    optimizer: str,
    lr: float,
    *,
    betas: tuple[float, float] | None = None,
    eps: float = 1e-8,
    momentum: float | None = None,
    nesterov: bool | None = None,
    weight_decay: float = 0.0,
    wd_mode: WeightDecayMode = "coupled",
    decay_vectors: bool = False,
    scale_eps: bool = False,
    adjust_lr_fn: str | None = None,
    hidden_lr_correction: bool = True,
) -> torch.optim.Optimizer:
    """A torch optimizer over `model` with µP per-group learning rates.

    The registry entry (`mucore.optimizers`) names the torch class and which of `betas`, `eps`,
    `momentum`, `nesterov`, `adjust_lr_fn` it takes; a setting left None takes the class's
    default (Adam's betas (0.9, 0.999), Lion's (0.9, 0.99); SGD's momentum 0, Muon's 0.95 with
    Nesterov). Each param group carries `lr_mult`, `role` and `param_names` besides torch's own
    keys (and, for `muon`, `update`: which inner optimizer trains it).
    `group["lr"] = lr * group["lr_mult"]`, so at the base width every group has the global LR.
    `adjust_lr_fn` and `hidden_lr_correction` are Muon's (see `param_groups`).

    Raises:
        ValueError: unknown optimizer, non-positive LR, unknown wd_mode, Muon settings on
            another optimizer.
    """
    groups = param_groups(
        model,
        setup,
        optimizer,
        lr,
        eps=eps,
        weight_decay=weight_decay,
        wd_mode=wd_mode,
        decay_vectors=decay_vectors,
        scale_eps=scale_eps,
        adjust_lr_fn=adjust_lr_fn,
        hidden_lr_correction=hidden_lr_correction,
    )
    entry = get_optimizer(optimizer)
    settings: dict[str, Any] = {"betas": betas, "eps": eps, "momentum": momentum,
                                "nesterov": nesterov, "adjust_lr_fn": adjust_lr_fn}
    return optimizer_class(entry)(groups, lr=lr, **{k: settings[k] for k in entry.options
                                                    if settings[k] is not None})


def relative_schedule(
    optimizer: torch.optim.Optimizer, factor: Callable[[int], float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """An LR schedule that multiplies every group's own initial LR by `factor(step)`.

    Setting absolute LRs would erase the µP per-group multipliers; LambdaLR scales each group
    relative to its `initial_lr`, so the ratios between groups always hold.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up then cosine decay to `floor`, as a factor for `relative_schedule`."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def warmup_stable_decay(warmup_steps: int, total_steps: int, decay_fraction: float,
                        floor: float = 0.0) -> Callable[[int], float]:
    """Warmup-stable-decay (WSD), as a factor for `relative_schedule`.

    A schedule that does not fix the horizon in advance (Hu et al., 2024, MiniCPM; Hägele et
    al., 2024, arXiv 2405.18392): the stable phase runs at the full LR for as long as wanted,
    and only the last `decay_fraction` of the steps decay. With d = max(1, round(decay_fraction
    x total_steps)) decay steps and `step` counted from 0 (LambdaLR's convention: factor(s) is
    the LR of optimizer step s + 1):
    1. warm-up, step < warmup_steps: (step + 1) / warmup_steps;
    2. stable, up to step total_steps - d: 1;
    3. decay, the last d steps: floor + (1 - floor) x (total_steps - step) / (d + 1): the
       line from 1 (the last stable step) to floor (the step after the last), so each of the
       d decay steps is below 1 and none is wasted at the floor.

    Raises:
        ValueError: decay_fraction outside (0, 1], or warm-up and decay do not fit in
            total_steps.
    """
    if not 0.0 < decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in (0, 1], got {decay_fraction!r}")
    decay_steps = max(1, round(decay_fraction * total_steps))
    decay_start = total_steps - decay_steps
    if warmup_steps > decay_start:
        raise ValueError(f"warm-up ({warmup_steps} steps) and decay ({decay_steps} steps) do "
                         f"not fit in {total_steps} steps")

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if step < decay_start:
            return 1.0
        return floor + (1.0 - floor) * max(0, total_steps - step) / (decay_steps + 1)

    return factor
