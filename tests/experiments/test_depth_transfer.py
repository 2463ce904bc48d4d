"""Depth transfer on the byte corpus (depth transfer's acceptance), a CPU-sized copy of the depth-gpt
preset: a pre-LN GPT at depths 2, 4, 8 tuned from depth 2, in µP and CompleteP, trained for real
(in-process, one seed) and analysed by `analyze`'s depth section.

What holds at this scale (bench/RESULTS.md has the bench's figures): CompleteP's optimal
log2 LR drifts by at most 0.25 per depth doubling and by less than µP's, whose optimum falls as
blocks are added; CompleteP's best loss does not get worse with depth while µP's does.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from experiments.analysis import analyze
from experiments.spec.ladder import model_depth
from experiments.spec.sweep import parse_spec
from experiments.train import NullReporter, train_run

PRESET = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "depth-gpt.yaml"
# The bench's CPU copy of the preset (bench/bench_depth_transfer.py --cpu-scale), shrunk
# further: depths 2-8 and the 4 grid points around the optima. Its runs are the bench's runs
# (same seeds, steps and batches). Fewer steps do not do: at 120 steps CompleteP's optimum
# still rises with depth (+0.49 log2 per doubling, the grid edge at depth 8; bench/RESULTS.md).
SMALL = {"widths": [64], "depths": [2, 4, 8], "task": {"name": "bytes", "seq_len": 32},
         "lr_grid": {"log2_min": -9, "log2_max": -6, "step": 1}, "steps": 200,
         "batch_size": 16, "log_every": 20, "device": "cpu"}


def train_ladder() -> pd.DataFrame:
    """Every run of the shrunk preset, trained here; a frame shaped like Store.runs_frame."""
    spec = parse_spec({**yaml.safe_load(PRESET.read_text()), **SMALL})
    rows = []
    for run in spec.expand():
        result = train_run(run, NullReporter())
        rows.append({"width": run.width, "depth": model_depth(run.model),
                     "base_depth": run.base_depth, "parametrization": run.parametrization,
                     "lr": run.lr, "log2_lr": math.log2(run.lr), "seed": run.seed,
                     "state": result.state, "final_train_loss": result.final_train_loss,
                     "final_val_loss": result.final_val_loss})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_completep_keeps_the_optimal_lr_across_depth_and_mup_does_not() -> None:
    torch.set_num_threads(1)
    report = analyze(train_ladder(), n_bootstrap=0)
    depth = report.depth
    assert depth is not None and depth.width == 64 and depth.base_depth == 2
    completep, mup = depth.parametrizations["completep"], depth.parametrizations["mup"]
    assert completep.drift_slope is not None and mup.drift_slope is not None
    assert abs(completep.drift_slope) <= 0.25, depth.reason
    assert abs(completep.drift_slope) < abs(mup.drift_slope), depth.reason
    assert mup.drift_slope < 0  # µP's optimum falls as blocks are added
    # At the base depth the two tables are the same model (bit for bit): same optimum.
    assert completep.depths[0].opt_log2_lr == mup.depths[0].opt_log2_lr
    # Deeper µP gets worse at its own best LR; CompleteP does not.
    mup_loss = [d.best_loss for d in mup.depths]
    completep_loss = [d.best_loss for d in completep.depths]
    assert mup_loss[-1] is not None and mup_loss[0] is not None and mup_loss[-1] > mup_loss[0]
    assert completep_loss[-1] is not None and completep_loss[0] is not None
    assert completep_loss[-1] <= completep_loss[0] + 0.01
