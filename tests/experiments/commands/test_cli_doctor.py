"""`python -m experiments doctor`: a healthy zoo model exits 0 with every
static and dynamic check passing, SP is reported as SP, a registered model with a plain
nn.Linear head exits 1 with the ablation naming the head, bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main

# A user's MLP whose head is a plain nn.Linear (not mucore.Readout).
PLAIN_HEAD = (Path(__file__).resolve().parents[2] / "fixtures" / "models" / "plain_head.py"
              ).read_text()

WIDTHS = ["--widths", "64,128,256"]  # default 30 steps, LR 1e-3


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "plain_head.py").write_text(PLAIN_HEAD)
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))
    return folder


def test_a_healthy_zoo_model_exits_0(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--model", "mlp", "--param", "mup", *WIDTHS, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["verdict"] == "healthy" and report["model"] == "mlp"
    checks = {f["check"]: f for f in report["findings"]}
    assert {"metadata", "readout", "optimizer", "coord_check", "update_size"} <= set(checks)
    assert all(f["status"] == "pass" for f in report["findings"])
    assert set(checks["coord_check"]) == {"check", "status", "message", "fix", "evidence"}
    assert checks["coord_check"]["evidence"]["steps"] == 30  # late growth would show
    judged = {j["param"]: j for j in checks["update_size"]["evidence"]["judgements"]}
    assert judged["hidden.0.weight"]["expected"] == -0.5 and judged["readout.weight"]["ok"]
    assert "ablation" not in checks
    assert "HEALTHY" in capsys.readouterr().out


def test_sp_is_reported_as_sp(tmp_path):
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--model", "mlp", "--param", "sp", *WIDTHS, "--json", str(out)]) == 0
    checks = {f["check"]: f for f in json.loads(out.read_text())["findings"]}
    assert "SP" in checks["parametrization"]["message"]
    assert checks["coord_check"]["status"] == "warn"  # SP's activations grow: SP, not broken µP
    assert checks["update_size"]["status"] == "warn"
    assert "ablation" not in checks  # nothing to repair: SP is SP


def test_a_registered_model_with_a_plain_linear_head_exits_1_naming_the_readout(
        model_dir, tmp_path, capsys):
    out = tmp_path / "doctor.json"
    rc = main(["doctor", "--model", "plain_head", "--param", "mup", *WIDTHS, "--json", str(out)])
    assert rc == 1
    report = json.loads(out.read_text())
    assert report["verdict"] == "problems"
    failed = {f["check"]: f for f in report["findings"] if f["status"] == "fail"}
    assert {"parametrize", "readout", "coord_check", "ablation"} <= set(failed)
    assert "'5' holds an output-like weight" in failed["readout"]["message"]
    assert "replace '5' with mucore.Readout" in failed["readout"]["fix"]
    # The head trains as it would in the user's code (no multiplier): the logits grow, and
    # switching the readout multiplier alone (a mucore.Readout) restores flat slopes.
    assert "`5` is not a readout: logits grow by x" in failed["ablation"]["message"]
    assert "setting its forward multiplier to 1/m" in failed["ablation"]["message"]
    tried = failed["ablation"]["evidence"]["tried"]
    assert [t["key"] for t in tried] == ["readout_mult"] and tried[0]["healthy"]
    assert "FAIL" in capsys.readouterr().out


def test_bad_input_exits_2_naming_it(model_dir, tmp_path, capsys):
    out = tmp_path / "doctor.json"
    cases = {
        ("--model", "rnn"): "unknown model 'rnn'",
        ("--model", "mlp", "--widths", "128,64"): "must increase",
        ("--model", "plain_head", "--option", "depth=oops"): "depth",
        ("--model", "mlp", "--steps", "0"): "--steps must be >= 1",
    }
    for argv, message in cases.items():
        assert main(["doctor", *argv, "--json", str(out)]) == 2, argv
        assert message in capsys.readouterr().err
    assert not out.exists()
