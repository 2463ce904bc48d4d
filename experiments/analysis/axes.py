"""Ladder axes: what a sweep's ladder runs along (width, depth), one registry entry each.

A ladder is an axis with its values and a base (the proxy's value). The analysis
(`experiments.analysis.ladder`: optima, drift, regret and verdict per axis), the Transfer page's
charts (`app.transfer.ladder_charts`) and the coordinate check (`mucore.coord_check_ladder`)
are written once and take the axis; what differs between axes is data, held here:

- `name`: the axis's key: the `analyze --json` section (`depth`) and the key of its rows
  (`depth`); `plural` names their lists (default name + "s": `depths`; say "batches");
- `label`, `unit`: how charts and pages name it ("Depth", "residual blocks");
- `column`: the runs-frame column (`Store.runs_frame`) holding a run's value on the axis;
- `base_column`: the runs-frame column holding the ladder's base value (None: the smallest
  value is the base, as for width); a frame is a ladder on the axis when both columns are
  present, the base is set and the axis takes more than one value;
- `payload_value`, `payload_base`: where `Store.runs_frame` reads those two columns from, as
  JSON paths into the run's stored payload (its `RunConfig`: `$.model.depth`, `$.base_depth`);
  the sweep writes them when it expands the ladder into runs;
- `log2`: the values double along the ladder, so drift is fitted against log2(value) (log2 LR
  per doubling, TP5's convention); the analysis takes log2 axes only;
- `spec_values`, `spec_base`, `target_flag`, `example`: the sweep spec's keys of the ladder and
  its base (`depths`, `base_depth`), the `export` flag naming a bundle's target on the axis
  (`--target-depth`), and an example ladder for messages; the export target
  (`experiments.bundle.ladder`) reads them;
- `scaling`: the `mucore.ScalingAxis` whose rules move the LR along the axis (batch, horizon;
  empty for width and depth): its section also fits the LR exponent the ladder measures and
  prices the candidate rules (`experiments.analysis.exponent`);
- `judged`, `compared`, `no_judged_reason`: which parametrization the axis's verdict is judged
  on (CompleteP or depth-µP for depth: Dey et al. 2025; Yang et al. 2023), which one's drift is
  quoted beside it, and the reason given when the sweep has none to judge on.

Width is the primary axis: its section is the report's main body (`experiments.analysis.report`),
read on the runs where every other ladder sits at its base. Every other registered axis found
in the runs gets a section named after it, computed at one width (the smallest, or the one the
caller picks). Adding an axis is `register_axis(Axis(...))`, with the sweep writing the two
columns into the runs' payloads; no module is added.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from experiments.models.parametrizations import (
    depth_rule_names,
    has_depth_rules,
    is_width_stable,
)

PRIMARY = "width"  # the axis of the report's main body
# A JSON path into a run's payload, safe to write into the store's SQL.
_JSON_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class Axis:
    """One ladder axis (the module docstring says what each field drives)."""

    name: str
    label: str
    unit: str
    column: str
    base_column: str | None
    judged: Callable[[Iterable[str]], str | None]
    compared: Callable[[Iterable[str]], str | None]
    no_judged_reason: Callable[[], str]
    payload_value: str = ""
    payload_base: str = ""
    spec_values: str = ""
    spec_base: str = ""
    target_flag: str = ""
    example: str = "[2, 4, 8]"
    log2: bool = True
    plural: str = ""
    scaling: str = ""

    @property
    def rows_key(self) -> str:
        """The JSON key of the per-rung lists (`depths`)."""
        return self.plural or f"{self.name}s"

    @property
    def word(self) -> str:
        """How a sentence names the axis ("depth", "batch size")."""
        return self.label.lower()


def width_stable_first(names: Iterable[str]) -> str | None:
    """The first (A-Z) width-stable table (µP), else None."""
    return next((n for n in sorted(names) if is_width_stable(n)), None)


def plain_first(names: Iterable[str]) -> str | None:
    """A table without depth rules, width-stable ones (µP) before the others (SP), A-Z."""
    plain = [n for n in sorted(names) if not has_depth_rules(n)]
    return next(iter(sorted(plain, key=lambda n: not is_width_stable(n))), None)


def first_with_depth_rules(names: Iterable[str]) -> str | None:
    """The first (A-Z) table with depth rules (CompleteP, depth-µP), else None."""
    return next(iter(depth_rule_names(names)), None)


def _no_depth_table() -> str:
    tables = depth_rule_names()
    return (f"the sweep has no {' or '.join(tables)} runs: depth transfer is judged on a "
            f"parametrization with depth rules; add {tables[0]} to the spec's parametrizations")


def _no_width_stable() -> str:
    return ("the sweep has no width-stable parametrization (mup) to judge on; add mup to the "
            "spec's parametrizations")


def _other_than_judged(names: Iterable[str]) -> str | None:
    """SP beside µP: the first table that is not width-stable."""
    return next((n for n in sorted(names) if not is_width_stable(n)), None)


WIDTH = Axis(name="width", label="Width", unit="hidden units", column="width",
             base_column=None, judged=width_stable_first, compared=_other_than_judged,
             no_judged_reason=_no_width_stable)
DEPTH = Axis(name="depth", label="Depth", unit="residual blocks", column="depth",
             base_column="base_depth", judged=first_with_depth_rules, compared=plain_first,
             no_judged_reason=_no_depth_table, payload_value="$.model.depth",
             payload_base="$.base_depth", spec_values="depths", spec_base="base_depth",
             target_flag="--target-depth", example="[2, 4, 8]")

# Batch size and training length (experiments.spec.batch_horizon): the sweep's `scaling` rule
# moves the LR along them, so the drift read here is the drift left under that rule.
BATCH = Axis(name="batch", label="Batch size", unit="examples per step", column="batch_size",
             base_column="base_batch_size", judged=width_stable_first,
             compared=_other_than_judged, no_judged_reason=_no_width_stable,
             payload_value="$.batch_size", payload_base="$.base_batch_size",
             spec_values="batch_sizes", spec_base="base_batch_size",
             target_flag="--target-batch", example="[16, 32, 64]", plural="batches",
             scaling="batch")
HORIZON = Axis(name="horizon", label="Horizon", unit="steps at the base batch",
               column="horizon", base_column="base_horizon", judged=width_stable_first,
               compared=_other_than_judged, no_judged_reason=_no_width_stable,
               payload_value="$.horizon", payload_base="$.base_horizon",
               spec_values="horizons", spec_base="base_horizon",
               target_flag="--target-steps", example="[200, 400, 800]", scaling="horizon")

_AXES: dict[str, Axis] = {}


def register_axis(axis: Axis, *, replace: bool = False) -> Axis:
    """Add a ladder axis; the analysis and charts then take it. Returns it.

    Raises:
        ValueError: the name is taken (without `replace`), or the axis is not log2.
    """
    if axis.name in _AXES and not replace:
        raise ValueError(f"ladder axis '{axis.name}' is already registered: pick another name "
                         "or pass replace=True")
    for path in (axis.payload_value, axis.payload_base):
        if path and not _JSON_PATH.fullmatch(path):
            raise ValueError(f"ladder axis '{axis.name}': payload path {path!r} must look like "
                             "$.key or $.key.sub (the run payload's fields)")
    for col in (axis.column, axis.base_column):
        if col is not None and not col.isidentifier():
            raise ValueError(f"ladder axis '{axis.name}': column {col!r} must be an identifier")
    if not axis.log2:
        raise ValueError(f"ladder axis '{axis.name}': the analysis fits drift against "
                         "log2(value); register a doubling ladder (log2=True)")
    _AXES[axis.name] = axis
    return axis


def unregister_axis(name: str) -> None:
    """Remove a registered axis (a test's throwaway one); the primary axis stays."""
    if name == PRIMARY:
        raise ValueError("the width axis is the report's main body and cannot be removed")
    _AXES.pop(name, None)


def get_axis(name: str) -> Axis:
    """The registered axis `name`.

    Raises:
        KeyError: no such axis, naming the registered ones.
    """
    try:
        return _AXES[name]
    except KeyError:
        raise KeyError(f"unknown ladder axis '{name}': choose one of "
                       f"{', '.join(_AXES)}") from None


def axis_names() -> list[str]:
    """Every registered axis, the primary (width) first, then in registration order."""
    return list(_AXES)


def ladder_axes() -> list[Axis]:
    """The axes other than width: each gets its own section of the report."""
    return [a for a in _AXES.values() if a.name != PRIMARY]


register_axis(WIDTH)
register_axis(DEPTH)
register_axis(BATCH)
register_axis(HORIZON)


def base_of(runs: pd.DataFrame, axis: Axis) -> int | None:
    """The ladder's base on `axis` in these runs (a runs frame, `Store.runs_frame`), or None
    when they are no ladder on it: a ladder has the axis's column, its base column set (the
    smallest value when the axis has none), and more than one value."""
    if axis.column not in runs.columns:
        return None
    values = runs[axis.column].dropna()
    if values.nunique() < 2:
        return None
    if axis.base_column is None:
        return int(values.min())
    if axis.base_column not in runs.columns:
        return None
    base = runs[axis.base_column].dropna()
    return None if base.empty else int(base.iloc[0])


def payload_columns() -> list[tuple[str, str]]:
    """(runs-frame column, payload JSON path) of every ladder axis's value and base, for
    `Store.runs_frame`."""
    out: list[tuple[str, str]] = []
    for a in ladder_axes():
        if a.payload_value:
            out.append((a.column, a.payload_value))
        if a.payload_base and a.base_column is not None:
            out.append((a.base_column, a.payload_base))
    return out


def ladder_bases(runs: pd.DataFrame) -> dict[str, int]:
    """{axis name: base} of every ladder other than width in the runs (registration order)."""
    return {a.name: b for a in ladder_axes() if (b := base_of(runs, a)) is not None}


def at_bases(runs: pd.DataFrame, bases: dict[str, int], skip: str | None = None) -> pd.DataFrame:
    """The runs where every ladder of `bases` but `skip` sits at its base (the width section
    reads all of them at their bases; the ladder on `skip` reads the others at theirs)."""
    keep = pd.Series(True, index=runs.index)
    for name, base in bases.items():
        if name != skip:
            keep &= runs[get_axis(name).column] == base
    return runs[keep]

