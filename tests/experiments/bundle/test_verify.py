"""Verification of a bundle by training: the transferred LR at a target 4x wider than the
ladder's top is within one grid step of that width's own optimum (TP5, Section 7).

The sweep is trained in-process (no store, no worker processes) on the digits MLP: ladder
32..128, a short LR grid, one seed, short runs; the target is width 512.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments.analysis import analyze
from experiments.bundle import verify as verify_module
from experiments.bundle.build import HPBundle, build_bundle, write_bundle
from experiments.bundle.verify import verify_bundle
from experiments.cli import main
from experiments.errors import UserError
from experiments.spec.run import RunConfig, RunResult
from experiments.spec.sweep import SweepSpec
from experiments.train import NullReporter, train_run
from mucore.bundle import content_hash

torch.set_num_threads(1)

SPEC = {
    "name": "verify-test",
    "model": {"kind": "mlp", "depth": 2},
    "task": {"name": "digits"},
    "widths": [32, 64, 128],
    "base_width": 32,
    "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -10, "log2_max": -3, "step": 1},
    "hparams": {"init_std": 1.0, "output_mult": 1.0},
    "seeds": [0],
    "steps": 100,
    "batch_size": 32,
    "log_every": 10,
    "device": "cpu",
}


def train_sweep(spec: SweepSpec) -> pd.DataFrame:
    """Every run of the spec, trained here; a frame shaped like Store.runs_frame."""
    rows = []
    for run in spec.expand():
        result = train_run(run, NullReporter())
        rows.append({"width": run.width, "parametrization": run.parametrization, "lr": run.lr,
                     "log2_lr": math.log2(run.lr), "seed": run.seed,
                     "init_std": run.hparams.init_std, "output_mult": run.hparams.output_mult,
                     "state": result.state, "final_train_loss": result.final_train_loss,
                     "final_val_loss": result.final_val_loss})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_transferred_lr_is_within_one_step_at_4x_width(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate(SPEC)
    runs = train_sweep(spec)
    report = analyze(runs, target_width=512)
    bundle = build_bundle(spec.model_dump(mode="json"), report, 512, force=True)
    path = write_bundle(bundle, tmp_path / "bundle.json")
    out = tmp_path / "verify.json"
    db = tmp_path / "store.duckdb"
    assert main(["verify", str(path), "--bracket", "2", "--json", str(out), "--db", str(db)]) == 0
    doc = json.loads(out.read_text())
    from experiments.store import Store

    [recorded] = Store(db).list_verifications()  # kept in the store, beside the sweep
    assert recorded.result == doc and recorded.bundle_hash == bundle.content_hash
    assert {"target_width", "transferred_log2_lr", "opt_log2_lr", "within_one_step",
            "loss_gap"} <= set(doc)
    assert doc["target_width"] == 512
    assert doc["transferred_log2_lr"] == pytest.approx(bundle.log2_lr)
    assert doc["within_one_step"] is True, doc
    assert abs(doc["transferred_log2_lr"] - doc["opt_log2_lr"]) <= 1.0
    assert 0.0 <= doc["loss_gap"] < 0.1
    assert len(doc["points"]) == 5
    # SP at its extrapolated LR is the baseline; it is trained and reported.
    assert doc["sp_baseline"]["parametrization"] == "sp"
    assert doc["sp_baseline"]["log2_lr"] < doc["transferred_log2_lr"]


def test_verify_refuses_a_zero_bracket(tmp_path: Path) -> None:
    from experiments.analysis import analyze as run_analysis
    from tests.experiments.analysis.test_analysis_report import surface

    runs = surface({"mup": {32: -6.0, 64: -6.0, 128: -6.0}})
    bundle = build_bundle(SweepSpec.model_validate(SPEC).model_dump(mode="json"),
                          run_analysis(runs, target_width=512), 512)
    with pytest.raises(UserError, match="--bracket must be >= 1"):
        verify_bundle(bundle, 0)


def test_verify_small_bracket_is_deterministic(tmp_path: Path) -> None:
    """Two tiny verifications (bracket 1, few steps) give identical reports."""
    from tests.experiments.analysis.test_analysis_report import surface

    runs = surface({"mup": {32: -6.0, 64: -6.0, 128: -6.0}, "sp": {32: -6.0, 64: -7.0,
                                                                   128: -8.0}})
    bundle = build_bundle(SweepSpec.model_validate(SPEC).model_dump(mode="json"),
                          analyze(runs, target_width=256), 256)
    a = verify_bundle(bundle, 1, steps=10, device="cpu")
    b = verify_bundle(bundle, 1, steps=10, device="cpu")
    strip = {"wall_s"}
    assert a.model_dump(exclude=strip) == b.model_dump(exclude=strip)
    assert [p.offset_steps for p in a.points] == [-1, 0, 1]
    assert a.sp_baseline is not None
    assert a.sp_baseline.log2_lr == pytest.approx(-6.0 - 1.0 * 3, abs=0.2)  # SP line at 256
    assert json.loads(json.dumps(a.to_contract_json(), allow_nan=False))["target_width"] == 256


def test_sp_baseline_trains_at_the_sp_optima_of_the_swept_knobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each point trains with the bundle's knobs; the SP baseline with SP's own predictions."""
    from tests.experiments.bundle.test_bundle import knob_sweep_runs

    runs = knob_sweep_runs({"mup": {"lr": -6.0, "input_mult": 1.3},
                            "sp": {"lr": -7.0, "input_mult": -0.6}})
    bundle = build_bundle(SweepSpec.model_validate(SPEC).model_dump(mode="json"),
                          analyze(runs, target_width=256), 256, force=True)
    trained: list[RunConfig] = []

    def fake_train_run(run: RunConfig, reporter: object) -> RunResult:
        trained.append(run)
        loss = 0.1 + 0.05 * (math.log2(run.lr) + 6.0) ** 2
        return RunResult(state="done", final_train_loss=loss, final_val_loss=loss,
                         steps_done=run.steps, wall_s=0.0, samples_per_s=1.0, device="cpu",
                         peak_mem_bytes=None)

    monkeypatch.setattr(verify_module, "train_run", fake_train_run)
    report = verify_bundle(bundle, 1, steps=1, device="cpu")
    *bracket, sp = trained
    assert [r.parametrization for r in bracket] == ["mup"] * 3 and sp.parametrization == "sp"
    assert all(r.hparams.input_mult == pytest.approx(2.0**1.3) for r in bracket)
    assert sp.hparams.input_mult == pytest.approx(2.0**-0.6)
    assert math.log2(sp.lr) == pytest.approx(-7.0)
    assert report.within_one_step and report.loss_gap == pytest.approx(0.0)
    assert report.sp_gap == pytest.approx(0.05)


