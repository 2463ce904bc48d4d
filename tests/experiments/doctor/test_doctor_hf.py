"""The doctor on models users bring: transformers' LLaMA (`kind: hf` and a user's registered
build file) and torch's own blocks. Healthy µP models are called healthy; a plain nn.Linear
head, an nn.MultiheadAttention with fixed heads and a width-dependent constant are named; a
model/task mismatch exits 2 naming --task; and what `mucore.parametrize` changed is blamed on
mucore, never on the model's code (simulated by a parametrize that zeroes norm gains, the
failure of mucore's old norm-gain re-init on transformers' LlamaRMSNorm)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mucore.init as mucore_init
from experiments.cli import main
from experiments.doctor.diagnose import run_doctor
from experiments.models import HFConfig
from experiments.models.catalog import model_config
from experiments.tasks import TaskConfig

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
BYTES = TaskConfig(name="bytes", seq_len=16)
WIDTHS = [64, 128, 256]  # the CLI default: finite-width drift is small enough there
ONE_LAYER = HFConfig(config={"num_hidden_layers": 1})


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("hf_llama_user.py", "mha_fixed_heads.py"):
        (folder / name).write_text((FIXTURES / name).read_text())
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))
    return folder


def _checks(report) -> dict[str, object]:
    return {f.check: f for f in report.findings}


def test_the_hf_llama_is_healthy_under_mup():
    report = run_doctor(ONE_LAYER, "mup", WIDTHS, task=BYTES)
    checks = _checks(report)
    assert report.verdict == "healthy", [f for f in report.findings if f.status != "pass"]
    assert {"attention", "coord_check", "update_size", "init_kept", "dead"} <= set(checks)
    assert "kept the model's own init" in checks["init_kept"].message


def test_a_users_registered_transformers_llama_is_healthy_under_mup(model_dir):
    report = run_doctor(model_config("hf_llama_user"), "mup", WIDTHS, task=BYTES)
    assert report.verdict == "healthy", [f for f in report.findings if f.status != "pass"]


def test_the_faults_users_make_are_named(model_dir):
    """A plain nn.Linear head, a hand-written sqrt(width) constant, and nn.MultiheadAttention
    with a fixed head count under µP: each fails, named."""
    plain = _checks(run_doctor(model_config("hf_llama_user", {"readout": False}), "mup",
                               WIDTHS, task=BYTES))
    assert plain["readout"].status == "fail" and "net.lm_head" in plain["readout"].message
    assert "`net.lm_head` is not a readout" in plain["ablation"].message

    constant = _checks(run_doctor(model_config("hf_llama_user", {"constant": True}), "mup",
                                  WIDTHS, task=BYTES))
    assert constant["coord_check"].status == "fail"
    assert "the cause is in the model's own code" in constant["ablation"].message
    assert constant["init_kept"].status == "pass"  # mucore changed nothing it should not have

    mha = _checks(run_doctor(model_config("mha_fixed_heads"), "mup", WIDTHS, task=BYTES))
    assert mha["attention"].status == "fail", mha["attention"].message
    assert "MultiheadAttention" in mha["attention"].message + mha["attention"].fix


def test_a_model_task_mismatch_exits_2_naming_the_task_without_a_traceback(model_dir, tmp_path,
                                                                          capsys):
    out = tmp_path / "x.json"
    r = subprocess.run([sys.executable, "-m", "experiments", "doctor", "--model", "hf",
                        "--option", "architecture=LlamaForCausalLM", "--task", "digits",
                        "--param", "mup", "--widths", "32,64", "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "--task" in r.stderr and not out.exists()
    # A registered LM run on the registered models' default task (digits): float pixels
    # reach its embedding. Then a vocabulary smaller than the task's tokens.
    for argv, said in [([], "inputs float32 (2, 1, 8, 8)"),
                       (["--task", "bytes", "--option", "vocab=100"],
                        "'net.model.embed_tokens' (100 rows) is smaller")]:
        rc = main(["doctor", "--model", "hf_llama_user", *argv, "--widths", "32,64",
                   "--json", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and said in err and "--task" in err, err
    assert not out.exists()
    # The coordinate check refuses it the same way.
    assert main(["coord-check", "--model", "hf_llama_user", "--widths", "32,64", "--steps",
                 "1"]) == 2
    assert "cannot run on task 'digits'" in capsys.readouterr().err


def _zero_norm_gains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `mucore.parametrize` zero every norm gain after its re-init: the failure mucore's
    old vector re-init had on norm classes it did not know (transformers' LlamaRMSNorm)."""
    reinit = mucore_init._reinit

    def zeroing(model: torch.nn.Module, ctx: object, seed: int) -> None:
        reinit(model, ctx, seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 1 and name.endswith("norm.weight"):
                    p.zero_()

    monkeypatch.setattr(mucore_init, "_reinit", zeroing)


def test_what_parametrize_changed_is_blamed_on_mucore_not_the_model(monkeypatch):
    _zero_norm_gains(monkeypatch)
    report = run_doctor(ONE_LAYER, "mup", WIDTHS, task=BYTES)
    checks = _checks(report)
    assert report.verdict == "problems"
    kept = checks["init_kept"]
    assert kept.status == "fail" and "the fault is in mucore" in kept.message
    changed = {c["param"] for c in kept.evidence["changed"]}
    assert "net.model.norm.weight" in changed
    assert all(c["own"] == 1.0 and c["after"] == 0.0 for c in kept.evidence["changed"])
    dead = checks["dead"]
    assert dead.status == "fail" and "mucore.parametrize set them to zero" in dead.message
    text = json.dumps(report.to_dict())
    assert "the model's own code" not in text
    if "ablation" in checks:  # the dynamic checks failed too: the fix found is mucore's
        assert "fault is in mucore" in checks["ablation"].message
