"""The Ray executor on a real local Ray instance (one per test session, 2 CPUs).

A run killed mid-run (kill -9 of the Ray worker running it) must come back as "lost" (the
runner's crash policy then re-queues or fails it); a cancelled run must stop at once and come
back "cancelled"; the others must finish.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.errors import UserError
from experiments.runner import ray_executor
from experiments.runner.ray_executor import RayExecutor, RayOutcome, run_resources

ENTRY = "tests.experiments.runner.conftest_ray:echo_job"


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One real local Ray instance for the whole session (start-up costs seconds)."""
    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"
    started = ray_executor.connect(
        "local", num_cpus=2, temp_dir=tmp_path_factory.mktemp("ray", numbered=True)
    )
    assert started
    yield
    ray.shutdown()


def _wait_for(
    path: Path, executor: RayExecutor, seen: list[RayOutcome], limit_s: float = 60
) -> int:
    deadline = time.monotonic() + limit_s
    while not path.exists():
        assert time.monotonic() < deadline, f"job never wrote {path}; outcomes so far: {seen}"
        seen += executor.poll(0.1)
    return int(path.read_text())


def _drain(
    executor: RayExecutor, seen: list[RayOutcome], n: int, limit_s: float = 60
) -> dict[str, RayOutcome]:
    deadline = time.monotonic() + limit_s
    while len(seen) < n:
        assert time.monotonic() < deadline, f"only {len(seen)} of {n} jobs ended: {seen}"
        seen += executor.poll(0.2)
    return {o.job_id: o for o in seen}


def test_missing_ray_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(UserError, match=r"pip install -r requirements-ray.txt"):
        ray_executor.import_ray()
    with pytest.raises(UserError, match=r"requirements-ray.txt"):
        RayExecutor(ENTRY).start()


def test_run_resources_ask_for_gpu_share_only_when_useful() -> None:
    assert run_resources("cpu", 0.25, cluster_gpus=8) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert run_resources("auto", 0.25, cluster_gpus=8) == {"num_cpus": 1.0, "num_gpus": 0.25}
    assert run_resources("auto", 1.0, cluster_gpus=0) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert run_resources("cuda", 1.0, cluster_gpus=1)["num_gpus"] == 1.0
    with pytest.raises(UserError, match="gpu_fraction"):
        RayExecutor(ENTRY, gpu_fraction=0.0)


@pytest.mark.ray
def test_killed_worker_is_lost_and_others_finish(ray_session: None, tmp_path: Path) -> None:
    executor = RayExecutor(ENTRY, address="auto")
    executor.start()
    assert executor.max_in_flight == 4  # 2 CPUs, one queued behind each
    seen: list[RayOutcome] = []
    pidfile = tmp_path / "victim.pid"
    executor.submit("victim", {"x": 0, "sleep_s": 60, "pidfile": str(pidfile)}, device="cpu")
    executor.submit("ok-1", {"x": 1}, device="cpu")
    pid = _wait_for(pidfile, executor, seen)
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    executor.submit("ok-2", {"x": 2}, device="cpu")
    outcomes = _drain(executor, seen, 3)
    assert outcomes["victim"].kind == "lost", outcomes["victim"]
    assert "WorkerCrashedError" in (outcomes["victim"].error or "")
    for job_id, x in (("ok-1", 1), ("ok-2", 2)):
        assert outcomes[job_id].kind == "finished", outcomes[job_id]
        assert outcomes[job_id].value["x"] == x
    executor.shutdown()


@pytest.mark.ray
def test_cancel_kills_running_task_at_once(ray_session: None, tmp_path: Path) -> None:
    executor = RayExecutor(ENTRY, address="auto")
    seen: list[RayOutcome] = []
    pidfile = tmp_path / "long.pid"
    executor.submit("long", {"x": 0, "sleep_s": 60, "pidfile": str(pidfile)}, device="cpu")
    executor.submit("short", {"x": 5}, device="cpu")
    pid = _wait_for(pidfile, executor, seen)
    t0 = time.monotonic()
    executor.cancel("long")
    outcomes = _drain(executor, seen, 2)
    assert time.monotonic() - t0 < 10, "a cancelled task must stop at once, not finish its sleep"
    assert outcomes["long"].kind == "cancelled"
    assert outcomes["short"].kind == "finished" and outcomes["short"].value["x"] == 5
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the cancelled task's process must be gone"
    executor.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a killed child of the raylet may linger as a zombie until reaped
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:  # gone between the two checks
        return False


