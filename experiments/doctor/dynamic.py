"""The doctor's dynamic check: train a few dozen steps at 3-4 widths, then judge what moved.

Two measurements in one training run per width (TP5, Yang et al., 2022, Section 5):
1. activation sizes: `mucore.coord_check`'s long table over every module, the output logits
   included, judged by its role-aware verdict at every step. At least 30 steps by default,
   because a readout that is not a readout can stay flat at first and grow later.
2. update sizes: every weight's relative update |dW|/|W| per step
   (`experiments.doctor.updates`), judged against the slope µP prescribes for its role;
3. update norms: every weight's update spectral norm |dW|_2 per step
   (`experiments.doctor.spectral`), judged against the spectral condition (Yang, Simon &
   Bernstein, 2023), which covers Adam, Lion and Muon by one rule.

A `Trial` holds everything that defines a run, the rules table included, so the ablation
(`experiments.doctor.ablation`) can switch one ingredient and run again. Functions return
data and never print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor, nn

import mucore
from experiments.doctor.health import MotionWatcher
from experiments.doctor.spectral import NORM_TOLERANCE, NormResult, SpectralRecorder, judge_norms
from experiments.doctor.updates import (
    UPDATE_TOLERANCE,
    UpdateRecorder,
    UpdateResult,
    judge_updates,
    judged_roles,
    update_message,
)
from mucore.check import Finding
from mucore.coord import READOUT, summarize

DYNAMIC_STEPS = 30  # output growth can appear late (after step 1): never fewer by default
# Adam LR of the dynamic checks: at 30 steps and widths 64..256, 1e-2 moves a healthy zoo
# CNN's features by a slope of ~0.4 (finite-width drift, not a µP fault); 1e-3 keeps every
# healthy zoo model within tolerance while every broken setup still shows.
DYNAMIC_LR = 1e-3
# Largest activation slope that passes: looser than `mucore.coord_check`'s 0.15 (30 steps
# judged one by one are many more estimates, and finite-width drift adds up over them), still
# within the reference package's ratio test (x1.2 per width doubling, |slope| <= 0.26) and
# well below what a broken ingredient gives (+0.3 to +1).
COORD_TOLERANCE = 0.2
# Modules (last name component) whose output is attention scores: judged like the readout.
LOGIT_NAMES = frozenset({"scores", "attn_scores", "attention_scores"})


@dataclass(frozen=True)
class Trial:
    """One dynamic run: a model family, its rules and how it trains.

    Attributes:
        factory: `width -> nn.Module`.
        shapes: the family's base shapes.
        table: the rules in force (a registered table, or one with an ingredient switched).
        widths: increasing widths (3-4 are enough).
        batch: one fixed (inputs, targets) batch.
        loss_fn: `(output, targets) -> loss`.
        hparams: global knobs (the readout keeps its init unless `zero_readout`).
        optimizer, lr, steps, seed: how it trains.
        optimizer_options: Muon's `adjust_lr_fn` / `hidden_lr_correction`.
    """

    factory: Callable[[int], nn.Module]
    shapes: mucore.BaseShapes
    table: mucore.Parametrization
    widths: list[int]
    batch: tuple[Tensor, Tensor]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    hparams: mucore.HParams = field(default_factory=mucore.HParams)
    optimizer: str = "adam"
    lr: float = DYNAMIC_LR
    steps: int = DYNAMIC_STEPS
    seed: int = 0
    optimizer_options: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Trial:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class DynamicResult:
    """Both measurements of one trial, and which parameters moved at the smallest width."""

    coord: mucore.CoordCheckResult
    updates: UpdateResult
    motion: MotionWatcher = field(default_factory=MotionWatcher)
    norms: NormResult = field(default_factory=lambda: NormResult([], [], NORM_TOLERANCE))

    @property
    def healthy(self) -> bool:
        """Activations keep µP's promises and every update scales as µP prescribes."""
        return (self.coord.verdict == "pass" and not self.updates.failed
                and not self.norms.failed)

    def excess(self) -> float:
        """How far the worst measurement is outside its allowed range (0 when healthy)."""
        coord = max((abs(v.slope) for v in self.coord.violations), default=0.0)
        upd = max((abs(j.deviation) for j in self.updates.failed), default=0.0)
        norm = max((abs(j.deviation) for j in self.norms.failed), default=0.0)
        return max(coord, upd, norm)


