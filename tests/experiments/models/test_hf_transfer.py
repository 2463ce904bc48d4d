"""µTransfer on a real transformers architecture: `kind: hf` LLaMA (transformers'
LlamaForCausalLM, 2 layers) on the bundled byte corpus, widths 64..256, Adam. A small sweep
through the real runner (2 worker processes) into a real DuckDB store, fitted by the project's
analysis: µP's optimal LR drifts less across width than SP's."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.analysis import analyze
from experiments.runner import run_sweep
from experiments.spec import parse_spec
from experiments.store import Store
from experiments.sweeps import create_sweep

SPEC = {
    "name": "science-hf-llama-bytes",
    "model": {"kind": "hf", "architecture": "LlamaForCausalLM"},
    "task": {"name": "bytes", "seq_len": 32},
    "widths": [64, 128, 256],
    "base_width": 64,
    "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -11, "log2_max": -5, "step": 1},
    "seeds": [0],
    "steps": 50,
    "batch_size": 16,
    "log_every": 10,
    "device": "cpu",
}


@pytest.mark.slow
def test_hf_llama_mup_optimum_drifts_less_than_sp(tmp_path: Path) -> None:
    db = tmp_path / "science.duckdb"
    sid = create_sweep(Store(db), parse_spec(SPEC))
    summary = run_sweep(db, sid, workers=2)
    assert summary.counts.get("failed", 0) == 0
    report = analyze(Store(db).runs_frame(sid))
    mup, sp = report.lr["mup"], report.lr["sp"]
    print("mup optima", [(w.width, w.opt_log2) for w in mup.widths], "slope", mup.drift_slope)
    print("sp optima", [(w.width, w.opt_log2) for w in sp.widths], "slope", sp.drift_slope)
    assert mup.drift_slope is not None and sp.drift_slope is not None
    assert abs(mup.drift_slope) < abs(sp.drift_slope)
