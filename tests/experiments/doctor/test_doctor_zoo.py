"""No false alarm from the doctor on the zoo (the doctor's no-false-alarm bound): every kind, SP and µP,
through static and dynamic checks (30 steps, widths 64..256, the readout keeping its own init).
µP is healthy with every finding passing; SP is healthy too, reported as SP (its dynamic
checks warn, nothing fails, no ablation). The MLP runs in the CLI tests."""

from __future__ import annotations

import pytest

from experiments.doctor.diagnose import run_doctor
from experiments.models.catalog import model_config

WIDTHS = [64, 128, 256]


@pytest.mark.slow  # ~5 s per model on one CPU thread
@pytest.mark.parametrize("kind", ["gpt", "llama", "cnn"])
@pytest.mark.parametrize("param", ["mup", "sp"])
def test_zoo_models_raise_no_false_alarm(kind, param):
    report = run_doctor(model_config(kind), param, WIDTHS)
    checks = {f.check: f for f in report.findings}
    assert report.verdict == "healthy", [f.message for f in report.findings if f.status == "fail"]
    assert {"coord_check", "update_size"} <= set(checks) and "ablation" not in checks
    if param == "mup":
        assert all(f.status == "pass" for f in report.findings), [
            f.message for f in report.findings if f.status != "pass"]
    else:
        assert "SP" in checks["parametrization"].message
        assert checks["coord_check"].status == "warn"  # SP's activations grow: SP, not broken
