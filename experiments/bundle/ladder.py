"""The ladder part of an HP bundle: the export target along a ladder axis, and depth's build.

Along any ladder axis (`experiments.analysis.axes`; its entry names the spec keys and the
`export` flag), written once: a ladder's bundle without a target is for the base; a target on a
sweep without that ladder is refused; a target other than the base needs the axis section's
verdict confirmed (or `--force`, recorded in the bundle) (`ladder_target`,
`check_ladder_verdict`).

Depth's build: a sweep with a depth ladder (`depths`, `base_depth`; see `experiments.spec.ladder`) exports a
bundle for a target (width N, depth L): its base shapes are inferred with the depth factory at
the base depth (so they carry the block list and the base block count), its model config is the
family at depth L, and its per-parameter table is computed at (N, L). `mucore.apply_bundle`
then rebuilds init, branch multipliers (m_L^-alpha) and optimizer groups (m_L^(alpha-1)) for a
model of any depth from the base shapes alone (CompleteP, Dey et al., 2025; depth-µP, Yang et
al., 2023).
"""

from __future__ import annotations

from typing import Any

import mucore
from experiments.analysis import TransferReport
from experiments.analysis.axes import Axis, get_axis
from experiments.analysis.outcome import VERDICT_WORDS
from experiments.errors import UserError
from experiments.models import ModelConfig, depth_model_factory, model_factory
from experiments.tasks import TaskInfo

# Bundle and evidence fields a width-only bundle leaves out, so its bytes (and hash) are those
# of a bundle exported before depth ladders existed.
DEPTH_BUNDLE_FIELDS = frozenset({"base_depth", "target_depth", "depth"})


def ladder_target(spec: dict[str, Any], model: ModelConfig, axis: Axis,
                  target: int | None) -> tuple[int | None, int | None]:
    """(base, target) on `axis` of a bundle for this sweep; (None, None) without that ladder.

    The base is the spec's (`axis.spec_base`), else the model config's value on the axis (a
    depth ladder's default), else the ladder's first rung (a batch or horizon ladder's default,
    `experiments.spec.batch_horizon`).

    Raises:
        UserError: a target for a sweep without the ladder, or one below 1.
    """
    flag, values = axis.target_flag, axis.spec_values
    if not spec.get(values):
        if target is not None:
            raise UserError(f"{flag} {target} needs a sweep with a {axis.word} ladder, and "
                            f"sweep '{spec.get('name', '')}' has no {values}: drop {flag}, or "
                            f"sweep {values} (e.g. {values}: {axis.example})")
        return None, None
    base = spec.get(axis.spec_base) or getattr(model, axis.name, None) or spec[values][0]
    chosen = int(base) if target is None else target
    if chosen < 1:
        raise UserError(f"{flag} must be >= 1, got {chosen}")
    return int(base), chosen


def bundle_depths(
    spec: dict[str, Any], model: ModelConfig, target_depth: int | None
) -> tuple[int | None, int | None]:
    """(base depth, target depth) of a bundle for this sweep (`ladder_target` on depth)."""
    return ladder_target(spec, model, get_axis("depth"), target_depth)


def check_ladder_verdict(report: TransferReport, axis: Axis, base: int | None,
                         target: int | None, force: bool) -> None:
    """Refuse a target off the base when transfer along `axis` is not confirmed (unless force).

    Raises:
        UserError: the axis's verdict is not confirmed, the target differs from the base and
            `force` is off.
    """
    if base is None or target == base or force:
        return
    section = report.ladders.get(axis.name)
    word = axis.word
    if section is None or section.verdict != "confirmed":
        why = f"the sweep has no {word} analysis" if section is None else section.reason
        verdict = "not_confirmed" if section is None else section.verdict
        step = (f"export for the base {word} {base}" if section is None
                else f"{section.next_step}; or export for the base {word} {base}")
        raise UserError(refusal_words(f"{word} transfer", verdict, why, step,
                                      f"to export for {word} {target}"))


def refusal_words(what: str, verdict: str, reason: str, next_step: str,
                  purpose: str = "to export anyway") -> str:
    """Why an export is refused, for a verdict that is not confirmed: "the sweep's transfer
    verdict is inconclusive (why): next step: ...; or pass --force to export anyway (...)".

    An inconclusive verdict is refused like a not-confirmed one: the evidence has not shown
    that the HPs transfer, and `--force` is the user's explicit decision to copy them anyway.
    """
    words = VERDICT_WORDS.get(verdict, verdict)
    return (f"the sweep's {what} verdict is {words} ({reason}): next step: {next_step}; or pass "
            f"--force {purpose} (the bundle records forced: true)")


def check_depth_verdict(report: TransferReport, base_depth: int | None,
                        target_depth: int | None, force: bool) -> None:
    """`check_ladder_verdict` on depth."""
    check_ladder_verdict(report, get_axis("depth"), base_depth, target_depth, force)


def bundle_shapes(model: ModelConfig, info: TaskInfo, base_width: int,
                  base_depth: int | None) -> mucore.BaseShapes:
    """The base shapes a bundle carries: measured at (base width, base depth) with a ladder."""
    if base_depth is None:
        return mucore.infer_base_shapes(model_factory(model, info), base_width)
    return mucore.infer_base_shapes(depth_model_factory(model, info), base_width,
                                    base_depth=base_depth)


def at_target_depth(model: ModelConfig, target_depth: int | None) -> ModelConfig:
    """The model config of the bundle's target (the family at `target_depth`)."""
    if target_depth is None:
        return model
    return model.model_copy(update={"depth": target_depth})


def drop_unset_depth(data: dict[str, Any]) -> dict[str, Any]:
    """A serialized bundle (or evidence) without its depth fields when they are unset."""
    return {k: v for k, v in data.items() if not (k in DEPTH_BUNDLE_FIELDS and v is None)}