def run_trial(trial: Trial) -> DynamicResult:
    """Train `trial` at every width, recording activation and update sizes (one run each),
    and at the smallest width which parameters move."""
    roles = judged_roles(trial.shapes)
    recorders: dict[int, UpdateRecorder] = {}
    spectral: dict[int, SpectralRecorder] = {}
    motion = MotionWatcher()
    # Muon's full-rank hidden updates have no mean-|entry| rule: the update-norm check
    # judges them (the mean-|entry| ratio of a rank-r update depends on r).
    entry_roles = {n: r for n, r in roles.items()
                   if not (muon_family(trial)
                           and mucore.muon_owns(r, len(trial.shapes.params[n].base_shape)))}

    def recorded(width: int) -> nn.Module:
        model = trial.factory(width)
        recorders[width] = UpdateRecorder(entry_roles)
        spectral[width] = SpectralRecorder(roles)
        model.register_forward_pre_hook(recorders[width])
        model.register_forward_pre_hook(spectral[width])
        if width == trial.widths[0]:
            model.register_forward_pre_hook(motion)
        return model

    coord = mucore.coord_check(
        recorded, trial.shapes, trial.widths, trial.batch, trial.loss_fn,
        parametrization=trial.table, hparams=trial.hparams, optimizer=trial.optimizer,
        lr=trial.lr, steps=trial.steps, seed=trial.seed, tolerance=COORD_TOLERANCE,
        optimizer_kwargs=dict(trial.optimizer_options))
    return DynamicResult(with_logit_roles(coord),
                         judge_updates(trial.widths, recorders, UPDATE_TOLERANCE), motion,
                         judge_norms(trial.widths, spectral))


def muon_family(trial: Trial) -> bool:
    """Whether the trial trains its hidden matrices with Muon."""
    family = mucore.settings_family(trial.optimizer, trial.optimizer_options)
    return family in (mucore.OptimizerFamily.MUON, mucore.OptimizerFamily.MUON_RMS)


def with_logit_roles(coord: mucore.CoordCheckResult) -> mucore.CoordCheckResult:
    """Re-judge attention scores (a module named like `LOGIT_NAMES`) by the readout's rule.

    Scores q.k * alpha_attn / d_head are, like the readout's output, a product of two learned
    width-sized vectors divided by the width: under µP their init part shrinks like
    1/sqrt(m) (zero with a zero query) and their learned part is Θ(1) only once q and k have
    aligned (TP5, Section 4), so at finite widths and a few dozen steps they may still shrink;
    what µP forbids is growth (SP's 1/sqrt(d_head) makes them grow like sqrt(m)).
    """
    roles = dict(coord.roles)
    logits = [m for m in roles if m.rpartition(".")[2] in LOGIT_NAMES]
    if not logits:
        return coord
    roles.update({m: READOUT for m in logits})
    return summarize(coord.param, coord.widths, coord.steps, coord.tolerance, coord.records,
                     coord.slopes, roles)


def update_finding(updates: UpdateResult, param: str) -> Finding:
    """The update-size measurement as one finding (SP deviating is SP: a warning)."""
    evidence = updates.to_dict()
    evidence.pop("records")  # the per-step slopes and judgements carry the evidence
    failed = updates.failed
    if not failed:
        return Finding("update_size", "pass",
                       f"every weight's relative update |dW|/|W| scales with width as µP "
                       f"prescribes ({len(updates.judgements)} weights, widths "
                       f"{updates.widths})", evidence=evidence)
    worst = update_message(failed[0])
    table = mucore.get_parametrization(param)
    if not table.width_stable:
        return Finding("update_size", "warn",
                       f"{table.display_short_label}: updates do not scale as µP's ({worst})",
                       "use --param mup for hyperparameters that transfer across width",
                       evidence)
    return Finding("update_size", "fail",
                   f"{len(failed)} weights update at the wrong scale for µP; worst: {worst}",
                   "hidden weights need Adam LR / m and fan-in init, the readout a constant "
                   "init and LR with alpha_out / m in the forward: build the optimizer with "
                   "mucore.build_optimizer after mucore.parametrize", evidence)
