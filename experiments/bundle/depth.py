"""The depth part of an HP bundle: base depth, target depth, depth-aware base shapes.

A sweep with a depth ladder (`depths`, `base_depth`; see `experiments.spec.ladder`) exports a
bundle for a target (width N, depth L): its base shapes are inferred with the depth factory at
the base depth (so they carry the block list and the base block count), its model config is the
family at depth L, and its per-parameter table is computed at (N, L). `mucore.apply_bundle`
then rebuilds init, branch multipliers (m_L^-alpha) and optimizer groups (m_L^(alpha-1)) for a
model of any depth from the base shapes alone (CompleteP, Dey et al., 2025; depth-µP, Yang et
al., 2023).

Rules: a ladder's bundle without a target depth is for the base depth; a target depth on a
width-only sweep is refused; a target depth other than the base depth needs the depth section's
verdict confirmed (or `--force`, recorded in the bundle).
"""

from __future__ import annotations

from typing import Any

import mucore
from experiments.analysis import TransferReport
from experiments.analysis.outcome import VERDICT_WORDS
from experiments.errors import UserError
from experiments.models import ModelConfig, depth_model_factory, model_factory
from experiments.tasks import TaskInfo

# Bundle and evidence fields a width-only bundle leaves out, so its bytes (and hash) are those
# of a bundle exported before depth ladders existed.
DEPTH_BUNDLE_FIELDS = frozenset({"base_depth", "target_depth", "depth"})


def bundle_depths(
    spec: dict[str, Any], model: ModelConfig, target_depth: int | None
) -> tuple[int | None, int | None]:
    """(base depth, target depth) of a bundle for this sweep; (None, None) without a ladder.

    Raises:
        UserError: a target depth for a sweep without a depth ladder, or one below 1.
    """
    if not spec.get("depths"):
        if target_depth is not None:
            raise UserError(f"--target-depth {target_depth} needs a sweep with a depth ladder, "
                            f"and sweep '{spec.get('name', '')}' has no depths: drop "
                            "--target-depth, or sweep depths (e.g. depths: [2, 4, 8])")
        return None, None
    base = spec.get("base_depth") or getattr(model, "depth", None)
    if base is None:
        raise UserError("the sweep's stored spec has depths but no base depth: re-create it")
    target = int(base) if target_depth is None else target_depth
    if target < 1:
        raise UserError(f"--target-depth must be >= 1, got {target}")
    return int(base), target


def check_depth_verdict(report: TransferReport, base_depth: int | None,
                        target_depth: int | None, force: bool) -> None:
    """Refuse a target depth off the base when depth transfer is not confirmed (unless force).

    Raises:
        UserError: the depth verdict is not confirmed, the target depth differs from the base
            and `force` is off.
    """
    if base_depth is None or target_depth == base_depth or force:
        return
    depth = report.depth
    if depth is None or depth.verdict != "confirmed":
        why = "the sweep has no depth analysis" if depth is None else depth.reason
        verdict = "not_confirmed" if depth is None else depth.verdict
        step = (f"export for the base depth {base_depth}" if depth is None
                else f"{depth.next_step}; or export for the base depth {base_depth}")
        raise UserError(refusal_words("depth transfer", verdict, why, step,
                                      f"to export for depth {target_depth}"))


def refusal_words(what: str, verdict: str, reason: str, next_step: str,
                  purpose: str = "to export anyway") -> str:
    """Why an export is refused, for a verdict that is not confirmed: "the sweep's transfer
    verdict is inconclusive (why): next step: ...; or pass --force to export anyway (...)".
    An inconclusive verdict is refused like a not-confirmed one: the evidence has not shown that
    the HPs transfer, and `--force` is the user's explicit decision to copy them regardless."""
    words = VERDICT_WORDS.get(verdict, verdict)
    return (f"the sweep's {what} verdict is {words} ({reason}): next step: {next_step}; or pass "
            f"--force {purpose} (the bundle records forced: true)")


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
