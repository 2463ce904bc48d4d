"""A verification's progress file while it trains, and its cost before it is launched."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from experiments.analysis import analyze
from experiments.bundle.build import build_bundle, write_bundle
from experiments.bundle.progress import ProgressFile, read_progress
from experiments.bundle.verify_cost import estimate_verify
from experiments.cli import main
from experiments.spec.sweep import SweepSpec
from tests.experiments.bundle.test_verify import SPEC

torch.set_num_threads(1)


def surface_bundle(target_width: int = 256):
    from tests.experiments.analysis.test_analysis_report import surface

    runs = surface({"mup": {32: -6.0, 64: -6.0, 128: -6.0}, "sp": {32: -6.0, 64: -7.0,
                                                                   128: -8.0}})
    return build_bundle(SweepSpec.model_validate(SPEC).model_dump(mode="json"),
                        analyze(runs, target_width=target_width), target_width)


def test_progress_file_counts_runs_steps_and_eta(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    track = ProgressFile(path, runs_total=2, steps=10, interval_s=0.0)
    assert read_progress(path).fraction == 0.0 and read_progress(path).eta_s is None
    reporter = track.reporter("µP 2^-6 seed 0")
    reporter.metrics(5, {"train_loss": 1.5})
    reporter.progress(5, 10)
    snap = read_progress(path)
    assert (snap.runs_done, snap.step, snap.loss, snap.current) == (0, 5, 1.5, "µP 2^-6 seed 0")
    assert snap.fraction == pytest.approx(5 / 20)
    # 5 of 20 steps took elapsed_s: 15 more take three times as long.
    assert snap.eta_s == pytest.approx(3 * snap.elapsed_s, rel=1e-6)
    track.run_done()
    snap = read_progress(path)
    assert snap.runs_done == 1 and snap.step == 0 and snap.fraction == pytest.approx(0.5)
    assert read_progress(tmp_path / "missing.json") is None
    (tmp_path / "torn.json").write_text('{"runs_done": 1')
    assert read_progress(tmp_path / "torn.json") is None


def test_verify_cli_writes_progress_to_the_end(tmp_path: Path) -> None:
    """The real verification (bracket 1, SP baseline, 3 steps): its progress file ends with
    every run counted, and as many runs as points x seeds."""
    bundle = surface_bundle()
    path = write_bundle(bundle, tmp_path / "bundle.json")
    progress, out = tmp_path / "progress.json", tmp_path / "verify.json"
    assert main(["verify", str(path), "--bracket", "1", "--steps", "3", "--device", "cpu",
                 "--progress", str(progress), "--json", str(out)]) == 0
    snap = read_progress(progress)
    report = json.loads(out.read_text())
    assert report["sp_baseline"] is not None
    assert snap.runs_total == (3 + 1) * len(SPEC["seeds"]) and snap.runs_done == snap.runs_total
    assert snap.fraction == 1.0 and snap.eta_s == 0.0 and snap.steps == 3
    assert snap.current.startswith("SP 2^")  # the baseline trains last


def test_verify_estimate_counts_the_runs_and_scales_by_the_sweeps_pace() -> None:
    bundle = surface_bundle(512)
    rough = estimate_verify(bundle, bracket=2)
    assert (rough.points, rough.seeds, rough.runs, rough.steps) == (6, 1, 6, SPEC["steps"])
    assert rough.baseline
    assert not rough.calibrated and rough.est_compute_s > 0 and rough.peak_memory_bytes > 0
    no_sp = estimate_verify(bundle, bracket=1, sp_baseline=False)
    assert no_sp.runs == 3 and no_sp.est_compute_s == pytest.approx(rough.est_compute_s / 2)
    # The sweep's widest runs took 10 s each: the estimate follows that pace.
    runs = pd.DataFrame({"state": ["done", "done", "done"], "width": [32, 128, 128],
                         "wall_s": [1.0, 10.0, 10.0]})
    measured = estimate_verify(bundle, bracket=2, runs=runs)
    assert measured.calibrated
    from experiments.bundle.verify_cost import _plan
    from experiments.spec.estimate import estimate

    per_run_at_128 = estimate(_plan(bundle, 128, 1)).est_compute_s
    assert measured.est_compute_s == pytest.approx(rough.est_compute_s * 10.0 / per_run_at_128)
    assert math.isfinite(measured.est_compute_s)
