"""The Export page's target batch size and training length, for sweeps with those ladders.

A sweep with a batch ladder (`batch_sizes`) or a horizon ladder (`horizons`) exports for a
target batch and horizon (`export --target-batch B --target-steps S`): the transferred LR,
betas and eps move there by the sweep's scaling rule, or by the rule picked here (`fitted`: the
exponent the ladder measured; a named rule), priced by its regret at the largest rung
(`experiments.bundle.rule_choice`). Sweeps without these ladders draw nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from experiments.service import rule_names

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import SweepSpec

# Doublings beyond the largest rung a target may be picked at (as for the width).
DOUBLINGS = 3
SWEPT = "the sweep's rule"
FITTED = "fitted"


@dataclass(frozen=True)
class TrainingPick:
    """What the page exports for: the target batch and horizon, and the rules chosen."""

    target_batch: int | None = None
    target_steps: int | None = None
    rules: dict[str, str] = field(default_factory=dict)

    def stem(self) -> str:
        """The file-name suffix: "-b32-s800" (empty without targets)."""
        return ("" if self.target_batch is None else f"-b{self.target_batch}") + (
            "" if self.target_steps is None else f"-s{self.target_steps}")


def _targets(rungs: list[int]) -> list[int]:
    return [*rungs, *(rungs[-1] * 2**k for k in range(1, DOUBLINGS + 1))]


def _axis(spec: SweepSpec, axis: str, rungs: list[int], base: int, label: str,
          col: st.delta_generator.DeltaGenerator) -> tuple[int, str]:
    """One axis's target and rule choice."""
    targets = _targets(rungs)
    target = int(col.selectbox(
        label, targets, index=targets.index(base) if base in targets else 0,
        key=f"export_target_{axis}",
        format_func=lambda v: f"{v:,}" + (" (base)" if v == base else
                                          " (trained)" if v in rungs else " (beyond)"),
        help=f"The {axis} of the run you will train with these hyperparameters."))
    swept = spec.scaling.rule(axis).label
    options = [SWEPT, FITTED, *[r for r in rule_names(axis) if r != swept]]
    rule = str(col.selectbox(
        f"{axis} rule", options, key=f"export_rule_{axis}",
        format_func=lambda r: f"{r} ({swept})" if r == SWEPT else r,
        help="How the LR moves from the base to the target: the rule the sweep ran under, the "
             "exponent its ladder measured (fitted), or a published rule (priced on the "
             "Transfer page's 'Which scaling rule fits')."))
    return target, rule


def pick_training(spec: SweepSpec) -> TrainingPick:
    """Draw the target batch and horizon pickers of a sweep with those ladders."""
    if not spec.batch_sizes and not spec.horizons:
        return TrainingPick()
    cols = st.columns(2)
    batch = steps = None
    rules: dict[str, str] = {}
    if spec.batch_sizes:
        base = spec.base_batch_size or spec.batch_sizes[0]
        batch, rule = _axis(spec, "batch", list(spec.batch_sizes), base, "Target batch size",
                            cols[0])
        if rule != SWEPT:
            rules["batch"] = rule
    if spec.horizons:
        base = spec.base_horizon or spec.horizons[0]
        steps, rule = _axis(spec, "horizon", list(spec.horizons), base,
                            "Target steps (at the base batch)", cols[1])
        if rule != SWEPT:
            rules["horizon"] = rule
    return TrainingPick(batch, steps, rules)
