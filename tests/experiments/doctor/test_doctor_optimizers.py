"""Muon and Lion under µP on the zoo, both directions: the coordinate check passes and the
doctor calls each healthy (the update-norm slope of every hidden weight within 0.1 of the
spectral condition's 0 under Muon, whose orthogonalised update fixes its norm; within the
check's 0.25 under Adam and Lion, whose sign-like updates of a rank-limited momentum reach
-0.2 on LLaMA's attention at 30 steps), and Muon's "match_rms_adamw" without its hidden LR / sqrt(m) fails
with the update-norm finding that names the fix (slope about +1/2). The MLP runs fast; GPT and
LLaMA are marked slow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from experiments.cli import main
from experiments.coordcheck.check import run_coord_check
from experiments.doctor.diagnose import run_doctor
from experiments.doctor.spectral import MATCH_RMS_FIX, NORM_TOLERANCE
from experiments.models.catalog import model_config

WIDTHS = [64, 128, 256]
RMS = {"adjust_lr_fn": "match_rms_adamw"}
UNCORRECTED = {**RMS, "hidden_lr_correction": False}
HEALTHY = [("adam", {}), ("muon", {}), ("muon", RMS), ("lion", {})]


def _hidden_slopes(report: Any) -> list[float]:
    norm = next(f for f in report.findings if f.check == "update_norm")
    return [j["slope"] for j in norm.evidence["judgements"] if j["role"] == "hidden"]


def _assert_healthy(kind: str, optimizer: str, options: dict[str, Any]) -> None:
    bound = 0.1 if optimizer == "muon" else NORM_TOLERANCE
    report = run_doctor(model_config(kind), "mup", WIDTHS, optimizer=optimizer,
                        optimizer_options=options)
    bad = [f.message for f in report.findings if f.status != "pass"]
    assert report.verdict == "healthy" and not bad, bad
    slopes = _hidden_slopes(report)
    assert slopes and max(abs(s) for s in slopes) <= bound, slopes


def _assert_uncorrected_fails(kind: str) -> None:
    report = run_doctor(model_config(kind), "mup", WIDTHS, optimizer="muon",
                        optimizer_options=UNCORRECTED)
    found = {f.check: f for f in report.findings}
    assert report.verdict == "problems"
    norm = found["update_norm"]
    assert norm.status == "fail" and norm.fix == MATCH_RMS_FIX
    slopes = _hidden_slopes(report)
    assert all(0.4 <= s <= 0.6 for s in slopes), slopes  # 0.2 sqrt(max(A, B)): +1/2
    assert found["optimizer"].status == "fail"  # the static check sees the group LRs too
    assert found["ablation"].fix == MATCH_RMS_FIX  # switching the correction on fixes it


@pytest.mark.parametrize(("optimizer", "options"), HEALTHY)
def test_mlp_doctor_is_healthy_with_adam_muon_and_lion(optimizer: str,
                                                       options: dict[str, Any]) -> None:
    _assert_healthy("mlp", optimizer, options)


def test_mlp_doctor_fails_muon_match_rms_without_its_hidden_lr_correction() -> None:
    _assert_uncorrected_fails("mlp")


@pytest.mark.slow  # ~10-20 s per run on one CPU thread
@pytest.mark.parametrize(("optimizer", "options"), HEALTHY[1:])
@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_transformer_doctor_is_healthy_with_muon_and_lion(kind: str, optimizer: str,
                                                          options: dict[str, Any]) -> None:
    _assert_healthy(kind, optimizer, options)


@pytest.mark.slow  # the failing run adds the ablation's reruns
@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_transformer_doctor_fails_uncorrected_match_rms(kind: str) -> None:
    _assert_uncorrected_fails(kind)


@pytest.mark.parametrize(("optimizer", "options"), HEALTHY[1:])
@pytest.mark.parametrize("kind", ["mlp", pytest.param("gpt", marks=pytest.mark.slow),
                                  pytest.param("llama", marks=pytest.mark.slow)])
def test_coord_check_passes_for_mup_with_muon_and_lion(kind: str, optimizer: str,
                                                       options: dict[str, Any]) -> None:
    # Lion at Adam's coord-check LR (1e-2) is 3-10x above its usual LR (Chen et al., 2023):
    # on LLaMA a SwiGLU output then shrinks by slope -0.17 at step 5; at 1e-2 / 3 it passes.
    lr = 1e-2 / 3 if optimizer == "lion" else 1e-2
    result = run_coord_check(kind, "mup", [64, 128, 256, 512] if kind == "mlp" else WIDTHS,
                             steps=5, optimizer=optimizer, lr=lr, optimizer_options=options)
    assert result.verdict == "pass", [v.message for v in result.violations]


def test_cli_takes_muon_flags_and_refuses_them_for_other_optimizers(tmp_path, capsys) -> None:
    out = tmp_path / "describe.json"
    assert main(["describe", "--model", "mlp", "--width", "256", "--base-width", "64",
                 "--optimizer", "muon", "--muon-adjust", "match_rms_adamw",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert doc["optimizer_options"] == {"adjust_lr_fn": "match_rms_adamw"}
    assert rows["hidden.0.weight"]["update"] == "muon"
    assert rows["hidden.0.weight"]["lr_mult"] == pytest.approx(0.5)  # m = 4: / sqrt(m)
    assert rows["readout.weight"]["update"] == "adamw"
    assert "update" in capsys.readouterr().out  # the printed table has the column
    for argv in (["describe", "--model", "mlp", "--width", "256", "--optimizer", "adam",
                  "--muon-adjust", "match_rms_adamw"],
                 ["coord-check", "--model", "gpt", "--param", "completep", "--widths", "64,128",
                  "--optimizer", "muon"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--optimizer" in err or "--muon-adjust" in err, err
