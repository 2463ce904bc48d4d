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

from experiments.planning import SweepPlanner
from experiments.runner.executor import Executor, LocalExecutor
from experiments.settings import get_settings
from experiments.store import Store, SweepSummary

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


class _RunnerLoop:
    """One runner's state between loop turns: its claims in flight, progress not yet written,
    and when it last ingested, beat and flushed."""

    def __init__(
        self,
        store: Store,
        ex: Executor,
        token: str,
        sweep_id: int | None,
        progress_cb: Callable[[SweepSummary], None] | None,
    ) -> None:
        self.store, self.ex, self.token, self.sweep_id = store, ex, token, sweep_id
        self.progress_cb = progress_cb
        self.progress: dict[int, int] = {}  # steps done per run, not yet written
        # Run folders of the claims in flight: the periodic ingest reads only these.
        self.in_flight: dict[int, Path] = {}
        # Adaptive sweeps queue their next runs as results arrive (experiments.planning).
        self.planner = SweepPlanner(store)
        self.sweep_of: dict[int, int] = {}  # sweep of each claim in flight
        self.to_plan: set[int] = set()  # sweeps with runs ended this turn
        self.last_beat = self.last_ingest = self.last_flush = time.monotonic()
        self.idle_since: float | None = None

    def turn(self) -> None:
        """Handle the executor's events, fill its free slots, then the periodic writes."""
        # Waiting happens outside any store connection.
        events = self.ex.poll(0.2 if self.ex.busy() else 0.0)
        # Results and claims share one connection: one open and close per burst instead of
        # three per run (bench/bench_scheduling.py).
        writes = any(ev[0] != "progress" for ev in events) or self.ex.free_slots() > 0
        with self.store.batch() if writes else contextlib.nullcontext():
            for ev in events:
                self._handle(ev)
            for sid in sorted(self.to_plan):
                self.planner.top_up(sid)  # before claiming, so new runs fill free slots now
            self.to_plan.clear()
            self._fill_slots()
        self._periodic(time.monotonic())

    def _handle(self, ev: tuple[Any, ...]) -> None:
        """Record one executor event (see `experiments.runner.executor` for the kinds)."""
        kind, run_id, attempt = ev[0], int(ev[1]), int(ev[2])
        if kind == "progress":
            self.progress[run_id] = int(ev[3])
            return
        self.progress.pop(run_id, None)
        directory = self.in_flight.pop(run_id, None)
        sid = self.sweep_of.pop(run_id, None)
        if sid is not None:
            self.to_plan.add(sid)
        # The attempt's last chunks land before its state changes.
        self.store.ingest([directory] if directory else None)
        if kind == "result":
            self.store.finish(run_id, attempt, ev[3])
        elif kind in ("error", "lost"):
            self.store.fail(run_id, attempt, str(ev[3]))
        elif kind == "requeue":
            # Never started (its local worker died first) or lost with its Ray node: back to
            # the queue while attempts remain (MAX_ATTEMPTS).
            self.store.fail(run_id, attempt, str(ev[3]), requeue=True)

    def _fill_slots(self) -> None:
        free = self.ex.free_slots()
        if free:
            for claim in self.store.claim(free, self.token, self.sweep_id):
                self.in_flight[claim.run_id] = claim.directory
                self.sweep_of[claim.run_id] = claim.sweep_id
                self.ex.submit(claim)

    def _periodic(self, now: float) -> None:
        """Write batched progress, ingest the runs in flight, beat and report, each when due."""
        if self.progress and now - self.last_flush > PROGRESS_FLUSH_S:
            self.store.update_progress(self.progress)
            self.progress = {}
            self.last_flush = now
        if now - self.last_ingest > INGEST_S:
            if self.in_flight:
                self.store.ingest(list(self.in_flight.values()))
            self.last_ingest = now
        if now - self.last_beat > HEARTBEAT_S:
            self.store.heartbeat(self.token)
            self.last_beat = now
            if self.progress_cb is not None and self.sweep_id is not None:
                self.progress_cb(self.store.list_sweeps(self.sweep_id)[0])

    def finished(self, idle_exit_s: float) -> bool:
        """Whether to stop: nothing in flight and nothing queued for us (for `idle_exit_s`).

        Sleeps briefly when it is waiting, so an idle loop does not spin.
        """
        if self.ex.busy():
            self.idle_since = None
            return False
        pending = self.store.pending(self.sweep_id)
        if pending.queued:
            self.idle_since = None
            return False
        if pending.running and self.sweep_id is not None:
            # Another live runner holds some of our runs: wait for it (or for its death).
            self.store.recover_orphans(self.sweep_id)
            time.sleep(0.5)
            return False
        if idle_exit_s <= 0:
            return True
        now = time.monotonic()
        self.idle_since = self.idle_since or now
        if now - self.idle_since > idle_exit_s:
            return True
        time.sleep(0.5)
        return False


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
    store.ingest()  # chunks a previous (killed) runner left behind
    loop = _RunnerLoop(store, ex, token, sweep_id, progress_cb)
    # A runner killed after a run ended but before planning its follow-ups: plan them now.
    loop.planner.top_up_all(sweep_id)
    try:
        while True:
            loop.turn()
            if loop.finished(idle_exit_s):
                break
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
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           **get_settings().child_env()}  # its cwd is the project root, not ours
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
