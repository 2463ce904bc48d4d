"""What to run: the sweep spec, its ladders, the adaptive-search settings, one run's settings
and the cost estimate. Torch-free (the dashboard form, YAML files and validation stay cheap).

    spec = load_spec("experiments/configs/quick.yaml")   # `sweep`: SweepSpec, validation, keys
    runs = spec.expand()                                  # `run`: RunConfig, one per run
    plan = spec.estimate()                                # `estimate`: runs, params, FLOPs, memory

Modules: `sweep` (the spec), `run` (one resolved run and its result), `ladder` (the depth
ladder), `search` (adaptive-search settings), `estimate` (cost before launch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports; run time loads on first use
    from experiments.spec.estimate import SweepEstimate, estimate
    from experiments.spec.ladder import Ladder
    from experiments.spec.run import OptimizerConfig, RunConfig, RunResult
    from experiments.spec.search import SearchConfig
    from experiments.spec.sweep import (
        LRGrid,
        SweepSpec,
        check_spec,
        load_spec,
        parse_spec,
        run_key,
        spec_hash,
    )

_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
