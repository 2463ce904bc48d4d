"""The runner with a real DuckDB file and real worker processes.

Acceptance (engine issue): concurrent workers + reader + second sweep without lock errors and
with exact row counts; kill -9 of a worker mid-run; kill -9 of the runner mid-sweep then
resume, each run done exactly once; diverged runs are data; cancel and retry.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from experiments.runner import run_sweep
from experiments.store import RunRow, Store
from experiments.store.store import wait_for

ROOT = Path(__file__).resolve().parents[3]
# Shared with the Ray tests, so they stay in tests/experiments/ (imported by dotted path).
JOBS = "tests.experiments.engine_jobs"


def rows(n: int, job: str = "count_job", **payload: object) -> list[RunRow]:
    return [
        RunRow(
            run_key=f"r{i}",
            width=64 * (1 + i % 2),
            parametrization="mup" if i % 2 else "sp",
            lr=2.0 ** -(i + 1),
            seed=0,
            hparams={"init_std": 1.0, "output_mult": 1.0},
            payload={"loss": 1.0 + i, **payload},
            steps_total=int(payload.get("points", 10)),  # type: ignore[call-overload]
            job_fn=f"{JOBS}:{job}",
        )
        for i in range(n)
    ]


def test_sweep_runs_to_completion_with_diverged_and_failed_runs(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    runs = rows(3, points=5) + rows(1, points=5, state="diverged")[:1] + rows(1, job="failing_job")
    for i, r in enumerate(runs):
        r.run_key = f"k{i}"
    sid = store.create_sweep("mix", {}, runs)
    summary = run_sweep(db, sid, workers=2)
    assert summary.counts == {"done": 3, "diverged": 1, "failed": 1}
    frame = store.runs_frame(sid).set_index("run_key")
    assert "boom" in frame.loc["k4", "error"]
    assert frame.loc["k0", "final_train_loss"] == 1.0
    # every reported metric of the finished runs is stored (5 points x 2 names each)
    m = store.metrics_frame(sid)
    assert len(m) == 4 * 5 * 2 + 1


def _reader_script(db: Path, seconds: float) -> str:
    return textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from experiments.store import Store
        s = Store({str(db)!r})
        n = 0
        end = time.monotonic() + {seconds}
        while time.monotonic() < end:
            s.list_sweeps(); s.metric_count()
            n += 1
        print(n)
        """
    )


