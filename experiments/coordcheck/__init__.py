"""Coordinate checks and describe tables for zoo and registered models (TP5, Yang et al.,
2022, Appendix D): `request` (the CLI/page request, validated torch-free), `check` (the check along a
width or depth ladder, one result type and JSON shape, and describe tables).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports; run time loads on first use
    from experiments.coordcheck.check import (
        coord_payload,
        describe_rows,
        run_coord_check,
        run_coord_check_depth,
    )
    from experiments.coordcheck.request import CoordCheckRequest

_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
