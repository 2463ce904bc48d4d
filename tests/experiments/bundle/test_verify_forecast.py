"""The verify run checks the bundle's loss forecast: the target trained at the transferred LR
lands inside the forecast's interval, and a bundle whose LR is deliberately 4x off lands
`worse`. The ladder (digits MLP, µP, widths 16..128, two seeds, 100 steps) is trained
in-process; the target is width 256. The rule itself (`check_forecast`) is also tested on
numbers alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from experiments.analysis import analyze
from experiments.bundle.build import build_bundle, read_bundle, write_bundle
from experiments.bundle.forecast_check import check_forecast
from experiments.bundle.verify import verify_bundle
from experiments.cli import main
from experiments.spec.sweep import SweepSpec
from tests.experiments.bundle.test_verify import train_sweep

torch.set_num_threads(1)

SPEC = {
    "name": "verify-forecast", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    "widths": [16, 32, 64, 128], "base_width": 16, "parametrizations": ["mup"],
    "optimizer": {"name": "adam"}, "lr_grid": {"log2_min": -9, "log2_max": -3, "step": 1},
    "hparams": {"init_std": 1.0, "output_mult": 1.0}, "seeds": [0, 1], "steps": 100,
    "batch_size": 32, "log_every": 10, "device": "cpu",
}
ROW = {"width": 256, "loss": 0.10, "ci_low": 0.08, "ci_high": 0.12}


def test_check_forecast_rule() -> None:
    inside = check_forecast(ROW, [0.11, 0.13], 0.12)
    assert inside is not None and inside.status == "inside" and inside.excess == 0.0
    # Above the interval but within the slack (2 standard errors of the measured mean).
    near = check_forecast(ROW, [0.12, 0.14], 0.13)
    assert near is not None and near.status == "inside" and near.excess == pytest.approx(0.01)
    worse = check_forecast(ROW, [0.20, 0.201], 0.2005)
    assert worse is not None and worse.status == "worse"
    assert worse.excess == pytest.approx(0.0805) and worse.excess_noise is not None
    assert worse.excess_noise > 50  # the seeds agree: far outside in seed noise
    better = check_forecast(ROW, [0.05], 0.05)
    assert better is not None and better.status == "better" and better.excess_noise is None
    assert better.excess == pytest.approx(-0.03)
    diverged = check_forecast(ROW, [None, 0.1], None)
    assert diverged is not None and diverged.status == "worse" and diverged.measured is None
    assert check_forecast({**ROW, "ci_low": None}, [0.1], 0.1) is None


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = SweepSpec.model_validate(SPEC)
    report = analyze(train_sweep(spec), loss="auto", target_width=256)
    assert report.loss == "final_val_loss"  # the digits task has a validation split
    assert report.forecast["mup"].refused is None, report.forecast["mup"].refused
    bundle = build_bundle(spec.model_dump(mode="json"), report, 256, force=True)
    return write_bundle(bundle, tmp_path_factory.mktemp("fc") / "bundle.json")


def test_bundle_records_its_forecast_and_verify_lands_inside(bundle_path: Path) -> None:
    bundle = read_bundle(bundle_path)  # the hash covers the recorded forecast
    row = bundle.evidence.forecast_at_target("mup", 256)
    assert row is not None and row["ci_low"] <= row["loss"] <= row["ci_high"]
    out = bundle_path.parent / "verify.json"
    assert main(["verify", str(bundle_path), "--bracket", "1", "--no-sp-baseline",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())["forecast"]
    assert {"loss", "ci_low", "ci_high", "measured", "status", "excess",
            "excess_noise"} <= set(doc)
    assert doc["loss"] == pytest.approx(row["loss"])
    assert doc["status"] == "inside", doc


def test_a_4x_wrong_lr_verifies_worse(bundle_path: Path) -> None:
    bundle = read_bundle(bundle_path)
    wrong = bundle.model_copy(update={"log2_lr": bundle.log2_lr + 2, "lr": bundle.lr * 4})
    report = verify_bundle(wrong.with_hash(), 1, sp_baseline=False)
    check = report.forecast
    assert check is not None and check.status == "worse", check
    assert check.measured is not None and check.excess is not None and check.excess > 0
    assert "worse than forecast" in report.summary()


def test_a_bundle_without_a_forecast_verifies_with_a_warning(bundle_path: Path) -> None:
    bundle = read_bundle(bundle_path)
    old = bundle.model_copy(update={"evidence": bundle.evidence.model_copy(
        update={"forecast": None})}).with_hash()
    assert "forecast" not in old.body()["evidence"]  # old bundles' bytes are unchanged
    report = verify_bundle(old, 1, steps=5, sp_baseline=False)
    assert report.forecast is None
    assert any("no loss forecast" in w for w in report.warnings)
