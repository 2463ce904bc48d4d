"""The runner loop: claim queued runs, hand them to an executor, write results to the store.

The only process that writes run states is the runner holding the claim (plus cancel/retry
from users). Every DuckDB access is a short transaction (see experiments.store.db), so the
dashboard and other runners can read and write the same store meanwhile.

Crash policy:
- a job that raises -> its run `failed` with the error text (retry with `sweep retry`);
- a worker that dies under a run (kill -9, OOM) -> that run `failed` ("worker died"), the
  worker is replaced and the sweep goes on;
- a runner that dies -> its runs stay `running` until the next runner starts (or `sweep
  resume`), which sees the dead owner and re-queues them (up to MAX_ATTEMPTS). Results carry
  their attempt number, so a late result of an old attempt never overwrites a newer one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.runner.executor import Executor, LocalExecutor
from experiments.store.store import Store, SweepSummary

HEARTBEAT_S = 2.0
INGEST_S = 1.0
PROGRESS_FLUSH_S = 1.0


def make_executor(
    kind: str = "local", workers: int | None = None, ray_address: str | None = None
) -> Executor:
    """An executor by name ("local" or "ray")."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        from experiments.runner.ray_adapter import RayRunnerExecutor

        return RayRunnerExecutor(workers=workers, address=ray_address)
    raise ValueError(f"unknown executor {kind!r}: use 'local' or 'ray'")


def run_pending(
    db_path: str | Path,
    sweep_id: int | None = None,
    *,
    workers: int | None = None,
    executor: str | Executor = "local",
    ray_address: str | None = None,
    idle_exit_s: float = 0.0,
    progress_cb: Callable[[SweepSummary], None] | None = None,
) -> None:
    """Run queued runs (of one sweep, or all) until none are left (or idle for idle_exit_s)."""
    store = Store(db_path)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    store.register_runner(token)
    store.recover_orphans(sweep_id)
    ex = make_executor(executor, workers, ray_address) if isinstance(executor, str) else executor
    progress: dict[int, int] = {}
    # Run folders of the claims in flight: the periodic ingest reads only these.
    in_flight: dict[int, Path] = {}
    last_beat = last_ingest = last_flush = time.monotonic()
    idle_since: float | None = None
    store.ingest()  # chunks a previous (killed) runner left behind
    try:
        while True:
            # 1. Handle events. Waiting happens outside any store connection.
            events = ex.poll(0.2 if ex.busy() else 0.0)
            # 2. Write results and fill free slots with queued runs in one connection: one
            # open and close per burst instead of three per run (bench/bench_scheduling.py).
            writes = any(ev[0] != "progress" for ev in events) or ex.free_slots() > 0
            with store.batch() if writes else contextlib.nullcontext():
                for ev in events:
                    kind, run_id, attempt = ev[0], int(ev[1]), int(ev[2])
                    if kind == "progress":
                        progress[run_id] = int(ev[3])
                        continue
                    progress.pop(run_id, None)
                    directory = in_flight.pop(run_id, None)
                    # The attempt's last chunks land before its state changes.
                    store.ingest([directory] if directory else None)
                    if kind == "result":
                        store.finish(run_id, attempt, ev[3])
                    elif kind in ("error", "lost"):
                        store.fail(run_id, attempt, str(ev[3]))
                    elif kind == "requeue":
                        # Never started (its local worker died first) or lost with its Ray
                        # node: back to the queue while attempts remain (MAX_ATTEMPTS).
                        store.fail(run_id, attempt, str(ev[3]), requeue=True)
                free = ex.free_slots()
                if free:
                    for claim in store.claim(free, token, sweep_id):
                        in_flight[claim.run_id] = claim.directory
                        ex.submit(claim)
            now = time.monotonic()
            if progress and now - last_flush > PROGRESS_FLUSH_S:
                store.update_progress(progress)
                progress = {}
                last_flush = now
            if now - last_ingest > INGEST_S:
                if in_flight:
                    store.ingest(list(in_flight.values()))
                last_ingest = now
            if now - last_beat > HEARTBEAT_S:
                store.heartbeat(token)
                last_beat = now
                if progress_cb is not None and sweep_id is not None:
                    progress_cb(store.list_sweeps(sweep_id)[0])
            # 3. Done? Nothing in flight and nothing queued for us.
            if ex.busy() == 0 and store.pending(sweep_id)["queued"] == 0:
                if store.pending(sweep_id)["running"] and sweep_id is not None:
                    # Another live runner holds some of our runs: wait for it.
                    store.recover_orphans(sweep_id)
                    time.sleep(0.5)
                    continue
                if idle_exit_s <= 0:
                    break
                idle_since = idle_since or now
                if now - idle_since > idle_exit_s:
                    break
                time.sleep(0.5)
            else:
                idle_since = None
    finally:
        ex.shutdown()
        try:
            store.ingest()
            store.unregister_runner(token)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


def run_sweep(
    db_path: str | Path,
    sweep_id: int,
    workers: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    progress_cb: Callable[[SweepSummary], None] | None = None,
) -> SweepSummary:
    """Run one sweep in the foreground until every run is terminal; returns its summary."""
    run_pending(db_path, sweep_id, workers=workers, executor=executor,
                ray_address=ray_address, progress_cb=progress_cb)
    return Store(db_path).list_sweeps(sweep_id)[0]


def ensure_background_runner(db_path: str | Path, workers: int | None = None) -> int | None:
    """Start the background runner for this store unless a live one is registered.

    Returns the new process id, or None when one is already running. The process is detached
    (its own session), logs to `<store>.d/runner.log`, and exits after a minute idle.
    """
    import subprocess
    import sys

    store = Store(db_path)
    if store.live_runners():
        return None
    log = open(store.root / "runner.log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "experiments.runner", "--db", str(store.path), "--idle-exit", "60"]
    if workers:
        cmd += ["--workers", str(workers)]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd=root, env=env,
    )
    # Wait until it registers, so a second call does not start another one.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not store.live_runners():
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    return proc.pid


def summary_of(db_path: str | Path, sweep_id: int) -> dict[str, Any]:
    """The sweep summary as a dict (for CLIs)."""
    return Store(db_path).list_sweeps(sweep_id)[0].to_dict()
