"""µTransfer analysis: per-width optima, drift against width and a verdict (TP5, Yang et al., 2022).

    report = analyze(store.runs_frame(sweep_id), tolerance=0.25)
    report.verdict, report.reason, report.lr["mup"].drift_slope
    report.to_contract_json()        # the `python -m experiments analyze --json` document

Pure functions over a runs DataFrame; see `experiments.analysis.report` for the rules.
"""

from experiments.analysis.curves import CurveOptimum, curvature_interval, curve_optimum
from experiments.analysis.report import (
    DEFAULT_TOLERANCE,
    DriftResult,
    HPVerdict,
    TransferReport,
    WidthOptimum,
    analyze,
    swept_hps,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "CurveOptimum",
    "DriftResult",
    "HPVerdict",
    "TransferReport",
    "WidthOptimum",
    "analyze",
    "curvature_interval",
    "curve_optimum",
    "swept_hps",
]
