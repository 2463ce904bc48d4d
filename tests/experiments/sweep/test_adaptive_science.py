"""Adaptive vs grid on real training (the search's acceptance, the suite's smaller version of
`bench/bench_adaptive.py`): the MLP on digits, Adam, five widths 32..512, a half-step LR
grid, 2 seeds, short runs. The grid sweep runs through the real runner; the adaptive search is replayed against
its results (`experiments.sweep.adaptive.replay`: each run it asks for is answered with the loss the
grid measured for that very run), so both are analysed on identical training.

Accepted: the same verdict, every per-width optimum within 0.25 log2 of the grid's, at most
50% of the grid's runs and of its training FLOPs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.analysis import analyze
from experiments.runner import run_sweep
from experiments.spec.sweep import parse_spec, run_key
from experiments.store import Store
from experiments.sweep.adaptive import replay
from experiments.sweep.planning import outcomes_of
from experiments.sweep.submit import create_sweep

SPEC = {
    "name": "adaptive-science", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    "widths": [32, 64, 128, 256, 512], "base_width": 32, "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"}, "lr_grid": {"log2_min": -12, "log2_max": -4, "step": 0.5},
    "seeds": [0, 1], "steps": 100, "batch_size": 32, "log_every": 10, "device": "cpu",
}


@pytest.mark.slow
def test_adaptive_finds_the_grid_optima_for_half_the_compute(tmp_path: Path) -> None:
    grid_spec = parse_spec(SPEC)
    db = tmp_path / "grid.duckdb"
    store = Store(db)
    sid = create_sweep(store, grid_spec)
    assert run_sweep(db, sid, workers=2).counts.get("failed", 0) == 0
    runs, stored = store.runs_frame(sid), outcomes_of(store, sid)
    adaptive = parse_spec({**SPEC, "search": {"kind": "adaptive"}})
    chosen, plan, _ = replay(adaptive, lambda run: stored[run_key(run)])
    assert plan.complete and set(chosen) <= set(stored)
    picked = runs[runs["run_key"].isin(chosen)]

    grid_report, ada_report = analyze(runs), analyze(picked)
    assert ada_report.verdict == grid_report.verdict
    for param, drift in grid_report.lr.items():
        ada = {w.width: w.opt_log2 for w in ada_report.lr[param].widths}
        for w in drift.widths:
            found = ada[w.width]
            assert w.opt_log2 is not None and found is not None
            assert abs(found - w.opt_log2) <= 0.25, (param, w.width)

    per_step = {w.width: w.flops_per_step for w in grid_spec.estimate().widths}
    flops = {name: float(frame["width"].map(per_step).sum()) * grid_spec.steps
             for name, frame in (("grid", runs), ("adaptive", picked))}
    print(f"runs {len(picked)}/{len(runs)}, FLOPs {flops['adaptive']:.3g}/{flops['grid']:.3g}")
    assert len(picked) <= 0.5 * len(runs)
    assert flops["adaptive"] <= 0.5 * flops["grid"]