def test_concurrent_runner_reader_and_second_sweep(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid1 = store.create_sweep("one", {}, rows(6, points=20, sleep_s=0.01))
    reader = subprocess.Popen(
        [sys.executable, "-c", _reader_script(db, 8.0)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    spec = tmp_path / "second.yaml"
    spec.write_text(
        "name: second\nmodel: {kind: mlp, depth: 1}\ntask: {name: synthetic}\nwidths: [16, 32]\n"
        "base_width: 16\nparametrizations: [mup]\noptimizer: {name: adam}\nlrs: [0.01]\n"
        "seeds: [0]\nsteps: 20\nbatch_size: 16\nlog_every: 5\n"
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "experiments", "sweep", "run", str(spec), "--db", str(db), "--workers", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    summary = run_sweep(db, sid1, workers=2)
    out, err = cli.communicate(timeout=300)
    r_out, r_err = reader.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert reader.returncode == 0, r_err
    assert "lock" not in (err + r_err).lower()
    assert int(r_out.strip()) > 5  # the reader really ran queries meanwhile
    assert summary.counts == {"done": 6}
    sid2 = int(out.strip().splitlines()[-1])
    assert store.list_sweeps(sid2)[0].counts == {"done": 2}
    # exact metric rows: 6 runs x 20 points x 2 names, plus the CLI sweep's train_loss rows
    m1 = store.metrics_frame(sid1)
    assert len(m1) == 6 * 20 * 2
    with duckdb.connect(str(db), read_only=True) as con:
        dup = con.execute(
            "SELECT count(*) FROM (SELECT run_id, attempt, step, name FROM metrics GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    assert dup == (0,)


def victim_row(tmp_path: Path) -> tuple[RunRow, Path]:
    """A run that writes its worker's pid, flushes 5 metric points, then works for a minute."""
    pid_file = tmp_path / "victim.pid"
    row = RunRow("victim", 64, "mup", 0.01, 0, payload={"pid_file": str(pid_file)},
                 steps_total=5, job_fn=f"{JOBS}:slow_job")
    return row, pid_file


def run_killing_the_victim(
    db: Path, sweep_id: int, pid_file: Path, workers: int, before_kill: Any = None
) -> tuple[Any, Any]:
    """Run the sweep while a thread kill -9s the victim's worker once its metrics are flushed.

    Returns the sweep summary and what `before_kill()` returned just before the kill.
    """
    import threading

    seen: dict[str, Any] = {}

    def killer() -> None:
        if wait_for(lambda: Path(str(pid_file) + ".flushed").exists(), 60):
            seen["before"] = before_kill() if before_kill else None
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

    t = threading.Thread(target=killer)
    t.start()
    summary = run_sweep(db, sweep_id, workers=workers)
    t.join()
    assert "before" in seen, "the victim never flushed its metrics"
    return summary, seen["before"]


def test_kill_worker_mid_run_fails_that_run_only(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    victim, pid_file = victim_row(tmp_path)
    others = rows(4, points=10, sleep_s=0.02)
    sid = store.create_sweep("kill-worker", {}, [victim, *others])
    summary, _ = run_killing_the_victim(db, sid, pid_file, workers=2)
    assert summary.counts == {"done": 4, "failed": 1}
    frame = store.runs_frame(sid).set_index("run_key")
    assert "worker died" in frame.loc["victim", "error"]
    victim_id = int(frame.loc["victim", "run_id"])
    m = store.metrics_frame(sid, run_ids=[victim_id])
    assert m["step"].tolist() == [1, 2, 3, 4, 5]  # metrics reported before the kill are kept


def test_kill_runner_mid_sweep_then_resume_runs_each_once(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("kill-runner", {}, rows(6, points=30, sleep_s=0.03))
    runner = subprocess.Popen(
        [sys.executable, "-m", "experiments", "sweep", "resume", str(sid), "--db", str(db)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    assert wait_for(lambda: store.list_sweeps(sid)[0].counts.get("done", 0) >= 1, 120)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner and its workers, like a crashed server
    runner.wait()
    before = store.runs_frame(sid)
    assert (before["state"] == "running").any() or (before["state"] == "queued").any()
    done_before = set(before.loc[before["state"] == "done", "run_key"])
    summary = run_sweep(db, sid, workers=2)
    assert summary.counts == {"done": 6}
    after = store.runs_frame(sid).set_index("run_key")
    # finished runs were not repeated; interrupted ones ran again as a new attempt
    assert all(after.loc[k, "attempts"] == 1 for k in done_before)
    m = store.metrics_frame(sid)
    assert len(m) == 6 * 30 * 2  # latest attempt of each run, each exactly once


def test_cancel_sweep_leaves_nothing_running_and_retry_requeues(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("cancel", {}, rows(4, points=400, sleep_s=0.02))
    import threading

    def cancel_soon() -> None:
        assert wait_for(lambda: store.list_sweeps(sid)[0].counts.get("running", 0) >= 1, 60)
        store.cancel_sweep(sid)

    t = threading.Thread(target=cancel_soon)
    t.start()
    summary = run_sweep(db, sid, workers=2)
    t.join()
    assert summary.counts == {"cancelled": 4}
    assert store.retry_failed(sid) == 4
    assert store.list_sweeps(sid)[0].counts == {"queued": 4}


@pytest.mark.parametrize("bad", ["not-a-path", "tests.experiments.engine_jobs:nope"])
def test_bad_job_function_fails_the_run_with_its_error(tmp_path: Path, bad: str) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    r = rows(1)[0]
    r.job_fn = bad
    sid = store.create_sweep("bad-job", {}, [r])
    assert run_sweep(db, sid, workers=1).counts == {"failed": 1}
    assert store.runs_frame(sid)["error"].iloc[0]


def test_run_waiting_behind_a_killed_run_is_requeued_not_failed(tmp_path: Path) -> None:
    # One worker holds two claims (PREFETCH): the victim training, the other waiting in its
    # inbox. Killing the worker fails the victim only; the waiting run never started, so it
    # goes back to the queue and finishes on the replacement worker.
    db = tmp_path / "s.duckdb"
    store = Store(db)
    victim, pid_file = victim_row(tmp_path)
    waiting = RunRow("waiting", 64, "sp", 0.01, 0, payload={"points": 3}, steps_total=3,
                     job_fn=f"{JOBS}:count_job")
    sid = store.create_sweep("prefetch", {}, [victim, waiting])
    summary, counts_at_kill = run_killing_the_victim(
        db, sid, pid_file, workers=1, before_kill=lambda: store.list_sweeps(sid)[0].counts
    )
    # Both runs were handed out before the kill: the waiting one was "running" too.
    assert counts_at_kill == {"running": 2}
    assert summary.counts == {"done": 1, "failed": 1}
    frame = store.runs_frame(sid).set_index("run_key")
    assert frame.loc["victim", "state"] == "failed" and "worker died" in frame.loc["victim", "error"]
    assert frame.loc["waiting", "state"] == "done" and int(frame.loc["waiting", "attempts"]) == 2
    m = store.metrics_frame(sid, run_ids=[int(frame.loc["waiting", "run_id"])])
    assert m[m["name"] == "train_loss"]["step"].tolist() == [1, 2, 3]  # once, not twice


def test_wait_ready_returns_once_every_worker_has_started() -> None:
    from experiments.runner import LocalExecutor

    ex = LocalExecutor(2)
    try:
        assert ex.wait_ready(timeout_s=120)
        assert ex.free_slots() == 4 and ex.busy() == 0  # two claims per worker (PREFETCH)
    finally:
        ex.shutdown()


def test_corrupt_chunk_dropped_into_a_running_sweep_is_quarantined(tmp_path: Path) -> None:
    # Chaos: an unreadable part-*.parquet appears in a live run's folder. Before, the next
    # ingest failed the whole batch and the runner died; now that one file is moved aside and
    # noted on its run, and the sweep finishes with every run done and every real row stored.
    import threading

    db = tmp_path / "s.duckdb"
    store = Store(db)
    sid = store.create_sweep("chaos-chunk", {}, rows(4, points=30, sleep_s=0.03))
    dropped: dict[str, Any] = {}

    def drop_a_bad_chunk() -> None:
        def a_run_is_writing() -> bool:
            live = store.runs_frame(sid).query("state == 'running'")
            for run_id in live["run_id"]:
                folder = store.run_dir(sid, int(run_id))
                if any(folder.glob("part-*.parquet")):
                    dropped["run_id"] = int(run_id)
                    return True
            return False

        if wait_for(a_run_is_writing, 120, interval_s=0.02):
            bad = store.run_dir(sid, dropped["run_id"]) / "part-1-900000.parquet"
            bad.write_bytes(b"PAR1" + os.urandom(200) + b"PAR1")
            dropped["path"] = bad

    t = threading.Thread(target=drop_a_bad_chunk)
    t.start()
    summary = run_sweep(db, sid, workers=2)
    t.join()
    assert "path" in dropped, "no run was seen writing its chunks"
    assert summary.counts == {"done": 4}
    (chunk,) = store.quarantined(sid)
    assert (chunk.run_id, chunk.path) == (dropped["run_id"], str(dropped["path"]))
    assert not dropped["path"].exists() and Path(str(chunk.moved_to)).exists()
    notes = store.runs_frame(sid).set_index("run_id")["note"]
    assert "part-1-900000.parquet unreadable, quarantined" in notes[dropped["run_id"]]
    assert notes.drop(dropped["run_id"]).isna().all()
    assert len(store.metrics_frame(sid)) == 4 * 30 * 2  # every real row, once