@pytest.mark.ray
def test_shutdown_cancels_what_is_in_flight(ray_session: None, tmp_path: Path) -> None:
    executor = RayExecutor(ENTRY, address="auto")
    seen: list[RayOutcome] = []
    pidfile = tmp_path / "left.pid"
    executor.submit("left", {"x": 0, "sleep_s": 60, "pidfile": str(pidfile)}, device="cpu")
    pid = _wait_for(pidfile, executor, seen)
    t0 = time.monotonic()
    executor.shutdown()
    assert time.monotonic() - t0 < 15
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


@pytest.mark.ray
def test_ray_and_in_process_training_give_identical_losses(ray_session: None) -> None:
    """Fixed seeds on CPU: the same tiny sweep trained in Ray workers and in this process
    stores identical final losses (the executor ships the payload untouched)."""
    from conftest_ray import train_job

    from experiments.spec.sweep import SweepSpec

    spec = SweepSpec.model_validate(
        {
            "name": "ray-parity",
            "model": {"kind": "mlp", "depth": 2},
            "task": {"name": "digits"},
            "widths": [32, 64],
            "base_width": 32,
            "parametrizations": ["mup"],
            "optimizer": {"name": "adam"},
            "lr_grid": {"log2_min": -8, "log2_max": -6, "step": 2},
            "seeds": [0],
            "steps": 8,
            "batch_size": 32,
            "log_every": 4,
            "device": "cpu",
        }
    )
    payloads = [run.model_dump(mode="json") for run in spec.expand()]
    assert len(payloads) == 4
    executor = RayExecutor(ENTRY.replace("echo_job", "train_job"), address="auto")
    for i, payload in enumerate(payloads):
        executor.submit(str(i), {"payload": payload}, device=payload["device"])
    outcomes = _drain(executor, [], len(payloads), limit_s=120)
    executor.shutdown()
    for i, payload in enumerate(payloads):
        via_ray = outcomes[str(i)]
        assert via_ray.kind == "finished", via_ray
        here = train_job({"payload": payload})
        assert via_ray.value["state"] == here["state"] == "done"
        assert via_ray.value["final_train_loss"] == here["final_train_loss"]
        assert via_ray.value["final_val_loss"] == here["final_val_loss"]


# ---- through the runner and the store (the path the CLI and dashboard use) ----------------

TINY_SPEC = (
    "name: ray-tiny\nmodel: {kind: mlp, depth: 1}\ntask: {name: synthetic}\nwidths: [16, 32]\n"
    "base_width: 16\nparametrizations: [sp, mup]\noptimizer: {name: adam}\nlrs: [0.003, 0.03]\n"
    "seeds: [0]\nsteps: 20\nbatch_size: 16\nlog_every: 5\n"
)


def _tiny_sweep(db: Path) -> int:
    import yaml

    from experiments.spec.sweep import parse_spec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    return create_sweep(Store(db), parse_spec(yaml.safe_load(TINY_SPEC)))


@pytest.mark.ray
def test_local_and_ray_executors_store_identical_results(ray_session: None, tmp_path: Path) -> None:
    from experiments.runner import run_sweep
    from experiments.store import Store

    results = {}
    for kind in ("local", "ray"):
        db = tmp_path / f"{kind}.duckdb"
        sid = _tiny_sweep(db)
        summary = run_sweep(db, sid, workers=2, executor=kind)
        assert summary.counts == {"done": 8}
        frame = Store(db).runs_frame(sid).sort_values("run_key")
        results[kind] = frame[["run_key", "final_train_loss", "final_val_loss"]].to_numpy().tolist()
        assert len(Store(db).metrics_frame(sid)) > 0  # metrics came through the chunk path
    assert results["local"] == results["ray"]


def _ray_sweep_with_watcher(
    db: Path, n: int, points: int, sleep_s: float, watcher: Any
) -> tuple[Any, Any, int]:
    """A sweep of `n` slow count jobs run through Ray while `watcher(store, sweep_id, done)`
    runs in a thread (`done` is set when the sweep returns). Returns (summary, store, id)."""
    import threading

    from experiments.runner import run_sweep
    from experiments.store import RunRow, Store

    store = Store(db)
    runs = [
        RunRow(f"r{i}", 16, "mup", 0.01, 0, payload={"points": points, "sleep_s": sleep_s},
               steps_total=points, job_fn="tests.experiments.engine_jobs:count_job")
        for i in range(n)
    ]
    sid = store.create_sweep(db.stem, {}, runs)
    done = threading.Event()
    t = threading.Thread(target=watcher, args=(store, sid, done))
    t.start()
    summary = run_sweep(db, sid, workers=2, executor="ray")
    done.set()
    t.join()
    return summary, store, sid


