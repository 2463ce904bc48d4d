"""An HP bundle of a Muon sweep: the export records the optimizer block (adjustment included)
and which optimizer trains each parameter, and applying it rebuilds mucore's Muon + AdamW with
the table's group LRs at the target width. Runs are finished with synthetic losses (no
training), as in test_bundle.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import mucore
from experiments.bundle.build import apply, export_bundle, target_model
from experiments.spec.sweep import SweepSpec
from experiments.store import Store
from experiments.sweep.submit import create_sweep

SPEC = {
    "name": "bundle-muon", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    "widths": [32, 64, 128], "base_width": 32, "parametrizations": ["mup"],
    "optimizer": {"name": "muon", "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.1},
    "lr_grid": {"log2_min": -9, "log2_max": -3, "step": 1}, "seeds": [0, 1], "steps": 20,
    "batch_size": 16, "log_every": 10, "device": "cpu",
}
OPTIMUM = -6.0


def _store(tmp_path: Path) -> tuple[Path, int]:
    db = tmp_path / "store.duckdb"
    store = Store(db)
    sweep_id = create_sweep(store, SweepSpec.model_validate(SPEC))
    rng = torch.Generator().manual_seed(0)
    for claim in store.claim(10_000, "test", sweep_id):
        x = math.log2(claim.payload["lr"])
        loss = 0.1 + 0.05 * (x - OPTIMUM) ** 2 + 0.002 * float(torch.randn((), generator=rng))
        assert store.finish(claim.run_id, claim.attempt,
                            {"state": "done", "final_train_loss": loss, "final_val_loss": loss,
                             "steps_done": 20})
    return db, sweep_id


def test_a_muon_bundle_records_its_groups_and_applies_them(tmp_path: Path) -> None:
    db, sid = _store(tmp_path)
    bundle = export_bundle(Store(db), sid, 512)
    assert bundle.optimizer["name"] == "muon"
    assert bundle.optimizer["adjust_lr_fn"] == "match_rms_adamw"
    table = {r.name: r for r in bundle.param_table}
    assert table["hidden.0.weight"].update == "muon"
    assert table["hidden.0.weight"].lr_mult == pytest.approx((512 / 32) ** -0.5)
    assert table["readout.weight"].update == "adamw" and table["readout.weight"].lr_mult == 1.0
    _, opt = apply(bundle, target_model(bundle), seed=0)
    assert isinstance(opt, mucore.MuonAdamW) and opt.adjust_lr_fn == "match_rms_adamw"
    for group in opt.param_groups:
        for name in group["param_names"]:
            assert group["lr"] == pytest.approx(table[name].lr, rel=1e-12)
            assert group["update"] == table[name].update
    # Coupled decay: every decayed group shrinks by lr * wd per step.
    shrink = {g["lr"] * g["weight_decay"] for g in opt.param_groups if g["weight_decay"]}
    assert all(s == pytest.approx(bundle.lr * 0.1) for s in shrink)
