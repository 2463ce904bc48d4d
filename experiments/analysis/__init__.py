"""µTransfer analysis: per-width optima, drift against width and a verdict (TP5, Yang et al., 2022).

    report = analyze(store.runs_frame(sweep_id), tolerance=0.25)
    report.verdict, report.reason, report.lr["mup"].drift_slope
    report.to_contract_json()        # the `python -m experiments analyze --json` document
    seed_summary(runs)               # the loss-vs-LR curves the dashboard draws

Pure functions over a runs DataFrame, one concept a module: `summary` (which runs count,
"diverged", the seed mean, the parametrization order), `curves` (one curve's optimum), `drift`
(optima against width), `axes` (the ladder axes: width, depth, ...), `ladder` (the section of
one ladder axis other than width, its models in `ladder_schema`), `regret` (what copying the proxy's LR costs in loss, its models in
`regret_schema`), `verdict` (the rule), `schema` (the report's models) and `report`
(`analyze`, with the rules written out). The public names load on first use (PEP 562), so the
dashboard's chart helpers (`summary`) do not import scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:  # static checkers see the eager imports
    from experiments.analysis.axes import Axis, axis_names, get_axis, register_axis
    from experiments.analysis.curves import CurveOptimum, curvature_interval, curve_optimum
    from experiments.analysis.ladder import ladder_report, split_ladders
    from experiments.analysis.ladder_schema import LadderDrift, LadderOptimum, LadderReport
    from experiments.analysis.regret import transfer_regret
    from experiments.analysis.regret_schema import RegretResult, WidthRegret
    from experiments.analysis.report import analyze
    from experiments.analysis.schema import DriftResult, HPVerdict, TransferReport, WidthOptimum
    from experiments.analysis.summary import (
        FINISHED_STATES,
        PARAM_ORDER,
        diverged_mask,
        finished,
        grid_optima,
        param_order,
        seed_mean,
        seed_summary,
        swept_hps,
    )
    from experiments.analysis.verdict import DEFAULT_REGRET_TOLERANCE, DEFAULT_TOLERANCE

# The public names are the imports above, each loaded on first use (PEP 562).
_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
