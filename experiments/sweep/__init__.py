"""Running a spec: submit it as a stored sweep (`submit`), and for adaptive searches plan the
later rounds (`adaptive`: the rule that picks the next LRs; `planning`: the planner that queues them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports; run time loads on first use
    from experiments.sweep.adaptive import Plan, plan_runs
    from experiments.sweep.planning import SweepPlanner, search_progress
    from experiments.sweep.submit import create_sweep, run_rows

_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
