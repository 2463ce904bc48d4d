"""Worker side: a long-lived process that imports torch once and runs jobs one at a time.

Jobs arrive on an inbox queue as `Claim`s; the worker resolves the job function
("module:function"), gives it a `ChunkReporter`, and sends progress, the result or the error
back on the outbox. The worker never opens the DuckDB file. If its parent (the runner) dies,
it exits at the next report instead of training on for nobody.
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

from experiments.states import RunState
from experiments.store.chunks import ChunkWriter, write_result_journal
from experiments.store.queue import Claim

# Progress messages are rate-limited so a fast job does not flood the runner.
PROGRESS_INTERVAL_S = 0.5


class ProgressThrottle:
    """Says when a progress report is due: at most every `interval_s`, and always at the end."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last = 0.0

    def due(self, step: int, total: int) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval_s or step >= total:
            self._last = now
            return True
        return False


def resolve_job(path: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import "module:function"."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"job function must look like 'module:function', got {path!r}")
    fn = getattr(importlib.import_module(module), name)
    return fn  # type: ignore[no-any-return]


class ChunkReporter:
    """The `Reporter` a job sees: metrics to Parquet chunks, progress to the runner."""

    def __init__(self, claim: Claim, outbox: Queue, parent_pid: int) -> None:
        self.claim = claim
        self.outbox = outbox
        self.parent_pid = parent_pid
        self.writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt)
        self._throttle = ProgressThrottle()

    def _check_parent(self) -> None:
        if os.getppid() != self.parent_pid:
            # The runner is gone: our results have nowhere to go; the restarted runner
            # re-queues this run. Flush what we have (it is kept as this attempt's data).
            self.writer.flush()
            os._exit(3)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Buffer metric rows (flushed atomically as chunks)."""
        self._check_parent()
        self.writer.add(step, values)

    def progress(self, step: int, total: int) -> None:
        """Tell the runner how far the run is (rate-limited)."""
        if self._throttle.due(step, total):
            self.outbox.put(("progress", self.claim.run_id, self.claim.attempt, int(step)))

    def cancelled(self) -> bool:
        """Whether the run's cancel marker exists."""
        self._check_parent()
        return (self.claim.directory / "CANCEL").exists()


def worker_main(slot: int, inbox: Queue, outbox: Queue, threads: int, device: str | None) -> None:
    """Process entry point: set threads, then run claims until a None arrives."""
    parent = os.getppid()
    import torch  # imported once per worker, reused by every job

    torch.set_num_threads(max(1, threads))
    if device:
        os.environ["MUTRANSFER_WORKER_DEVICE"] = device
    outbox.put(("ready", slot, os.getpid(), None))
    while True:
        claim = inbox.get()
        if claim is None:
            return
        reporter = ChunkReporter(claim, outbox, parent)
        try:
            fn = resolve_job(claim.job_fn)
            result = dict(fn(claim.payload, reporter))
            reporter.writer.flush()
            write_result_journal(claim.directory, claim.attempt, result)
            outbox.put(("result", claim.run_id, claim.attempt, result))
        except BaseException as exc:  # noqa: BLE001 - any failure is the run's, not the worker's
            reporter.writer.flush()
            tb = "".join(traceback.format_exception(exc))[-4000:]
            write_result_journal(claim.directory, claim.attempt, {"state": RunState.FAILED, "error": tb})
            outbox.put(("error", claim.run_id, claim.attempt, f"{type(exc).__name__}: {exc}\n{tb}"))
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                return
