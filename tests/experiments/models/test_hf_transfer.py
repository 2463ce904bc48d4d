"""µTransfer on a real transformers architecture: `kind: hf` LLaMA (transformers'
LlamaForCausalLM, 2 layers) on the bundled byte corpus, widths 64..256, Adam. A small sweep
through the real runner (2 worker processes) into a real DuckDB store, fitted by the project's
analysis: µP's optimal LR drifts less across width than SP's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

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
def test_hf_llama_mup_optimum_drifts_less_than_sp(swept_drifts: Callable[..., Any]) -> None:
    mup, sp = swept_drifts(SPEC)
    assert mup.drift_slope is not None and sp.drift_slope is not None
    assert abs(mup.drift_slope) < abs(sp.drift_slope)
