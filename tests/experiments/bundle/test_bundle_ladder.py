"""Export and verify over depth: `export --target-width N --target-depth L`
writes a bundle that records the base and target depth and rebuilds init, branch multipliers
and optimizer groups at (N, L); `verify` trains at (N, L). A ladder's bundle without
--target-depth is for the base depth; --target-depth on a width-only sweep exits 2; off the base
depth, a depth verdict that is not confirmed needs --force (recorded).

The sweep's runs are finished with synthetic losses (no training); verify trains for real.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import mucore
from experiments.bundle.build import apply, read_bundle, target_model
from experiments.cli import main
from experiments.models import depth_model_factory
from experiments.spec.sweep import SweepSpec
from experiments.store import Store
from experiments.sweep.submit import create_sweep
from experiments.tasks import TaskConfig, task_info

SPEC: dict[str, Any] = {
    "name": "depth-bundle", "model": {"kind": "mlp", "depth": 2, "residual": True},
    # Four widths: fewer would leave the width verdict's drift interval too few degrees of
    # freedom to confirm on its estimate (`experiments.analysis.verdict`).
    "task": {"name": "digits"}, "widths": [32, 64, 128, 256], "base_width": 32,
    "depths": [2, 4, 8],
    "parametrizations": ["mup", "completep"], "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -11, "log2_max": -3, "step": 1}, "seeds": [0, 1], "steps": 4,
    "batch_size": 8, "log_every": 2, "device": "cpu",
}
OPT = -6.3


def make_store(tmp_path: Path, spec: dict[str, Any], completep_drift: float) -> tuple[Path, int]:
    """A store holding the sweep, each run finished on a bowl in log2 LR whose optimum moves
    by -0.8 (µP) or `completep_drift` per depth doubling, and not with width."""
    db = tmp_path / "store.duckdb"
    store = Store(db)
    sweep_id = create_sweep(store, SweepSpec.model_validate(spec))
    rng = torch.Generator().manual_seed(0)
    for claim in store.claim(10_000, "test", sweep_id):
        p = claim.payload
        doublings = math.log2(p["model"]["depth"] / 2)
        drift = completep_drift if p["parametrization"] == "completep" else -0.8
        x, opt = math.log2(p["lr"]), OPT + drift * doublings
        loss = 0.1 + 0.05 * (x - opt) ** 2 + 0.002 * float(torch.randn((), generator=rng))
        result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": 4})
    return db, sweep_id


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    return make_store(tmp_path_factory.mktemp("ladder"), SPEC, completep_drift=0.0)


def export(db: Path, sid: int, out: Path, *extra: str) -> int:
    return main(["export", str(sid), "--target-width", "128", "--out", str(out),
                 "--parametrization", "completep", "--db", str(db), *extra])


def test_a_depth_bundle_rebuilds_the_target_at_width_and_depth(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "bundle.json"
    assert export(db, sid, path, "--target-depth", "16") == 0
    bundle = read_bundle(path)
    assert (bundle.target_width, bundle.target_depth, bundle.base_depth) == (128, 16, 2)
    assert bundle.model["depth"] == 16 and bundle.base_shapes["depth"]["base_depth"] == 2
    assert bundle.log2_lr == pytest.approx(OPT, abs=0.15)
    assert bundle.evidence.depth is not None
    assert bundle.evidence.depth["verdict"] == "confirmed" and not bundle.evidence.forced
    model, opt = apply(bundle, target_model(bundle), seed=0)
    assert len(model.get_submodule("blocks")) == 15  # type: ignore[arg-type]  # residual MLP: depth - 1 blocks
    # The reference: the family at (128, 16) parametrized against shapes measured at (32, 2).
    info = task_info(TaskConfig(name="digits"))
    shapes = mucore.infer_base_shapes(depth_model_factory(bundle.model_config_obj(), info), 32,
                                      base_depth=2)
    ref = mucore.parametrize(target_model(bundle), shapes, "completep", mucore.HParams(), seed=0)
    assert ref.depth_mult == pytest.approx(15 / 1) and ref.branch_mult() == pytest.approx(1 / 15)
    rows = {r.name: r for r in mucore.describe(ref, "adam")}
    table = {r.name: r for r in bundle.param_table}
    for group in opt.param_groups:
        for name in group["param_names"]:
            assert group["lr"] == pytest.approx(bundle.lr * rows[name].lr_mult, rel=1e-12)
            assert table[name].lr == pytest.approx(group["lr"], rel=1e-12)
    assert table["blocks.3.fc.weight"].branch_mult == pytest.approx(1 / 15)
    branches = [m.forward_mult for m in model.modules() if isinstance(m, mucore.ResidualBranch)]
    assert branches and all(b == pytest.approx(1 / 15) for b in branches)


def test_without_target_depth_a_depth_bundle_is_for_the_base_depth(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "base.json"
    assert export(db, sid, path) == 0
    bundle = read_bundle(path)
    assert (bundle.target_depth, bundle.base_depth, bundle.model["depth"]) == (2, 2, 2)
    model, _ = apply(bundle, target_model(bundle), seed=0)
    assert all(m.forward_mult == 1.0 for m in model.modules()
               if isinstance(m, mucore.ResidualBranch))


def test_target_depth_on_a_width_only_sweep_exits_2_and_a_width_bundle_keeps_its_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = {k: v for k, v in SPEC.items() if k != "depths"}
    db, sid = make_store(tmp_path, plain, completep_drift=0.0)
    path = tmp_path / "b.json"
    assert export(db, sid, path, "--target-depth", "4") == 2
    assert "--target-depth 4 needs a sweep with a depth ladder" in capsys.readouterr().err
    assert not path.exists()
    assert export(db, sid, path) == 0
    doc = json.loads(path.read_text())
    assert "target_depth" not in doc and "base_depth" not in doc and "depth" not in doc["evidence"]


def test_a_drifting_completep_needs_force_off_the_base_depth(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = make_store(tmp_path, SPEC, completep_drift=-0.6)
    path = tmp_path / "b.json"
    assert export(db, sid, path, "--target-depth", "8") == 2
    err = capsys.readouterr().err
    assert "depth transfer verdict is not confirmed" in err and "CompleteP LR drift" in err
    assert export(db, sid, path) == 0  # the base depth needs no depth verdict
    assert not read_bundle(path).evidence.forced
    assert export(db, sid, path, "--target-depth", "8", "--force") == 0
    assert read_bundle(path).evidence.forced


def test_a_one_width_depth_ladder_exports_at_its_width_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One width cannot confirm width transfer, but exporting for that same width claims none:
    # the depth verdict alone decides. Another width still needs the width verdict.
    one_width = {**SPEC, "widths": [32]}
    db, sid = make_store(tmp_path, one_width, completep_drift=0.0)
    path = tmp_path / "b.json"
    argv = ["export", str(sid), "--out", str(path), "--parametrization", "completep",
            "--db", str(db), "--target-depth", "8"]
    assert main([*argv, "--target-width", "32"]) == 0
    bundle = read_bundle(path)
    assert (bundle.target_width, bundle.target_depth) == (32, 8)
    # One width has no drift to measure: the width verdict cannot tell (inconclusive).
    assert bundle.evidence.verdict == "inconclusive" and not bundle.evidence.forced
    assert bundle.log2_lr == pytest.approx(OPT, abs=0.15)
    path.unlink()
    assert main([*argv, "--target-width", "128"]) == 2
    assert "transfer verdict is inconclusive" in capsys.readouterr().err
    assert not path.exists()


def test_verify_trains_the_target_at_width_and_depth(
        tmp_path: Path, ladder: tuple[Path, int]) -> None:
    db, sid = ladder
    path = tmp_path / "bundle.json"
    assert export(db, sid, path, "--target-depth", "4") == 0
    out = tmp_path / "verify.json"
    assert main(["verify", str(path), "--bracket", "1", "--seeds", "0", "--steps", "3",
                 "--no-sp-baseline", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["target_width"] == 128 and doc["target_depth"] == 4
    assert [p["log2_lr"] for p in doc["points"]] == pytest.approx(
        [read_bundle(path).log2_lr + k for k in (-1, 0, 1)])
    assert all(p["loss"] is not None for p in doc["points"])


def test_analyze_reads_the_depth_section_at_the_width_asked_for(
        tmp_path: Path, ladder: tuple[Path, int], capsys: pytest.CaptureFixture[str]) -> None:
    db, sid = ladder
    out = tmp_path / "a.json"
    argv = ["analyze", str(sid), "--db", str(db), "--json", str(out)]
    assert main([*argv, "--depth-width", "64"]) == 0
    assert json.loads(out.read_text())["depth"]["width"] == 64
    assert main([*argv, "--depth-width", "48"]) == 2
    assert "--depth-width 48 is not a width of the sweep: use one of [32, 64, 128, 256]" in (
        capsys.readouterr().err)
