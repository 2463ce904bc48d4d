"""µTransfer measured, not assumed: the optimal LR holds across widths under µP, drifts under SP.

Acceptance (mucore issue): the MLP on the bundled digits set, Adam, widths 64..1024, an LR grid
with step 1/2 in log2, 2 seeds: the least-squares slope of the fitted optimum log2 LR against
log2 width is within +-0.2 under µP and at most -0.4 under SP. The sweep runs through the real
runner (2 worker processes) into a real DuckDB store and is fitted by the project's analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

SPEC = {
    "name": "science-mlp-digits",
    "model": {"kind": "mlp", "depth": 2},
    "task": {"name": "digits"},
    "widths": [64, 128, 256, 512, 1024],
    "base_width": 64,
    "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -12, "log2_max": -4, "step": 0.5},
    "seeds": [0, 1],
    # Short enough that the loss has not saturated at zero at any width (a saturated loss
    # flattens the LR curve and makes optima noisy), long enough to rank LRs.
    "steps": 100,
    "batch_size": 64,
    "log_every": 10,
    "device": "cpu",
}


@pytest.mark.slow
def test_mup_optimum_is_stable_and_sp_optimum_drifts(swept_drifts: Callable[..., Any]) -> None:
    mup, sp = swept_drifts(SPEC)
    assert mup.drift_slope is not None and sp.drift_slope is not None
    assert abs(mup.drift_slope) <= 0.2
    assert sp.drift_slope <= -0.4
