"""How a sweep searches the LR grid: the `search` block of a spec.

    search: {kind: adaptive, full_widths: 1, bracket: 3}

`grid` (the default) trains every LR of the grid at every width. `adaptive` trains the full
grid only at the narrowest `full_widths` widths; at each wider width it trains a bracket of
`bracket` grid points centred on the optimum predicted from the narrower widths and grows it
while the best point sits on its edge (see `experiments.sweep.adaptive`). TP5 (Yang et al., 2022)
is what makes this sound: the optimum moves smoothly (under µP, not at all) with width, so
the narrow widths say where to look at the wide ones, where nearly all the compute goes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SearchKind = Literal["grid", "adaptive"]


class SearchConfig(BaseModel):
    """The LR search of a sweep.

    Attributes:
        kind: "grid" (every LR at every width) or "adaptive" (full grid at the narrowest
            widths, a growing bracket around the predicted optimum at the wider ones).
        full_widths: with adaptive, how many of the narrowest widths get the full grid.
        bracket: with adaptive, the initial number of grid points at a wider width (odd, so
            it is centred on the predicted optimum).
    """

    model_config = ConfigDict(extra="forbid")

    kind: SearchKind = "grid"
    full_widths: int = Field(default=1, ge=1)
    bracket: int = Field(default=3, ge=3)

    @field_validator("bracket")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"search.bracket must be odd (centred on the predicted optimum), "
                             f"got {v}: use {v + 1}")
        return v

    def is_default(self) -> bool:
        """Whether this is the default (`grid`): such specs hash and print as before it existed."""
        return self == SearchConfig()


# The ladders an adaptive search can walk, in the order it picks one: (spec field, axis word).
_WALKABLE = (("widths", "width"), ("depths", "depth"), ("batch_sizes", "batch size"),
             ("horizons", "horizon"))


def walked_ladder(spec: object) -> tuple[str, list[int]]:
    """(axis word, rungs) the adaptive search walks narrow to wide: the widths, or for a sweep
    of one width its first other ladder of two rungs or more (depth, batch size, horizon), so a
    one-width batch or horizon ladder brackets its wider rungs too. The other ladders' rungs
    split the search into groups (`experiments.sweep.adaptive.group_label`)."""
    for field, word in _WALKABLE:
        rungs = [int(v) for v in (getattr(spec, field, None) or [])]
        if len(rungs) >= 2:
            return word, rungs
    return "width", [int(v) for v in getattr(spec, "widths", [])]


def search_problems(search: SearchConfig, n_widths: int, n_lrs: int,
                    word: str = "width") -> list[tuple[str, str]]:
    """(field, message) for a search the spec's ladder or grid cannot carry out (`word`: the
    walked ladder's axis, `walked_ladder`)."""
    if search.kind != "adaptive":
        return []
    out = []
    if search.full_widths > n_widths:
        out.append(("search.full_widths", f"search.full_widths {search.full_widths} is more than "
                    f"the {n_widths} {word}s: use 1..{n_widths} (1 = only the narrowest {word} "
                    "gets the full grid)"))
    if n_lrs < 3:
        out.append(("search", f"search: adaptive needs an LR grid of >= 3 points, got {n_lrs}: "
                    "widen lr_grid (or lrs), or use search: {kind: grid}"))
    return out