# --- A bundle is input: checked before anything is built ---------------------------------------


def _surface_bundle(target_width: int = 256) -> HPBundle:
    from tests.experiments.analysis.test_analysis_report import surface

    runs = surface({"mup": {32: -6.0, 64: -6.0, 128: -6.0}, "sp": {32: -6.0, 64: -7.0,
                                                                   128: -8.0}})
    return build_bundle(SweepSpec.model_validate(SPEC).model_dump(mode="json"),
                        analyze(runs, target_width=target_width), target_width)


def _rehashed(bundle: HPBundle, path: Path, **changes: object) -> Path:
    """The bundle with `changes`, hashed again (what a careless or hostile editor can do)."""
    body = {**bundle.body(), **changes}
    body["content_hash"] = content_hash(body)
    path.write_text(json.dumps(body))
    return path


def test_verify_names_an_invalid_model_block_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bundle = _surface_bundle()
    bad = _rehashed(bundle, tmp_path / "bad.json", model={"kind": "custom", "name": "../x y"})
    for argv in (["verify", str(bad), "--steps", "1"], ["bundle", "show", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "model.name: String should match pattern" in err and "re-export" in err
        assert "Traceback" not in err
    wrong = _rehashed(bundle, tmp_path / "wrong.json", hparams={"init_std": -1.0})
    assert main(["verify", str(wrong), "--steps", "1"]) == 2
    assert "hparams.init_std" in capsys.readouterr().err
    seeds = _rehashed(bundle, tmp_path / "seeds.json", spec={**bundle.spec, "seeds": "abc"})
    assert main(["verify", str(seeds), "--steps", "1"]) == 2
    assert "spec.seeds is 'abc', not a list of integers >= 0" in capsys.readouterr().err


def test_verify_refuses_a_target_too_large_before_building_it(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _surface_bundle()
    trained: list[RunConfig] = []
    monkeypatch.setattr(verify_module, "train_run", lambda run, rep: trained.append(run))
    huge = _rehashed(bundle, tmp_path / "huge.json", target_width=1e9)
    assert main(["verify", str(huge), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "target_width 1,000,000,000 needs an estimated" in err and "GiB" in err
    assert "export --target-width N" in err and not trained
    # A width torch cannot even count is refused the same way.
    assert main(["verify", str(_rehashed(bundle, tmp_path / "x.json", target_width=10**12)),
                 "--device", "cpu"]) == 2
    assert "target_width 1,000,000,000,000" in capsys.readouterr().err and not trained
    # The healthy target is sized, not refused: a few MiB for a 256-wide digits MLP.
    need = verify_module.check_target_memory(bundle, "cpu", 32)
    assert 2**20 < need < 2**27


def test_a_diverged_transferred_lr_is_never_within_one_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = _surface_bundle()

    def fake_train_run(run: RunConfig, reporter: object) -> RunResult:
        # Diverges from the transferred LR up; the best point is one step below it.
        x = math.log2(run.lr)
        if x >= bundle.log2_lr - 1e-9:
            return RunResult(state="diverged", final_train_loss=None, final_val_loss=None,
                             steps_done=1, wall_s=0.0, samples_per_s=1.0, device="cpu",
                             peak_mem_bytes=None)
        loss = 0.1 + 0.05 * (x - bundle.log2_lr + 0.8) ** 2
        return RunResult(state="done", final_train_loss=loss, final_val_loss=loss,
                         steps_done=run.steps, wall_s=0.0, samples_per_s=1.0, device="cpu",
                         peak_mem_bytes=None)

    monkeypatch.setattr(verify_module, "train_run", fake_train_run)
    report = verify_bundle(bundle, 2, steps=1, device="cpu", sp_baseline=False)
    assert report.transferred_loss is None and report.opt_log2_lr is not None
    assert abs(report.opt_log2_lr - bundle.log2_lr) <= report.step  # near, yet diverged
    assert report.within_one_step is False
    assert "within one grid step: False (the transferred LR diverged)" in report.summary()
    assert "the transferred LR diverged at the target width" in report.warnings
