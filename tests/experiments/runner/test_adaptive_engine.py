"""The adaptive search in the real engine: the runner queues follow-up runs as results arrive.

Acceptance: kill -9 of the runner mid-way through an adaptive sweep, then `sweep
resume`: it finishes with exactly the runs an uninterrupted sweep makes (same seeds, LRs).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.spec.sweep import load_spec
from experiments.store import Store
from experiments.store.store import wait_for
from experiments.sweep.adaptive import plan_runs
from experiments.sweep.planning import SweepPlanner, outcomes_of, search_progress
from experiments.sweep.submit import create_sweep

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def write_spec(tmp_path: Path) -> Path:
    data: dict[str, Any] = {
        "name": "adaptive-tiny", "model": {"kind": "mlp", "depth": 2},
        "task": {"name": "synthetic"}, "widths": [16, 32, 64], "base_width": 16,
        "parametrizations": ["mup"], "lr_grid": {"log2_min": -12, "log2_max": 0, "step": 1.5},
        "seeds": [0, 1], "steps": 20, "batch_size": 16, "log_every": 5, "device": "cpu",
        "search": {"kind": "adaptive"},
    }
    path = tmp_path / "adaptive.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "experiments", "sweep", *args], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


def run_set(store: Store, sid: int) -> set[tuple[str, int, float, int, str]]:
    frame = store.runs_frame(sid)
    return {(str(k), int(w), float(lr), int(s), str(st)) for k, w, lr, s, st in
            zip(frame["run_key"], frame["width"], frame["lr"], frame["seed"], frame["state"],
                strict=True)}


@pytest.mark.slow  # three sweeps in subprocesses: ~16 s alone, minutes on a busy machine
def test_kill_runner_mid_adaptive_sweep_then_resume_makes_the_same_runs(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path)
    ref_db, db = tmp_path / "ref.duckdb", tmp_path / "killed.duckdb"
    ref = sweep("run", str(spec_path), "--db", str(ref_db), "--workers", "2")
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    assert "sweep 1 'adaptive-tiny': 30 to 54 runs (adaptive search" in err
    ref_store = Store(ref_db)
    expected = run_set(ref_store, int(out.split()[-1]))

    runner = sweep("run", str(spec_path), "--db", str(db), "--workers", "2",
                   start_new_session=True)
    store = Store(db)
    # Kill as soon as a worker starts on width 32 (runs 19+: width 16 holds runs 1-18), seen
    # through the run folders, which a poll reads without waiting on the store's lock: width
    # 32 is then in progress and width 64 cannot be planned yet.
    chunks = db.parent / f"{db.name}.d" / "chunks" / "1"
    assert wait_for(lambda: chunks.is_dir() and any(
        int(p.name) > 18 for p in chunks.iterdir() if p.name.isdigit()), 120, 0.005)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its workers
    runner.wait()
    killed = store.runs_frame(1)
    assert 64 not in set(killed["width"])
    assert killed["state"].isin(["running", "queued"]).any()
    resume = sweep("resume", "1", "--db", str(db), "--workers", "2")
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    assert run_set(store, 1) == expected
    assert {st for *_, st in expected} <= {"done", "diverged"}
    # The widths past the first are searched, not gridded: fewer runs than the grid.
    progress = search_progress(store, 1)
    assert progress is not None and progress.complete
    assert progress.runs == len(expected) < progress.full_grid == 3 * 9 * 2


def test_replanning_the_same_results_adds_nothing(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    store = Store(tmp_path / "s.duckdb")
    job = "experiments.train:run_job_for_test"  # any job name: nothing here executes it
    sid = create_sweep(store, spec, job_fn=job)
    first = store.runs_frame(sid)
    assert set(first["width"]) == {16} and len(first) == 9 * 2
    planner = SweepPlanner(store)
    assert planner.top_up(sid) == 0  # nothing ended yet: width 32 waits
    # Finish width 16 with a curve whose best point is 2^-6: width 32 gets 2^-7.5..2^-4.5.
    for (run_id, key, lr) in zip(first["run_id"], first["run_key"], first["lr"], strict=True):
        claim = store.claim(1, "test-owner", sid)[0]
        assert claim.run_id == run_id, key
        store.finish(claim.run_id, claim.attempt,
                     {"state": "done", "final_train_loss": 1 + (math.log2(lr) + 6) ** 2})
    assert planner.top_up(sid) == 3 * 2
    assert planner.top_up(sid) == 0 and SweepPlanner(store).top_up(sid) == 0
    # The added runs execute the job the sweep was created with, not a default one.
    added_claims = store.claim(100, "test-owner", sid)
    assert len(added_claims) == 3 * 2 and {c.job_fn for c in added_claims} == {job}
    added = store.runs_frame(sid).query("width == 32")
    assert sorted(set(added["log2_lr"].round(6))) == [-7.5, -6.0, -4.5]
    assert plan_runs(spec, outcomes_of(store, sid)).add == []


def test_sweep_status_shows_planned_vs_done(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.cli import main

    spec = load_spec(write_spec(tmp_path))
    db = tmp_path / "s.duckdb"
    sid = create_sweep(Store(db), spec)
    assert main(["sweep", "status", str(sid), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    # 18 runs of width 16 stored; widths 32 and 64 need a bracket of 3 x 2 seeds each, at least.
    assert (f"sweep {sid} adaptive: 18 runs so far (0 ended), 12 planned next at least / "
            "upper bound 54 (the full grid)") in out
    assert main(["sweep", "status", "--json", "--db", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["adaptive"]["runs"] == 18 and data["adaptive"]["complete"] is False
    assert data["counts"] == {"queued": 18}  # the summary's own fields are unchanged


def test_cancelled_sweep_plans_nothing_until_retried(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    store = Store(tmp_path / "s.duckdb")
    sid = create_sweep(store, spec)
    for claim in store.claim(100, "test-owner", sid)[:10]:
        store.finish(claim.run_id, claim.attempt, {"state": "done", "final_train_loss": 1.0})
    store.cancel_sweep(sid)  # the other 8 runs of width 16 end cancelled
    planner = SweepPlanner(store)
    assert planner.top_up(sid) == 0
    assert set(store.runs_frame(sid)["width"]) == {16}
    store.retry_failed(sid)
    assert planner.top_up(sid) == 0  # re-queued, not ended: width 32 still waits for them
