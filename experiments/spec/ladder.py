"""A sweep's depth ladder: which depths it trains, at which base depth, and why not.

CompleteP (Dey et al., 2025, arXiv 2505.01618) and depth-µP (Yang et al., 2023, arXiv
2310.02244) scale every residual branch by m_L^(-alpha) and the block LRs by m_L^(alpha - 1),
with m_L = depth / base_depth, so an LR tuned on a shallow proxy transfers to a deep target. A
spec opts in with `depths: [2, 4, 8]` (strictly increasing) and `base_depth` (default: the
model's own `depth`, which must then be on the ladder). Runs cover

    widths x depths x parametrizations x lrs x seeds x hparam_grid

and each run's depth is its `model.depth`. A spec without `depths` is a width-only sweep,
keyed and hashed exactly as before depth ladders existed.

Torch-free: the spec and the dashboard form import it.
"""

from __future__ import annotations

import itertools
from typing import Protocol

from experiments.models.configs import ModelConfig, zoo_kind

# Zoo models whose `depth` counts residual blocks the depth rules can scale.
DEPTH_KINDS = ("gpt", "llama", "mlp (with residual: true)")
# The zoo configs' own bound on `depth`.
MAX_DEPTH = 64


class Ladder(Protocol):
    """What the ladder rules read of a sweep (a `SweepSpec` is one): the spec builds on this
    module, so it names the fields it needs instead of importing the spec."""

    @property
    def depths(self) -> list[int] | None:
        """The ladder's depths, or None for a width-only sweep."""
        ...

    @property
    def base_depth(self) -> int | None:
        """The depth the multipliers are relative to (None: the model's own `depth`)."""
        ...

    @property
    def model(self) -> ModelConfig:
        """The model config every rung copies with its own depth."""
        ...


def model_depth(model: ModelConfig) -> int | None:
    """The model's block count (`model.depth`), or None when it has no residual depth to scale.

    The CNN and registered models have no `depth` field; the plain MLP has one, but no residual
    branch for the depth multiplier to scale (use `residual: true`).
    """
    return zoo_kind(model.kind).depth(model)


def resolved_base_depth(spec: Ladder) -> int | None:
    """The base depth the runs are measured against: `base_depth`, else the model's depth.

    None for a width-only sweep (no `depths`).
    """
    if spec.depths is None:
        return None
    return spec.base_depth if spec.base_depth is not None else model_depth(spec.model)


def sweep_depths(spec: Ladder) -> list[int | None]:
    """The depths to cross with the other axes: the ladder, or `[None]` (the model's own)."""
    return list(spec.depths) if spec.depths is not None else [None]


def at_depth(model: ModelConfig, depth: int | None) -> ModelConfig:
    """The model config of a run at `depth` (unchanged for None)."""
    if depth is None:
        return model
    field = zoo_kind(model.kind).depth_field or "depth"
    return model.model_copy(update={field: depth})


def ladder_problems(spec: Ladder) -> list[tuple[str, str]]:
    """(field, message) for a depth ladder that cannot run; empty when it can (or is absent).

    Refused: `base_depth` without `depths`; a ladder that is empty, has a depth < 1 or does not
    strictly increase; a model without residual depth; a base depth that is not on the ladder.
    """
    if spec.depths is None:
        if spec.base_depth is not None:
            return [("base_depth", f"base_depth {spec.base_depth} is set but depths is not: add "
                     f"a ladder, e.g. depths: [{spec.base_depth}, {2 * spec.base_depth}], or "
                     "remove base_depth")]
        return []
    out = _order_problems(spec.depths)
    if model_depth(spec.model) is None:
        kind = spec.model.kind
        why = ("has no residual branches: set model.residual: true" if kind == "mlp"
               else "has no depth to scale")
        out.append(("depths", f"model '{kind}' {why}; depth ladders need one of "
                    f"{', '.join(DEPTH_KINDS)} (or remove depths)"))
        return out
    base = resolved_base_depth(spec)
    if not out and base not in spec.depths:
        given = "base_depth" if spec.base_depth is not None else "the model's depth (model.depth)"
        out.append(("base_depth", f"{given} {base} is not in depths {spec.depths}: add it to "
                    f"the ladder or set base_depth to one of them (usually the smallest, "
                    f"{spec.depths[0]})"))
    return out


def _order_problems(depths: list[int]) -> list[tuple[str, str]]:
    """The ladder itself: non-empty, every depth >= 1, strictly increasing."""
    if not depths:
        return [("depths", "depths is empty: give a ladder like [2, 4, 8], or remove depths "
                 "for a width-only sweep")]
    bad = [d for d in depths if not 1 <= d <= MAX_DEPTH]
    if bad:
        return [("depths", f"depths must be in [1, {MAX_DEPTH}]: got {bad[0]}; use e.g. "
                 "[2, 4, 8]")]
    for prev, cur in itertools.pairwise(depths):
        if cur <= prev:
            return [("depths", f"depths must increase: got {cur} after {prev}; sort the ladder "
                     "and drop repeats")]
    return []
