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
- an unreadable metric chunk -> quarantined by the ingest (moved aside, noted on its run), the
  rest ingested; the runner goes on.

Who runs queued work: a runner registers (with the sweep it serves, None for all) once its
store is usable, and `ensure_background_runner` starts one unless a live runner serves every
sweep. A runner that decides to stop unregisters *before* its last look at the queue (see
`_RunnerLoop.may_stop`), so it and a submitter can never both count on the other.
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

from experiments.errors import UserError
from experiments.runner.executor import Executor, LocalExecutor
from experiments.settings import get_settings
from experiments.store import Store, SweepSummary
from experiments.sweep.planning import SweepPlanner

HEARTBEAT_S = 2.0
INGEST_S = 1.0
PROGRESS_FLUSH_S = 1.0
# How long `ensure_background_runner` waits for the runner it started to register.
START_WAIT_S = 20.0


class RunnerStartError(UserError):
    """The background runner exited before it registered; the message holds its reason."""


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
        self.devices: dict[int, str] = {}  # where runs just started train, not yet written
        # Run folders of the claims in flight: the periodic ingest reads only these.
        self.in_flight: dict[int, Path] = {}
        # Adaptive sweeps queue their next runs as results arrive (experiments.sweep.planning).
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
                # Where it trains, shown while it runs (the result's device replaces it).
                device_for = getattr(self.ex, "device_for", None)
                if device_for is not None:
                    self.devices[claim.run_id] = device_for(claim)

    def _periodic(self, now: float) -> None:
        """Write batched progress, ingest the runs in flight, beat and report, each when due."""
        if (self.progress or self.devices) and now - self.last_flush > PROGRESS_FLUSH_S:
            self.store.update_progress(self.progress, self.devices)
            self.progress, self.devices = {}, {}
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

    def may_stop(self) -> bool:
        """Leave the registry, then look at the queue once more: stop only if it is empty.

        A submitter queues its runs, then asks whether a live runner serves them
        (`ensure_background_runner`). Each step is a store transaction, and transactions on
        the file are serialised, so either the submitter saw this runner still registered (then
        its runs were queued before this look, which finds them: the runner registers again
        and goes on), or it saw it gone (and starts a runner itself). Never both "someone else
        will run it". Called when `finished` says stop.
        """
        self.store.unregister_runner(self.token)
        if not self.store.pending(self.sweep_id).queued:
            return True
        self.store.register_runner(self.token, self.sweep_id)
        self.idle_since = None
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
    """Run queued runs (of one sweep, or all) until none are left (or idle for idle_exit_s).

    The runner registers once its store is usable (dead runners' runs recovered, left-over
    chunks ingested), so a runner that cannot use its store is never counted as live.
    """
    store = Store(db_path)
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    store.recover_orphans(sweep_id)
    store.ingest()  # chunks a previous (killed) runner left behind
    # Registered before the executor starts (its workers import torch: seconds), so whoever
    # waits for this runner to register is not kept waiting for them.
    store.register_runner(token, sweep_id)
    try:
        ex = make_executor(executor, workers, ray_address) if isinstance(executor, str) else executor
    except BaseException:
        store.unregister_runner(token)
        raise
    try:
        loop = _RunnerLoop(store, ex, token, sweep_id, progress_cb)
        # A runner killed after a run ended but before planning its follow-ups: plan them now.
        loop.planner.top_up_all(sweep_id)
        while True:
            loop.turn()
            if loop.finished(idle_exit_s) and loop.may_stop():
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


def serves_every_sweep(store: Store) -> bool:
    """Whether a live runner claims every sweep's runs (a background runner: a foreground
    `sweep run` claims its own sweep's only)."""
    return any(r.sweep_id is None for r in store.live_runners())


def ensure_background_runner(db_path: str | Path, workers: int | None = None) -> int | None:
    """Start the background runner for this store unless a live one serves every sweep.

    Returns the new process id, or None when one is already running. The process is detached
    (its own session), logs to `<store>.d/runner.log`, and exits after a minute idle.

    Raises:
        RunnerStartError: the runner exited (non-zero) before it registered; the message gives
            the last line it logged.
    """
    import subprocess
    import sys

    store = Store(db_path)
    if serves_every_sweep(store):
        return None
    log_path = store.root / "runner.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    start = log.tell()
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
    log.close()
    # Wait until it registers, so a second call does not start another one.
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline and not serves_every_sweep(store):
        if proc.poll() is not None:
            if proc.returncode != 0:
                raise RunnerStartError(
                    f"the background runner could not start (exit {proc.returncode}): "
                    f"{_last_line(log_path, start)}. Its log: {log_path}")
            break  # it ran and ended (another runner took the work)
        time.sleep(0.1)
    return proc.pid


def _last_line(log_path: Path, start: int) -> str:
    """The last non-empty line logged since byte `start` (the reason a process exited)."""
    with open(log_path, "rb") as fh:
        fh.seek(start)
        lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else "it logged nothing"


def summary_of(db_path: str | Path, sweep_id: int) -> dict[str, Any]:
    """The sweep summary as a dict (for CLIs)."""
    return Store(db_path).list_sweeps(sweep_id)[0].to_dict()