@pytest.mark.ray
def test_cancelling_a_ray_sweep_leaves_no_run_running(ray_session: None, tmp_path: Path) -> None:
    from experiments.store.store import wait_for

    def cancel_soon(store: Any, sid: int, done: Any) -> None:
        if wait_for(lambda: store.list_sweeps(sid)[0].counts.get("running", 0) >= 1, 60):
            time.sleep(0.5)
            store.cancel_sweep(sid)

    summary, store, sid = _ray_sweep_with_watcher(tmp_path / "cancel.duckdb", 4, 400, 0.02,
                                                  cancel_soon)
    assert summary.counts == {"cancelled": 4}
    assert "running" not in set(store.runs_frame(sid)["state"])


@pytest.mark.ray
def test_ray_runs_stream_their_progress_to_the_store(ray_session: None, tmp_path: Path) -> None:
    from experiments.store.store import wait_for

    seen: list[int] = []

    def watch(store: Any, sid: int, done: Any) -> None:
        # A run part-way through, as the Runs page shows it: running with 0 < steps < total.
        def midway() -> bool:
            frame = store.runs_frame(sid)
            live = frame[(frame["state"] == "running") & (frame["steps_done"] > 0)
                         & (frame["steps_done"] < 80)]
            seen.extend(int(s) for s in live["steps_done"])
            return bool(seen) or done.is_set()

        wait_for(midway, 60, interval_s=0.2)

    summary, store, sid = _ray_sweep_with_watcher(tmp_path / "progress.duckdb", 2, 80, 0.05, watch)
    assert summary.counts == {"done": 2}
    assert seen, "no run was ever seen part-way through: progress did not reach the store"
    assert set(store.runs_frame(sid)["steps_done"]) == {80}


@pytest.mark.ray
def test_a_lost_ray_task_is_requeued_and_finishes(ray_session: None, tmp_path: Path) -> None:
    from experiments.runner import run_sweep
    from experiments.store import RunRow, Store

    db = tmp_path / "lost.duckdb"
    store = Store(db)
    marker = tmp_path / "died-once"
    runs = [
        RunRow("phoenix", 16, "mup", 0.01, 0, payload={"marker": str(marker)}, steps_total=1,
               job_fn="tests.experiments.engine_jobs:die_once_job"),
        RunRow("steady", 16, "sp", 0.01, 0, payload={"points": 3}, steps_total=3,
               job_fn="tests.experiments.engine_jobs:count_job"),
    ]
    sid = store.create_sweep("ray-lost", {}, runs)
    summary = run_sweep(db, sid, workers=2, executor="ray")
    assert marker.exists()  # the first attempt really died (kill -9 of its Ray worker)
    assert summary.counts == {"done": 2}
    frame = store.runs_frame(sid).set_index("run_key")
    assert int(frame.loc["phoenix", "attempts"]) == 2 and int(frame.loc["steady", "attempts"]) == 1
    # Metrics flushed before the kill were kept (as the first attempt's rows).
    from experiments.store.db import connect

    with connect(store.path) as con:
        first = con.execute(
            "SELECT step FROM metrics WHERE run_id = ? AND attempt = 1 ORDER BY step",
            [int(frame.loc["phoenix", "run_id"])],
        ).fetchall()
    assert [s for (s,) in first] == [1, 2]


@pytest.mark.ray
def test_adaptive_search_plans_on_ray_as_on_local(ray_session: None, tmp_path: Path) -> None:
    """The runner plans an adaptive sweep's next runs on the Ray executor too, and
    makes the same runs (same LRs and seeds, same losses) as on the local one."""
    import yaml

    from experiments.runner import run_sweep
    from experiments.spec.sweep import parse_spec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    data = {**yaml.safe_load(TINY_SPEC), "lrs": None, "search": {"kind": "adaptive"},
            "lr_grid": {"log2_min": -10, "log2_max": -2, "step": 2}, "parametrizations": ["mup"]}
    results = {}
    for kind in ("local", "ray"):
        db = tmp_path / f"adaptive-{kind}.duckdb"
        sid = create_sweep(Store(db), parse_spec({k: v for k, v in data.items() if v is not None}))
        summary = run_sweep(db, sid, workers=2, executor=kind)
        frame = Store(db).runs_frame(sid).sort_values("run_key")
        assert set(frame["width"]) == {16, 32}  # width 32 was planned while the sweep ran
        assert set(summary.counts) <= {"done", "diverged"}
        results[kind] = frame[["run_key", "final_train_loss"]].to_numpy().tolist()
    assert results["local"] == results["ray"]
