"""Shared test setup: one CPU thread (the test machine's cores are shared) and fixed seeds."""

from __future__ import annotations

import random

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def swept_drifts(tmp_path):
    """`swept_drifts(spec)` trains a µP-vs-SP sweep spec through the real runner (2 worker
    processes) into a real DuckDB store, checks no run failed, prints each parametrization's
    optima, and returns the project's analysis of µP and of SP, as the science tests read it."""

    def sweep(spec: dict) -> tuple:
        from experiments.analysis import analyze
        from experiments.runner import run_sweep
        from experiments.spec.sweep import parse_spec
        from experiments.store import Store
        from experiments.sweep.submit import create_sweep

        db = tmp_path / "science.duckdb"
        sid = create_sweep(Store(db), parse_spec(spec))
        assert run_sweep(db, sid, workers=2).counts.get("failed", 0) == 0
        report = analyze(Store(db).runs_frame(sid))
        mup, sp = report.lr["mup"], report.lr["sp"]
        for name, lr in (("mup", mup), ("sp", sp)):
            print(f"{name} optima", [(w.width, w.opt_log2) for w in lr.widths],
                  "slope", lr.drift_slope)
        return mup, sp

    return sweep
